"""Totals of a rate per period, integrated along the motion (:func:`accumulate`): each interval
of a series rendered at sub-steps (:mod:`xlatent.intervals`, as :func:`xlatent.series.interp` renders it) and summed with the
trapezoid rule, one interval's sub-steps at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xlatent import cf, geo
from xlatent.exceptions import ConfigError, NotARateError
from xlatent.intervals import (
    long_gaps,
    nan_like,
    output_attrs,
    pair_method,
    pair_options,
    positive_duration,
    renderer,
    stacked,
    wrap_like,
)
from xlatent.stack import Series

__all__ = ["accumulate"]

# CF standard names of the total, from those of the rate
_TOTAL_NAMES = {
    "rainfall_rate": "thickness_of_rainfall_amount",
    "lwe_precipitation_rate": "lwe_thickness_of_precipitation_amount",
    "precipitation_flux": "lwe_thickness_of_precipitation_amount",
    "rainfall_flux": "thickness_of_rainfall_amount",
}


def _mm_per_second(units: str | None, label: str) -> float:
    """Millimetres per second of one unit of the rate; :class:`NotARateError` otherwise."""
    factor = geo.mm_per_second(units)
    if factor is None:
        raise NotARateError(
            f"{label} has units {units!r}, not a rate: accumulate integrates a rate such as 'mm h-1', 'mm/h', "
            f"'mm s-1' or 'kg m-2 s-1' into totals in mm. Set the units attribute if it is a rate "
            f"(da.assign_attrs(units='mm h-1')); a quantity that is not a rate has no total.")
    return factor


def _periods(s: Series, freq: np.timedelta64) -> np.ndarray:
    """Ends of the whole periods ``(end - freq, end]`` inside the series, on multiples of
    ``freq`` since 1970-01-01 (hours on the hour, days at midnight)."""
    f = freq.astype(np.int64)
    t0, t1 = s.times[0].astype(np.int64), s.times[-1].astype(np.int64)
    first_end = -(-t0 // f) * f + f
    ends = np.arange(first_end, t1 // f * f + 1, f)
    if ends.size == 0:
        raise ConfigError(f"The series ({s.times[0]} – {s.times[-1]}) holds no whole period of {freq}: "
                          "pass a shorter freq= or a longer series.")
    return ends.astype("datetime64[ns]")


def _weights(t0: np.datetime64, t1: np.datetime64, ends: np.ndarray, freq: np.timedelta64, substep: np.timedelta64,
             factor: float) -> tuple[np.ndarray, list[tuple[int, np.ndarray, np.ndarray]]]:
    """Sample fractions of the interval ``t0``–``t1`` and, per period it overlaps, the samples
    and their trapezoid weights (mm per unit of the rate): sub-steps of at most ``substep``,
    with the period ends among the samples so that no sub-step straddles two periods."""
    n = int(np.ceil((t1 - t0) / substep))
    span = (t1 - t0).astype(np.int64)
    ticks = t0.astype(np.int64) + np.round(np.linspace(0, span, n + 1)).astype(np.int64)
    inner = ends.astype(np.int64)
    ticks = np.unique(np.concatenate([ticks, inner[(inner > ticks[0]) & (inner < ticks[-1])]]))
    fractions = (ticks - ticks[0]) / span
    periods = []
    for p, end in enumerate(inner):
        start = end - freq.astype(np.int64)
        lo, hi = max(start, ticks[0]), min(end, ticks[-1])
        if lo >= hi:
            continue
        k = np.flatnonzero((ticks >= lo) & (ticks <= hi))
        dt = np.diff(ticks[k]) / 1e9 * factor  # seconds x mm per (unit x s)
        w = np.zeros(k.size)
        w[:-1] += dt / 2
        w[1:] += dt / 2
        periods.append((p, k, w))
    return fractions, periods


def accumulate(
    series: xr.DataArray,
    freq: Any = "1h",
    *,
    substep: Any = None,
    method: str | None = None,
    model: Any = None,
    max_gap: Any = None,
    x_dim: str | None = None,
    y_dim: str | None = None,
    progress: bool = True,
    **options: Any,
) -> xr.DataArray:
    """Totals of a rate per period, integrated along the motion (advection-corrected).

    Each interval between two input frames is rendered at sub-steps of at most ``substep``
    (:func:`xlatent.interpolate` with ``fractions=``) and the rate is integrated over them with
    the trapezoid rule. One interval's sub-step frames are held at a time (per dask task).

    Parameters
    ----------
    series : xarray.DataArray
        A rate ``(time, [channel], y, x)``: ``units`` ``mm h-1``, ``mm/h``, ``mm s-1``,
        ``kg m-2 s-1``..., in memory or dask-backed.
    freq : str or timedelta
        Length of the periods, ``"1h"`` (default), ``"30min"``, ``"1D"``. Periods are closed on
        the right and labelled at their end, as hourly precipitation totals are, and fall on
        multiples of ``freq`` (hours on the hour, days at 00 UTC). Only the periods the series
        covers whole are returned.
    substep : str or timedelta, optional
        The longest sub-step; default: 1 minute or a tenth of the interval, whichever is
        shorter. Period ends are always among the sub-steps.
    method : str, optional
        How the sub-step frames are rendered: ``"flow"`` (default; the archive model when
        ``model=`` is given) or any :func:`xlatent.interpolate` method; ``"linear"`` gives the plain trapezoid sum of the
        input frames.
    model : optional
        A fitted interpolator, passed on as ``model=``.
    max_gap : str or timedelta, optional
        Periods overlapping an interval longer than this are NaN (with a
        :class:`~xlatent.exceptions.GapWarning`).
    x_dim, y_dim : str, optional
        Spatial dims, when they cannot be told.
    progress : bool
        A progress bar over the intervals (in memory).
    **options
        Passed on to :func:`xlatent.interpolate` (``motion=``...).

    Returns
    -------
    xarray.DataArray
        Totals in ``mm``, never negative, NaN where an input is missing, ``time`` at the period
        ends (each period's start in a ``period_start`` coord), ``cell_methods = "time: sum"``;
        the series' coords and CRS.
        Lazy (one task per interval) when the series is dask-backed.

    Raises
    ------
    NotARateError
        When the units are not a rate.
    ConfigError
        For a bad ``freq``/``substep``/``max_gap``, or no whole period in the series.
    """
    s = Series.from_dataarray(series, x_dim, y_dim)
    factor = _mm_per_second(s.units, "series")
    period = positive_duration(freq, "freq")
    fixed = None if substep is None else positive_duration(substep, "substep")
    method = pair_method(model, method)
    options = pair_options(model, options)
    ends = _periods(s, period)
    gaps = long_gaps(s, max_gap)
    render = renderer(s, method, options)
    shape = s.frame_shape
    sums: list[list] = [[] for _ in ends]
    from tqdm.auto import tqdm

    starts = ends - period
    for i in tqdm(range(len(s) - 1), desc="xlatent intervals", disable=not progress or s.lazy, leave=False):
        t0, t1 = s.times[i], s.times[i + 1]
        if not ((t0 < ends) & (t1 > starts)).any():
            continue
        step = fixed if fixed is not None else min(np.timedelta64(60, "s"), (t1 - t0) // 10)
        fractions, periods = _weights(t0, t1, ends, period, step, factor)
        frames = None if gaps[i] else render(i, fractions)[0]
        for p, k, w in periods:
            if frames is None:
                sums[p].append(nan_like(shape, s.lazy))
            else:
                sums[p].append(_weighted(frames, k, w, s.lazy))
    totals = stacked([_add(parts) for parts in sums], s.lazy)
    totals = totals.clip(min=0) if s.lazy else np.clip(totals, 0, None)  # NaN stays NaN
    call = cf.call_repr("accumulate", freq=str(freq), substep=None if substep is None else str(substep), method=method,
                        max_gap=None if max_gap is None else str(max_gap), model=None if model is None else type(model).__name__)
    attrs = output_attrs(s, method, call, drop=("units", "standard_name", "long_name", "cell_methods", "valid_range",
                                          "valid_min", "valid_max"))
    name = s.source.attrs.get("long_name") or s.source.name or "rate"
    span = freq if isinstance(freq, str) else str(pd.Timedelta(period))
    attrs.update({"units": "mm", "long_name": f"{span} total of {name}", "cell_methods": f"{s.time_dim}: sum"})
    if s.source.attrs.get("standard_name") in _TOTAL_NAMES:
        attrs["standard_name"] = _TOTAL_NAMES[s.source.attrs["standard_name"]]
    out_name = f"{s.source.name}_total" if s.source.name is not None else "total"
    return wrap_like(s, totals.astype(np.float32), ends, attrs, out_name, starts)


def _weighted(frames, k: np.ndarray, w: np.ndarray, lazy: bool):
    """``sum_j w_j frames[k_j]``; NaN where any of those frames is NaN."""
    if lazy:
        import dask.array as dsa

        return dsa.tensordot(w.astype(np.float64), frames[k].astype(np.float64), axes=1)
    return np.tensordot(w, frames[k].astype(np.float64), axes=1)


def _add(parts: list):
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total

