"""A series rendered interval by interval: what :func:`xlatent.series.interp` and
:func:`xlatent.totals.accumulate` share. Each interval is one :func:`xlatent.interpolate` call
(in memory, or one dask task per call on a lazy series); long gaps, the options passed to each
pair, and the outputs shaped like the series (its dims, coords, CRS and attributes)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xlatent import api, geo
from xlatent.exceptions import ConfigError, GapWarning
from xlatent.results import provenance
from xlatent.stack import Series

MOTIONLESS = ("linear",)  # methods that return no motion (flow is None)



def render_interval(first: xr.DataArray, last: xr.DataArray, fractions: np.ndarray, frame_dims: tuple, method: str,
            options: dict, match: bool = False) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Frames of one interval at ``fractions`` (``(K, *frame)`` in the source's dim order) and
    its motion ``u``, ``v`` averaged over the method's stages (``(y, x)`` in the source's order),
    None for a method without motion; ``match``: each frame's values matched to the quantiles
    interpolated between the two inputs (:func:`match_quantiles`). Runs in memory (inside a
    dask task for a lazy series)."""
    frames, flow = api.interpolate(first, last, fractions=fractions, method=method, progress=False, **options)
    values = frames.transpose("time", *frame_dims).values
    if match:
        a, b = (x.transpose(*frame_dims).values for x in (first, last))
        values = np.stack([match_quantiles(v, a, b, t) for v, t in zip(values, fractions)])
    if flow is None:
        return values, None, None
    spatial = [d for d in frame_dims if d in flow.u.dims]
    return values, *(flow[k].mean("time").transpose(*spatial).values for k in ("u", "v"))


def match_quantiles(frame: np.ndarray, first: np.ndarray, last: np.ndarray, t: float) -> np.ndarray:
    """``frame`` with its values replaced, rank for rank, by the quantiles of ``first`` and
    ``last`` blended ``(1 - t)``, ``t`` (probability matching, as nowcasting does after
    blending); NaN stays NaN and tied values get the mean of their targets.

    A blend of two images carried along imperfect motion is smoother than either image, so
    frames inside an interval lose contrast that the input frames have: matching restores the
    distribution an interval should have at ``t`` and keeps the pattern (the ranks).
    """
    out = np.array(frame, dtype=np.float64)
    ok = np.isfinite(out)
    qa, qb = (np.sort(x[np.isfinite(x)]) for x in (first, last))
    if not ok.any() or qa.size == 0 or qb.size == 0:
        return frame
    values = out[ok]
    order = np.argsort(values, kind="stable")
    p = (np.arange(values.size) + 0.5) / values.size
    target = (1 - t) * np.interp(p, (np.arange(qa.size) + 0.5) / qa.size, qa) \
        + t * np.interp(p, (np.arange(qb.size) + 0.5) / qb.size, qb)
    _, group = np.unique(values[order], return_inverse=True)  # ties (a dry plateau) share one value
    target = (np.bincount(group, target) / np.bincount(group))[group]
    matched = np.empty_like(values)
    matched[order] = target
    out[ok] = matched
    return out.astype(frame.dtype)


def renderer(series: Series, method: str, options: dict, match: bool = False) -> Callable:
    """``render(i, fractions) -> (frames, u, v)`` for interval ``i``: in memory, or lazy arrays
    from one dask task per call."""
    frame_dims, shape = series.frame_dims, series.frame_shape
    if not series.lazy:
        return lambda i, fr: render_interval(*series.pair(i), fr, frame_dims, method, options, match)
    import dask
    import dask.array as dsa

    dtype = series.source.dtype if np.issubdtype(series.source.dtype, np.floating) else np.float32
    spatial = tuple(series.source.sizes[d] for d in frame_dims if d in (series.grid.y_dim, series.grid.x_dim))

    def render(i, fr):
        task = dask.delayed(render_interval, nout=3, pure=True)(*series.pair(i), fr, frame_dims, method, options, match)
        frames = dsa.from_delayed(task[0], (len(fr), *shape), dtype=dtype)
        if method in MOTIONLESS:
            return frames, None, None
        return (frames, *(dsa.from_delayed(task[k], spatial, dtype=np.float32) for k in (1, 2)))

    return render


