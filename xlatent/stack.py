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
        Strictly increasing: ``datetime64[ns]`` for a dated series (:meth:`from_dataarray`), as
        decoded otherwise (cftime dates or numbers; :meth:`read` with ``dated=False``).
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
        """Validate ``da`` as a series to interpolate: :meth:`read` with dated times, and at
        least two frames of at least :data:`~xlatent.pair.MIN_SIZE` cells a side.

        Raises
        ------
        InputTypeError
            For something other than a numeric DataArray.
        SeriesError
            Without a dated time dim, with fewer than two frames, with times that do not
            strictly increase, or (in memory) with a frame that is NaN everywhere.
        SpatialDimsError
            When the spatial dims cannot be found, or there is more than one channel dim.
        InputError
            For frames too small to interpolate.
        """
        s = cls.read(da, x_dim, y_dim, label)
        if len(s) < 2:
            raise SeriesError(f"{label} has {len(s)} frame(s) along {s.time_dim!r}: a series needs at least two.")
        check_size(tuple(da.sizes[d] for d in (s.grid.y_dim, s.grid.x_dim)))
        return s

    @classmethod
    def read(cls, da: Any, x_dim: str | None = None, y_dim: str | None = None, label: str = "series",
             dated: bool = True) -> Series:
        """Validate what makes ``da`` a series, whatever it is used for: a numeric DataArray with
        a time dim whose values strictly increase, spatial dims, a readable CRS and (in memory) no
        frame that is NaN everywhere. Callers add what they need (frame count, size, regular step).

        Parameters
        ----------
        dated : bool
            Require ``datetime64`` times (interpolation and totals need real durations). With
            False, cftime dates and plain numbers are taken as well (forecasting needs only their
            order and step), CF-encoded numbers decoded.

        Raises
        ------
        InputTypeError, SeriesError, SpatialDimsError
            As :meth:`from_dataarray`.
        """
        geo.check_input(da, label)
        tdim = geo.time_dim(da)
        if tdim is None:
            raise SeriesError(f"{label} has no time dimension holding dates (dims {tuple(da.dims)}): "
                              "give it a 'time' dim with datetime64 values, e.g. da.expand_dims(time=[...]).")
        if da.sizes[tdim] == 0:
            raise SeriesError(f"{label} has no frame along {tdim!r}.")
        times = _datetimes(da[tdim], label) if dated else _any_times(da[tdim])
        steps = np.diff(times)
        if steps.size and np.any(steps <= steps[0] * 0):  # `* 0`: the zero of timedelta64, timedelta or number
            at = int(np.argmax(steps <= steps[0] * 0))
            raise SeriesError(f"{label} times must strictly increase; {times[at]} is followed by {times[at + 1]}. "
                              f"Sort and drop duplicates first: da.sortby({tdim!r}).drop_duplicates({tdim!r}).")
        grid = geo.describe(da.isel({tdim: 0}), x_dim=x_dim, y_dim=y_dim)
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
        """Seconds of each frame after the first, float (a dated series)."""
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
    values = np.asarray(geo.decoded_data(da, np.asarray(da.values)), dtype=np.float64)  # fill values are no data
    empty = ~np.isfinite(values).any(axis=tuple(da.dims.index(d) for d in other))
    if empty.any():
        at = np.flatnonzero(empty)
        raise SeriesError(f"{label} has {at.size} frame(s) without any finite value (all NaN) at time index "
                          f"{at[:8].tolist()} (e.g. {times[at[0]]}): fill them, e.g. da.interpolate_na({tdim!r}), "
                          f"or drop them, e.g. da.dropna({tdim!r}, how='all') (the intervals around them are then "
                          "longer).")


def _datetimes(coord: xr.DataArray, label: str) -> np.ndarray:
    values = np.asarray(coord.values)
    if np.issubdtype(values.dtype, np.datetime64):
        return values.astype("datetime64[ns]")
    raise SeriesError(f"{label} time coord {coord.name!r} holds {values.dtype} values, not datetime64: decode it "
                      "(xr.decode_cf, or open the file without decode_times=False; a cftime calendar: "
                      "da.convert_calendar('standard')).")


def _any_times(coord: xr.DataArray) -> np.ndarray:
    values = geo.cf_time_values(coord)
    return values.astype("datetime64[ns]") if np.issubdtype(values.dtype, np.datetime64) else values
