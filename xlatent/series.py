"""Whole series: frames at any times along the motion (:func:`interp`), interval by interval
(:mod:`xlatent.intervals`, shared with the totals of :mod:`xlatent.totals`).

Each interval between two input frames is one :func:`xlatent.interpolate` call with the
``fractions`` it needs, so a series gives exactly the frames the same pair gives, and any
option (``method=``, ``motion=``, ``model=``...) flows through. Intervals are independent: on a
dask-backed series each is one task, lazy and run in parallel by whatever scheduler computes the
result. :func:`wobble` measures how much larger the frame-to-frame change is at the input times
than inside the intervals.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from xlatent import cf, geo
from xlatent.exceptions import ConfigError, OutsideSpanError
from xlatent.intervals import (
    MOTIONLESS,
    long_gaps,
    match_quantiles,
    nan_like,
    output_attrs,
    pair_method,
    pair_options,
    renderer,
    stacked,
    wrap_like,
)
from xlatent.stack import Series

__all__ = ["interp", "match_quantiles", "wobble"]

_CELLS = "grid_cells per unit interp_fraction"  # geo.flow_in_coordinates without cell size or time


# ---------------------------------------------------------------------------------------------
# interp


def interp(
    series: xr.DataArray,
    time: Any,
    *,
    model: Any = None,
    method: str | None = None,
    max_gap: Any = None,
    x_dim: str | None = None,
    y_dim: str | None = None,
    kind: str | None = None,
    match: bool = False,
    progress: bool = True,
    **options: Any,
) -> tuple[xr.DataArray, xr.Dataset | None]:
    """Frames of a series at new times, along the motion, and the motion of each interval.

    Like :meth:`xarray.DataArray.interp` along time, but each interval between two input frames
    is rendered by :func:`xlatent.interpolate` (warped along the estimated motion) instead of a
    linear blend.

    Parameters
    ----------
    series : xarray.DataArray
        ``(time, [channel], y, x)``, at least two frames with ``datetime64`` times, strictly
        increasing, at any (irregular) steps; in memory or dask-backed.
    time : array-like of datetime64
        The times wanted, in any order, all within the series' span (the first to the last
        input time). Where a time is an input time the input frame is returned unchanged.
    model : optional
        A fitted interpolator, passed on to :func:`xlatent.interpolate` as ``model=``.
    method : str, optional
        Any :func:`xlatent.interpolate` method, ``"flow"``, ``"linear"``...; by default
        ``"flow"``, or the archive model when ``model=`` is given.
    max_gap : str or timedelta, optional
        Intervals longer than this are not interpolated: their frames and motion are NaN, with a
        :class:`~xlatent.exceptions.GapWarning` (as ``interpolate_na(max_gap=)`` does).
    x_dim, y_dim : str, optional
        Spatial dims, when they cannot be told.
    kind : {"sea_ice", "sea_water", "air"}, optional
        Sets the CF ``standard_name`` of ``u``/``v`` (see :func:`xlatent.interpolate`).
    match : bool
        Match each rendered frame's values, rank for rank, to the quantiles of the interval's
        two input frames blended by time (:func:`match_quantiles`): the frames inside an
        interval keep the contrast of the inputs, which lowers the :func:`wobble` at the input
        times (see ``docs/series.md`` for what it costs).
    progress : bool
        A progress bar over the intervals (in memory; a dask-backed series is computed later).
    **options
        Passed on to :func:`xlatent.interpolate` (``motion=``, ``clip=``, ``device=``...).

    Returns
    -------
    frames : xarray.DataArray
        The series' dims, coords, attrs and CRS, with ``time`` the requested times; lazy when
        the series is dask-backed (one task per interval).
    flow : xarray.Dataset or None
        ``u``, ``v`` ``(time, y, x)``: the motion of each input interval averaged over its
        stages, stamped at the interval's midpoint with CF ``time_bnds`` and
        ``cell_methods = "time: mean"``; ``m s-1`` on a projected grid. None for ``linear``.
        On a dask-backed series it shares the frames' tasks: compute both at once
        (``dask.compute(frames, flow)`` or :func:`xlatent.save_result`).

    Raises
    ------
    OutsideSpanError
        For a requested time before the first or after the last input time (no extrapolation;
        select ``time[(time >= t0) & (time <= t1)]`` first).
    SeriesError
        For a series without dated, strictly increasing times or with fewer than two frames.
    """
    cf.check_kind(kind)
    s = Series.from_dataarray(series, x_dim, y_dim)
    method = pair_method(model, method)
    options = pair_options(model, options)
    wanted = _wanted_times(time, s)
    gaps = long_gaps(s, max_gap)
    exact = np.searchsorted(s.times, wanted)
    exact = np.where((exact < len(s)) & (s.times[np.minimum(exact, len(s) - 1)] == wanted), exact, -1)
    interval = np.clip(np.searchsorted(s.times, wanted, side="right") - 1, 0, len(s) - 2)
    step = s.steps.astype(np.int64).astype(np.float64)
    fraction = (wanted - s.times[interval]).astype(np.int64) / step[interval]

    render = renderer(s, method, options, match)
    parts, order = [], []
    us, vs = [], []
    from tqdm.auto import tqdm

    for i in tqdm(range(len(s) - 1), desc="xlatent intervals", disable=not progress or s.lazy, leave=False):
        inside = np.flatnonzero((interval == i) & (exact < 0))
        fr = np.unique(fraction[inside])
        if gaps[i]:
            frames, u, v = nan_like((len(fr), *s.frame_shape), s.lazy), None, None
        else:
            frames, u, v = render(i, fr if fr.size else np.array([0.5]))
            frames = frames[: len(fr)]
        if fr.size:  # a time asked for twice gets the frame twice
            parts.append(frames[np.searchsorted(fr, fraction[inside])])
            order.append(inside)
        us.append(u)
        vs.append(v)
    for j in np.flatnonzero(exact >= 0):
        parts.append(_frame_values(s, int(exact[j])))
        order.append(np.array([j]))
    values = _concat(parts, np.concatenate(order), s.lazy)
    call = cf.call_repr("interp", method=method, max_gap=None if max_gap is None else str(max_gap), kind=kind,
                        match=match or None, model=None if model is None else type(model).__name__)
    attrs = output_attrs(s, method, call)
    frames = wrap_like(s, values.astype(_dtype(s), copy=False), wanted, attrs, s.source.name)
    if method in MOTIONLESS:
        return frames, None
    return frames, _flow(s, us, vs, gaps, attrs, kind)


def _dtype(s: Series):
    return s.source.dtype if np.issubdtype(s.source.dtype, np.floating) else np.float32


def _frame_values(s: Series, j: int):
    data = s.source.isel({s.time_dim: [j]}).transpose(s.time_dim, *s.frame_dims).data
    return data if s.lazy else np.asarray(data)


def _concat(parts: list, positions: np.ndarray, lazy: bool):
    """Stack ``parts`` (rows for ``positions``) and put the rows in output order."""
    if lazy:
        import dask.array as dsa

        stacked = dsa.concatenate(parts, axis=0)
    else:
        stacked = np.concatenate(parts, axis=0)
    return stacked[np.argsort(positions, kind="stable")]


def _wanted_times(time: Any, s: Series) -> np.ndarray:
    values = np.atleast_1d(np.asarray(getattr(time, "values", time)))
    try:
        wanted = values.astype("datetime64[ns]")
    except (TypeError, ValueError):
        raise ConfigError(f"time must be datetime64 values (an array, a pandas DatetimeIndex...), got {time!r}.") from None
    if values.ndim != 1 or np.isnat(wanted).any():
        raise ConfigError("time must be a 1-D array of datetime64 values without NaT.")
    outside = (wanted < s.times[0]) | (wanted > s.times[-1])
    if outside.any():
        raise OutsideSpanError(
            f"{int(outside.sum())} requested time(s) (e.g. {wanted[outside][0]}) are outside the series' span "
            f"{s.times[0]} – {s.times[-1]}: interp does not extrapolate. Select the times inside it first, "
            "or use xlatent.forecast to go beyond the last frame.")
    return wanted


def _flow(s: Series, us: list, vs: list, gaps: np.ndarray, attrs: dict, kind: str | None) -> xr.Dataset:
    spatial = tuple(d for d in s.frame_dims if d in (s.grid.y_dim, s.grid.x_dim))
    shape = tuple(s.source.sizes[d] for d in spatial)
    fill = [nan_like(shape, s.lazy) if u is None else u for u in us]
    u, v = stacked(fill, s.lazy), stacked([nan_like(shape, s.lazy) if x is None else x for x in vs], s.lazy)
    mid = s.times[:-1] + s.steps // 2
    units = "m s-1" if geo.cell_size_m(s.template(), s.grid) is not None else _CELLS
    tdim = s.time_dim
    template = s.template()
    coords = {k: c.variable for k, c in template.coords.items() if set(c.dims) <= set(spatial)}
    ds = xr.Dataset({"u": ((tdim, *spatial), u, {"units": units}), "v": ((tdim, *spatial), v, {"units": units})},
                    coords=coords)
    ds = ds.assign_coords({tdim: (tdim, mid, dict(s.source[tdim].attrs)),
                           "time_bnds": ((tdim, "nv"), np.stack([s.times[:-1], s.times[1:]], axis=1))})
    ds[tdim].attrs["bounds"] = "time_bnds"
    for name in (tdim, "time_bnds"):  # one encoding for both, as CF wants of bounds
        ds[name].encoding["units"] = "seconds since 1970-01-01"
    ds.attrs = {k: v for k, v in attrs.items() if k in ("Conventions", "history") or k.startswith("xlatent_")}
    ds = cf.describe_flow(ds, kind, cf.lon_lat_axes(template, s.grid), s.grid.x_dim, s.grid.y_dim)
    for name in ("u", "v"):
        ds[name].attrs["cell_methods"] = f"{tdim}: mean"
    return geo.write_crs_like(ds, template, s.grid)


# ---------------------------------------------------------------------------------------------
# wobble


def wobble(frames: xr.DataArray, input_times: Any, time_dim: Hashable = "time") -> float:
    """How much larger the frame-to-frame change is at the input times than inside the intervals.

    The mean absolute change between consecutive frames over the steps that begin or end at an
    input time, divided by that over the steps between two rendered frames. About 1 when the
    motion runs on smoothly through the input frames; above 1 when each input frame stands out
    (a jump of motion or sharpness at every input time, seen as a "wobble" in an animation).

    Parameters
    ----------
    frames : xarray.DataArray
        Frames at regular times (e.g. from :func:`interp`), with the input times among them.
    input_times : array-like of datetime64
        The times of the input frames.
    time_dim : hashable
        The time dim of ``frames``.

    Returns
    -------
    float
        The ratio (NaN when either kind of step is missing).
    """
    times = frames[time_dim].values
    is_input = np.isin(times, np.asarray(input_times, dtype=times.dtype))
    change = np.abs(frames.diff(time_dim)).mean([d for d in frames.dims if d != time_dim]).values
    at_input = is_input[:-1] | is_input[1:]
    if at_input.all() or not at_input.any():
        return float("nan")
    return float(np.nanmean(change[at_input]) / np.nanmean(change[~at_input]))