def long_gaps(series: Series, max_gap: Any) -> np.ndarray:
    """Which intervals are longer than ``max_gap`` (warned about once)."""
    if max_gap is None:
        return np.zeros(len(series) - 1, bool)
    limit = positive_duration(max_gap, "max_gap")
    long = series.steps > limit
    if long.any():
        where = ", ".join(f"{series.times[i]}–{series.times[i + 1]}" for i in np.flatnonzero(long)[:5])
        warnings.warn(f"{int(long.sum())} interval(s) longer than max_gap={max_gap!r} ({where}"
                      f"{'...' if long.sum() > 5 else ''}): their frames and motion are NaN. Raise max_gap to "
                      "interpolate across them.", GapWarning, stacklevel=3)
    return long


def positive_duration(value: Any, name: str) -> np.timedelta64:
    """``value`` ('30min', a numpy or pandas timedelta...) as a positive ``timedelta64[ns]``; ``name`` for the error."""
    try:
        td = pd.Timedelta(value)
    except (TypeError, ValueError):
        td = pd.NaT
    if td is pd.NaT or td <= pd.Timedelta(0):
        raise ConfigError(f"{name} must be a positive duration ('30min', '1h', numpy/pandas timedelta), got {value!r}.")
    return np.timedelta64(td.value, "ns")


def pair_method(model: Any, method: str | None) -> str:
    """The method each pair is rendered with: ``method``, else the archive model's when ``model=``
    is given, else ``"flow"`` (an explicit method beside ``model=`` is refused by ``interpolate``)."""
    if method is not None:
        return method
    return "flow" if model is None else "archive"


def pair_options(model: Any, options: dict) -> dict:
    """Options for each pair; ``model=`` is passed on only when given."""
    if "fractions" in options or "steps" in options:
        raise ConfigError("steps/fractions are set by the series' times: pass time= (interp) or substep= (accumulate).")
    return options if model is None else {**options, "model": model}


def nan_like(shape: tuple, lazy: bool, dtype=np.float32):
    """An array of NaN, a dask one when ``lazy``."""
    if lazy:
        import dask.array as dsa

        return dsa.full(shape, np.nan, dtype=dtype)
    return np.full(shape, np.nan, dtype=dtype)


def output_attrs(series: Series, method: str, call: str, drop: tuple = ()) -> dict:
    """The series' attributes (less packing and ``drop``) with the outputs' CF provenance."""
    kept = {k: v for k, v in series.source.attrs.items() if k not in geo.PACKING_ATTRS + drop}
    return {**kept, **provenance(method, {}, source=series.source, call=call)}


def wrap_like(series: Series, values, times: np.ndarray, attrs: dict, name: Hashable, starts: np.ndarray | None = None
          ) -> xr.DataArray:
    """``(time, *frame)`` values as a DataArray like the series: its dims, coords and CRS."""
    tdim = series.time_dim
    out = xr.DataArray(values, dims=(tdim, *series.frame_dims), name=name)
    out = out.assign_coords(series.template().coords)
    out = out.assign_coords({tdim: (tdim, times.astype("datetime64[ns]"), dict(series.source[tdim].attrs))})
    if starts is not None:  # a DataArray cannot hold CF (time, nv) bounds: the start as a coord
        out[tdim].attrs["long_name"] = "end of the period"
        out = out.assign_coords(period_start=(tdim, starts.astype("datetime64[ns]"), {"long_name": "start of the period"}))
    out.attrs = attrs
    return geo.write_crs_like(out.transpose(*series.source.dims), series.template(), series.grid)


def stacked(parts: list, lazy: bool):
    """``parts`` stacked on a new first axis (numpy, or dask when ``lazy``)."""
    if lazy:
        import dask.array as dsa

        return dsa.stack(parts)
    return np.stack(parts)
