"""A series checked for forecasting (a :class:`~xlatent.stack.Series` at one regular step), its
normalisation, and forecasts shaped like it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xlatent import geo
from xlatent.exceptions import InputError, IrregularTimeError, SeriesTooShortError
from xlatent.results import provenance
from xlatent.stack import Series

_MIN_SIZE = 8


@dataclass
class ParsedSeries:
    """A series checked for forecasting: the :class:`~xlatent.stack.Series`, its one time step
    (None for a single frame) and its values ``(N, C, H, W)`` in physical units (NaN where missing)."""

    series: Series
    step: Any
    values: np.ndarray

    @property
    def source(self) -> xr.DataArray:
        """The user's series, never modified."""
        return self.series.source

    @property
    def grid(self) -> geo.Grid:
        """Spatial dims and channel dim of one frame."""
        return self.series.grid

    @property
    def times(self) -> np.ndarray:
        """The times, strictly increasing, as decoded (dates, cftime dates or numbers)."""
        return self.series.times


def check_step(times: np.ndarray, label: str):
    """The one time step of ``times`` (None for a single frame), or an :class:`IrregularTimeError`."""
    gaps = np.diff(times)
    if gaps.size == 0:
        return None
    step = gaps[0]
    zero = step * 0
    if np.issubdtype(times.dtype, np.datetime64) or times.dtype == object:  # dates: refuse duplicates first
        seconds = np.array([geo.seconds_between(t0, t1) for t0, t1 in zip(times[:-1], times[1:])])
        twice = np.flatnonzero(np.abs(seconds) < geo.DUPLICATE_GAP_S)
        if twice.size:
            shown = ", ".join(f"{i} and {i + 1} ({geo.human_duration(gaps[i])} apart)" for i in twice[:4])
            raise IrregularTimeError(
                f"{label} has duplicate timestamps: time index {shown}. Keep one of each, e.g. "
                f"series.drop_isel(time={[int(i) + 1 for i in twice[:8]]}), or series.drop_duplicates('time') "
                "when they are equal."
            )
    same = all(g == step for g in gaps) if gaps.dtype == object else np.allclose(
        np.asarray(gaps, dtype=np.float64) if not np.issubdtype(gaps.dtype, np.timedelta64) else gaps.astype(np.int64),
        np.asarray(step, dtype=np.float64) if not np.issubdtype(gaps.dtype, np.timedelta64) else step.astype(np.int64),
        rtol=1e-9, atol=0)
    if not (step > zero) or not same:
        shown = ", ".join(geo.human_duration(g) for g in np.unique(gaps)[:4])
        raise IrregularTimeError(
            f"{label} is not at one regular, increasing time step (steps found: {shown}). Forecasting "
            "needs evenly spaced frames: resample first, e.g. series.resample(time='5min').nearest(), "
            "or select a regular stretch."
        )
    return step


def parse_series(series: Any, context: int, x_dim=None, y_dim=None, label: str = "series", fitting: bool = True) -> ParsedSeries:
    """Validate ``series``: a time dim at one regular step, ``context + 1`` frames when ``fitting``
    (the context and one frame to learn from), else ``context``; no frame without data."""
    geo.check_input(series, label)
    if "time" not in series.dims:
        raise IrregularTimeError(f"{label} has no 'time' dimension (dims: {tuple(series.dims)}): pass a "
                                 "(time, y, x) series, e.g. da.rename(t='time').")
    least = context + 1 if fitting else context
    if series.sizes["time"] < least:
        why = "the context and one frame to learn from" if fitting else "the context"
        raise SeriesTooShortError(
            f"{label} has {series.sizes['time']} frame(s); forecasting with context={context} needs at least "
            f"{least} ({why}). Pass a longer series or a smaller context=."
        )
    # the values are read whole below anyway; in memory, the series' own check sees empty frames
    parsed = Series.read(series.compute() if series.chunks is not None else series, x_dim, y_dim, label, dated=False)
    step = check_step(parsed.times, label)
    grid = parsed.grid
    order = ["time"] + ([grid.channel_dim] if grid.channel_dim is not None else []) + [grid.y_dim, grid.x_dim]
    values = geo.decoded_values(parsed.source.transpose(*order))
    if values.ndim == 3:
        values = values[:, None]
    with np.errstate(invalid="ignore"):
        huge = np.isfinite(values) & (np.abs(values) > geo.MAX_MAGNITUDE)
    geo.refuse_huge(label, int(huge.sum()), np.unique(values[huge])[:3])
    geo.check_fills(np.moveaxis(values, 1, 0), label, series)
    if min(values.shape[-2:]) < _MIN_SIZE:
        raise InputError(f"Frames of {values.shape[-2]} x {values.shape[-1]} cells are too small: the forecaster "
                         f"needs at least {_MIN_SIZE} x {_MIN_SIZE}.")
    return ParsedSeries(parsed, step, values)


def normalise(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, C, H, W)`` -> normalised with NaN set to 0, and the validity ``(N, 1, H, W)``."""
    valid = np.isfinite(values).all(axis=1, keepdims=True)
    x = (values - mean[None, :, None, None]) / std[None, :, None, None]
    return np.where(valid, x, 0.0).astype(np.float32), valid.astype(np.float32)


def to_output(s: ParsedSeries, frames: np.ndarray, horizon: int, attrs: dict, clip: bool, lo=None, hi=None) -> xr.DataArray:
    """Frames ``(K, C, H, W)`` after the series' last frame as a DataArray like the series."""
    last = s.values[-1]
    if clip:
        lo = np.nanmin(s.values, axis=(0, 2, 3)) if lo is None else lo
        hi = np.nanmax(s.values, axis=(0, 2, 3)) if hi is None else hi
        frames = np.clip(frames, lo[None, :, None, None], hi[None, :, None, None])
    frames = np.where(np.isfinite(last).all(axis=0)[None, None], frames, np.nan)
    template = s.source.isel(time=-1)
    grid = geo.describe(template, x_dim=s.grid.x_dim, y_dim=s.grid.y_dim)
    fractions = np.arange(1, horizon + 1, dtype=np.float64)
    out = geo.frames_to_xarray(frames, template, grid, None, fractions, attrs)
    step = s.step if s.step is not None else 1
    stamps = np.array([s.times[-1] + step * k for k in range(1, horizon + 1)])
    if np.issubdtype(stamps.dtype, np.datetime64):
        stamps = stamps.astype("datetime64[ns]")
    leads = np.array([step * k for k in range(1, horizon + 1)])
    time_attrs = {k: v for k, v in s.source["time"].attrs.items() if k not in ("units", "calendar")}
    out = out.drop_vars("interp_fraction").assign_coords(
        time=("time", stamps, time_attrs or {"standard_name": "time", "axis": "T"}),
        lead_time=("time", leads, {"long_name": "time after the last frame of the context"}),
    )
    return out


def encode_step(step) -> list | None:
    """The time step as JSON: ``["ns", nanoseconds]`` for durations, ``["number", value]`` otherwise."""
    if step is None:
        return None
    if isinstance(step, np.timedelta64):
        return ["ns", int(step.astype("timedelta64[ns]").astype(np.int64))]
    if hasattr(step, "total_seconds"):
        return ["ns", int(round(step.total_seconds() * 1e9))]
    return ["number", float(step)]


def provenance_attrs(method: str, s: ParsedSeries, config, call: str, device=None) -> dict:
    """The forecast's CF and xlatent attributes (:func:`xlatent.results.provenance`)."""
    info = {"device": str(device)} if device is not None else {}
    return provenance(method, info, source=s.source, config=config, call=call)
