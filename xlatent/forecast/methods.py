"""The forecast methods behind one call, :func:`forecast`: latent, flow, persistence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xlatent import cf
from xlatent._lazy import torch_side
from xlatent.arguments import check_flags, check_seed
from xlatent.checks import whole
from xlatent.device import check_device
from xlatent.exceptions import ConfigError
from xlatent.forecast.config import ForecastConfig, resolve_config
from xlatent.forecast.fit import fit_forecaster
from xlatent.forecast.inputs import ParsedSeries, parse_series, provenance_attrs, to_output
from xlatent.motion import check_options, estimate


def flow_frames(values: np.ndarray, horizon: int, motion: str, motion_transform: str) -> tuple[np.ndarray, np.ndarray]:
    """Semi-Lagrangian extrapolation of the last frame along the motion between the last two."""
    import torch

    advection = torch_side("model.advection")

    prev, last = values[-2], values[-1]
    fill = np.nanmin(values, axis=(0, 2, 3))[:, None, None]  # the motion estimate needs NaN-free frames
    prev, last = np.where(np.isfinite(prev), prev, fill), np.where(np.isfinite(last), last, fill)
    field = estimate(prev, last, motion, motion_transform)  # cells per time step: column, row
    u = torch.from_numpy(field)[None]
    image = torch.from_numpy(last.astype(np.float32))[None]
    with torch.inference_mode():
        frames = [advection.sample(image, advection.departure([u] * k, [1.0] * k))[0].numpy() for k in range(1, horizon + 1)]
    return np.stack(frames), field


def forecast(
    series: xr.DataArray,
    horizon: int = 12,
    context: int = 4,
    *,
    method: str = "latent",
    x_dim: str | None = None,
    y_dim: str | None = None,
    device: str = "auto",
    seed: int | None = 0,
    progress: bool = True,
    clip: bool = True,
    motion: str = "tvl1",
    motion_transform: str = "auto",
    config: ForecastConfig | None = None,
    **options: Any,
) -> xr.DataArray:
    """The ``horizon`` frames after the end of ``series``.

    Parameters
    ----------
    series : xarray.DataArray
        ``(time, y, x)`` or with one channel dim, at one regular time step.
    horizon : int
        Frames to forecast (>= 1).
    context : int
        Frames the forecast starts from (the last ``context`` of the series).
    method : {"latent", "flow", "persistence"}
        ``"latent"`` trains the forecaster on sliding windows of the series (:func:`fit_forecaster`)
        and forecasts from its last ``context`` frames; ``"flow"`` extrapolates the last frame along
        the motion between the last two (``motion``/``motion_transform`` as for
        :func:`xlatent.interpolate`); ``"persistence"`` repeats the last frame.
    clip : bool
        Keep values within the range of the series (rain rate stays >= 0).
    config, **options
        The latent forecaster's :class:`ForecastConfig` and field overrides (``method="latent"`` only).

    Returns
    -------
    xarray.DataArray
        ``(time, [channel], y, x)``: ``time`` continues the series at its step, ``lead_time`` along
        it; name, attrs, coords and CRS of the series, CF ``history`` with this call appended.
    """
    found = _METHODS.get(method) if isinstance(method, str) else None
    if found is None:
        raise ConfigError(f"Unknown forecast method {method!r}: use one of {', '.join(map(repr, METHODS))}.")
    horizon = whole("horizon", horizon, 1)
    context = whole("context", context, found.least_context)
    check_flags(progress=progress, clip=clip)
    check_seed(seed)
    check_options(motion, motion_transform)
    if not found.trained and (options or config is not None):
        raise ConfigError(f"Option(s) {sorted(options) + (['config'] if config is not None else [])} apply to "
                          f"method='latent' only, not {method!r}.")
    cfg = resolve_config(config, options) if found.trained else None
    check_device(device, method, uses_device=found.trained)
    s = parse_series(series, context, x_dim, y_dim)
    call = cf.call_repr("forecast", method=method, horizon=horizon, context=context, seed=seed, **options)
    request = _Request(series, s, method, horizon, context, clip, motion, motion_transform, cfg, call, x_dim, y_dim,
                       device, seed, progress)
    return found.run(request)


@dataclass(frozen=True)
class _Request:
    """A checked call of :func:`forecast`, as the method functions receive it."""

    series: xr.DataArray
    parsed: ParsedSeries
    method: str
    horizon: int
    context: int
    clip: bool
    motion: str
    motion_transform: str
    config: ForecastConfig | None
    call: str
    x_dim: str | None
    y_dim: str | None
    device: str
    seed: int | None
    progress: bool


def _persistence(r: _Request) -> xr.DataArray:
    """The last frame, repeated."""
    frames = np.repeat(r.parsed.values[-1:], r.horizon, axis=0)
    return to_output(r.parsed, frames, r.horizon, provenance_attrs(r.method, r.parsed, None, r.call), r.clip)


def _flow(r: _Request) -> xr.DataArray:
    """The last frame extrapolated along the motion between the last two."""
    frames, _ = flow_frames(r.parsed.values[-r.context:], r.horizon, r.motion, r.motion_transform)
    return to_output(r.parsed, frames, r.horizon, provenance_attrs(r.method, r.parsed, None, r.call), r.clip)


def _latent(r: _Request) -> xr.DataArray:
    """The forecaster fitted on the series' sliding windows, run from its last ``context`` frames."""
    fitted = fit_forecaster(r.series, r.context, x_dim=r.x_dim, y_dim=r.y_dim, device=r.device, seed=r.seed,
                            progress=r.progress, config=r.config)
    out = fitted.forecast(r.series, r.horizon, clip=r.clip)
    out.attrs.update(provenance_attrs("latent", r.parsed, r.config, r.call, fitted._device))
    out.attrs["xlatent_training"] = _training_summary(fitted.history)
    return out


def _training_summary(history: dict) -> str:
    """One line on how the forecaster's training ended (an attribute of the forecast)."""
    text = f"{len(history['loss'])} steps in {history['seconds']:.0f} s, stopped: {history['stopped']}"
    if history.get("best_step"):
        text += f"; weights of step {history['best_step'][0]} (best validation error)"
    return text


@dataclass(frozen=True)
class _Method:
    """A forecast method: its function, the least ``context`` it needs, and whether it is trained
    (takes :class:`ForecastConfig` options and runs on the torch device)."""

    run: Callable[[_Request], xr.DataArray]
    least_context: int = 1
    trained: bool = False


_METHODS = {"latent": _Method(_latent, trained=True), "flow": _Method(_flow, least_context=2),
            "persistence": _Method(_persistence)}
METHODS = tuple(_METHODS)
