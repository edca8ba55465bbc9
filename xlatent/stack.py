"""The series: a validated ``(time, [channel], y, x)`` stack of images with its grid, CRS, units
and times (:class:`Series`), which whole-series operations (:mod:`xlatent.series`,
:mod:`xlatent.totals`) and the archive fit (:mod:`xlatent.archive`) run on.

A :class:`~xlatent.pair.Pair` is the two-frame case in meaning, but stays its own type: a pair
is normalised with the moments of its two images, and deriving it from a series with the
series' moments would change every pairwise result. :meth:`Series.pair` hands out the two
frames of an interval, which :func:`xlatent.interpolate` turns into the same ``Pair`` as ever.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xlatent import geo
from xlatent.exceptions import SeriesError
from xlatent.pair import check_size

__all__ = ["Series"]


@dataclass(frozen=True, eq=False)
class Series:
    """A validated series of images on one grid.

    Attributes
    ----------
    source : xarray.DataArray
        The user's array, never modified (numpy- or dask-backed).
    time_dim : hashable
        Its time dim.
    grid : xlatent.geo.Grid
        Spatial dims and channel dim of one frame.
    times : numpy.ndarray
        ``datetime64[ns]``, strictly increasing.
    units : str or None
        The ``units`` attribute of the values.
    """

    source: xr.DataArray
    time_dim: Hashable
    grid: geo.Grid
    times: np.ndarray
    units: str | None

    @classmethod
    def from_dataarray(cls, da: Any, x_dim: str | None = None, y_dim: str | None = None,
                       label: str = "series") -> Series:
        """Validate ``da`` as a series (dims, dated and increasing time, size, CRS readable).

        Raises
        ------
        InputTypeError
            For something other than a numeric DataArray.
        SeriesError
            Without a dated time dim, with fewer than two frames, with times that do not
            strictly increase, or (in memory) with a frame that is NaN everywhere.
        SpatialDimsError
            When the spatial dims cannot be found, or there is more than one channel dim.
        """
        geo.check_input(da, label)
        tdim = geo.time_dim(da)
        if tdim is None:
            raise SeriesError(f"{label} has no time dimension holding dates (dims {tuple(da.dims)}): "
                              "give it a 'time' dim with datetime64 values, e.g. da.expand_dims(time=[...]).")
        if da.sizes[tdim] < 2:
            raise SeriesError(f"{label} has {da.sizes[tdim]} frame(s) along {tdim!r}: a series needs at least two.")
        times = _datetimes(da[tdim], label)
        steps = np.diff(times)
        if np.any(steps <= np.timedelta64(0, "ns")):
            at = int(np.argmax(steps <= np.timedelta64(0, "ns")))
            raise SeriesError(f"{label} times must strictly increase; {times[at]} is followed by {times[at + 1]}. "
                              f"Sort and drop duplicates first: da.sortby({tdim!r}).drop_duplicates({tdim!r}).")
        frame = da.isel({tdim: 0})
        grid = geo.describe(frame, x_dim=x_dim, y_dim=y_dim)
        check_size(tuple(frame.sizes[d] for d in (grid.y_dim, grid.x_dim)))
        if da.chunks is None:  # a lazy series is checked interval by interval, when computed
            _check_frames_hold_data(da, tdim, times, label)
        units = da.attrs.get("units")
        return cls(da, tdim, grid, times, None if units is None else str(units))

    def __len__(self) -> int:
        return self.times.size

    @property
    def lazy(self) -> bool:
        """Whether the values are dask-backed."""
        return self.source.chunks is not None

    @property
    def steps(self) -> np.ndarray:
        """Length of each interval, ``timedelta64[ns]`` (``len(self) - 1`` of them)."""
        return np.diff(self.times)

    @property
    def seconds(self) -> np.ndarray:
        """Seconds of each frame after the first, float."""
        return (self.times - self.times[0]) / np.timedelta64(1, "s")

    @property
    def frame_dims(self) -> tuple[Hashable, ...]:
        """The dims of one frame, in the source's order."""
        return tuple(d for d in self.source.dims if d != self.time_dim)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """The shape of one frame, in the source's order."""
        return tuple(self.source.sizes[d] for d in self.frame_dims)

    def frame(self, i: int) -> xr.DataArray:
        """Frame ``i`` with its scalar time coord."""
        return self.source.isel({self.time_dim: i})

    def pair(self, i: int) -> tuple[xr.DataArray, xr.DataArray]:
        """The two frames of interval ``i`` (from ``times[i]`` to ``times[i + 1]``)."""
        return self.frame(i), self.frame(i + 1)

    def template(self) -> xr.DataArray:
        """The source without its time dim and values: the coords (CRS included) an output
        frame takes."""
        return self.source.isel({self.time_dim: 0}, drop=True)


def _check_frames_hold_data(da: xr.DataArray, tdim: Hashable, times: np.ndarray, label: str) -> None:
    """Refuse a series with a frame that has no finite cell (nothing to carry along the motion)."""
    other = [d for d in da.dims if d != tdim]
    empty = ~np.isfinite(da.values.astype(np.float64, copy=False)).any(axis=tuple(da.dims.index(d) for d in other))
    if empty.any():
        raise SeriesError(f"{label} has {int(empty.sum())} frame(s) without any finite value (e.g. {times[empty][0]}): "
                          f"drop them first, e.g. da.dropna({tdim!r}, how='all'); the intervals around them are then longer.")


def _datetimes(coord: xr.DataArray, label: str) -> np.ndarray:
    values = np.asarray(coord.values)
    if np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[ns]")
    raise SeriesError(f"{label} time coord {coord.name!r} holds {values.dtype} values, not datetime64: decode it "
                      "(xr.decode_cf, or open the file without decode_times=False; a cftime calendar: "
                      "da.convert_calendar('standard')).")
