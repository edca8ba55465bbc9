"""Forecasting the next frames of a series: :func:`forecast`, :func:`fit_forecaster`, :class:`Forecaster`.

Three methods through one call. ``"latent"``: the PDE-driven spatiotemporal disentanglement of
Donà et al. (ICLR 2021; :mod:`xlatent.model.forecast`), trained on sliding windows of the series
(random spatial patches, so large scenes train). ``"flow"``: semi-Lagrangian extrapolation of the
last frame along the motion estimated from the last two (the library's TV-L1 estimate; pysteps'
``extrapolation.semilagrangian`` is the reference convention: a steady field, departure points
traced back one step at a time, the last frame interpolated once). ``"persistence"``: the last
frame repeated.

xarray in, xarray out; validation and geo handling from :mod:`xlatent.geo`, provenance and the
training loop shared with the interpolator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xlatent import cf, geo, modelfile
from xlatent._lazy import torch_side
from xlatent.arguments import check_flags, check_seed
from xlatent.checks import real, whole
from xlatent.device import check_device, resolve_device
from xlatent.exceptions import (
    ConfigError,
    InputError,
    IrregularTimeError,
    SeriesTooShortError,
)
from xlatent.motion import check_options, estimate
from xlatent.patches import patch_origins
from xlatent.results import provenance

_FORMAT = "xlatent-forecast-model"
_FORMAT_VERSION = 1
_MIN_SIZE = 8

_WHOLE = {"static_channels": 1, "dynamic_channels": 1, "width": 1, "ode_hidden": 1, "ode_blocks": 1,
          "train_horizon": 1, "patch": 4, "stride": 1, "batch_size": 1, "max_iters": 1, "patience": 1,
          "validation": 0, "val_every": 1, "val_patience": 1}
_REAL = {"lambda_pred": (0.0, False), "lambda_ae": (0.0, False), "lambda_s": (0.0, False), "lr": (0.0, True),
         "min_delta": (0.0, False)}


@dataclass
class ForecastConfig:
    """Sizes, loss weights and training settings of the latent forecaster.

    The loss weights and the optimiser are the paper's defaults (Donà et al. 2021, appendix E.3):
    ``lambda_pred = 45``, ``lambda_s = 45``, ``lambda_t = p/2 * 1e-3`` with ``p`` the size of
    ``T_0`` on a training patch (``lambda_t=None``), Adam with learning rate ``4e-4`` and
    ``betas = (0.9, 0.99)``, no decay. ``lambda_ae = 10`` is the paper's value for SST with
    vector states and Moving MNIST (it used 1 for WaveEq and 0.1 for 2-D SST states).

    Attributes
    ----------
    static_channels, dynamic_channels : int
        Channels of the latent maps ``S`` and ``T`` (1/4 of the frame a side).
    width : int
        Channels of the encoders' and decoder's first level (twice that below).
    ode_hidden, ode_blocks : int
        Hidden channels and number ``K`` of residual blocks of the integrator (the paper's 2-D
        SST variant: 128 and 2).
    static : bool
        False: the paper's ablation without ``S``.
    train_horizon : int
        Frames predicted after the context in each training window (the paper's WaveEq: 20).
    patch, stride : int
        Training patch size (cells a side, rounded down to a multiple of 4) and the stride of the
        grid of patch origins.
    batch_size, max_iters, patience, min_delta, time_budget : ...
        Windows per step, most steps, early stop after ``patience`` steps without a relative
        improvement of ``min_delta`` of the smoothed loss, and a wall-clock limit in seconds.
    validation, val_every, val_patience : int
        The last ``validation`` windows of each series are never drawn for training: every
        ``val_every`` steps the forecast error on them (a few fixed patches) is computed, training
        stops after ``val_patience`` evaluations without improvement, and the weights of the best
        evaluation are kept. ``validation=0`` trains on every window for ``max_iters`` steps.

    The defaults are sized for a CPU: a 128 x 128 series of 40 frames trains in about a minute
    on 2 cores (``benchmarks/forecast_cost.py``). The paper's sizes are ``width=32,
    ode_hidden=64, train_horizon=8`` and thousands of steps (a GPU's work).
    """

    static_channels: int = 32
    dynamic_channels: int = 16
    width: int = 16
    ode_hidden: int = 32
    ode_blocks: int = 2
    static: bool = True
    train_horizon: int = 6
    patch: int = 64
    stride: int = 8
    batch_size: int = 8
    lambda_pred: float = 45.0
    lambda_ae: float = 10.0
    lambda_s: float = 45.0
    lambda_t: float | None = None
    lr: float = 4e-4
    betas: tuple[float, float] = (0.9, 0.99)
    max_iters: int = 300
    patience: int = 100
    min_delta: float = 1e-3
    time_budget: float | None = None
    validation: int = 2
    val_every: int = 25
    val_patience: int = 4

    def __post_init__(self) -> None:
        for name, low in _WHOLE.items():
            setattr(self, name, whole(name, getattr(self, name), low, floats=True))
        for name, (low, strict) in _REAL.items():
            setattr(self, name, real(name, getattr(self, name), low, strict))
        if self.lambda_t is not None:
            self.lambda_t = real("lambda_t", self.lambda_t, 0.0, False, "None or ")
        if self.time_budget is not None:
            self.time_budget = real("time_budget", self.time_budget, 0.0, True, "None or ")
        if not isinstance(self.static, (bool, np.bool_)):
            raise ConfigError(f"static must be True or False, got {self.static!r}.")
        betas = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else ()
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas!r}.")
        self.betas = (float(betas[0]), float(betas[1]))

    def to_dict(self) -> dict:
        """The configuration as a JSON-serialisable dict (saved with the weights)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ForecastConfig:
        """Build from a dict, rejecting unknown keys with a :class:`ConfigError` that lists them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown forecaster option(s) {unknown}; known: {', '.join(sorted(known))}.")
        return cls(**values)


@dataclass
class _Series:
    """A validated series: values ``(N, C, H, W)`` in physical units (NaN where missing)."""

    source: xr.DataArray
    grid: geo.Grid
    times: np.ndarray
    step: Any
    values: np.ndarray


def _check_step(times: np.ndarray, label: str):
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


def _series(series: Any, context: int, x_dim=None, y_dim=None, label: str = "series", fitting: bool = True) -> _Series:
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
    times = geo.cf_time_values(series["time"])
    step = _check_step(times, label)
    grid = geo.describe(series.isel(time=0), x_dim=x_dim, y_dim=y_dim)
    order = ["time"] + ([grid.channel_dim] if grid.channel_dim is not None else []) + [grid.y_dim, grid.x_dim]
    values = geo.decoded_values(series.transpose(*order))
    if values.ndim == 3:
        values = values[:, None]
    with np.errstate(invalid="ignore"):
        huge = np.isfinite(values) & (np.abs(values) > geo.MAX_MAGNITUDE)
    geo.refuse_huge(label, int(huge.sum()), np.unique(values[huge])[:3])
    geo.check_fills(np.moveaxis(values, 1, 0), label, series)
    if min(values.shape[-2:]) < _MIN_SIZE:
        raise InputError(f"Frames of {values.shape[-2]} x {values.shape[-1]} cells are too small: the forecaster "
                         f"needs at least {_MIN_SIZE} x {_MIN_SIZE}.")
    empty = np.flatnonzero(~np.isfinite(values).any(axis=(1, 2, 3)))
    if empty.size:
        raise InputError(
            f"{label} has frame(s) without any finite value (all NaN) at time index {empty[:8].tolist()}: nothing "
            "to forecast from. Fill them (e.g. series.interpolate_na('time')) or select a stretch without them."
        )
    return _Series(series, grid, times, step, values)


def _normalise(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, C, H, W)`` -> normalised with NaN set to 0, and the validity ``(N, 1, H, W)``."""
    valid = np.isfinite(values).all(axis=1, keepdims=True)
    x = (values - mean[None, :, None, None]) / std[None, :, None, None]
    return np.where(valid, x, 0.0).astype(np.float32), valid.astype(np.float32)


def _output(s: _Series, frames: np.ndarray, horizon: int, attrs: dict, clip: bool, lo=None, hi=None) -> xr.DataArray:
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


def _flow_frames(values: np.ndarray, horizon: int, motion: str, motion_transform: str) -> tuple[np.ndarray, np.ndarray]:
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


class Forecaster:
    """A latent forecaster fitted to one or more series; forecasts from any context window.

    Make one with :func:`fit_forecaster` or :func:`load_forecaster`.
    """

    def __init__(self, model, config: ForecastConfig, context: int, mean, std, step, dims=(None, None),
                 history=None, device=None, value_range=None) -> None:
        self._model = model
        self.config = config
        self.context = int(context)
        self._mean = np.asarray(mean, dtype=np.float32)
        self._std = np.asarray(std, dtype=np.float32)
        self._step = step
        self._dims = tuple(dims)
        self._history = history
        self._device = device
        # per-channel min and max of the training series: forecasts are clipped to them
        self._range = None if value_range is None else np.asarray(value_range, dtype=np.float32)

    @property
    def history(self) -> dict | None:
        """Training history: ``loss`` per step and its parts (``pred``, ``ae``, ``reg_s``, ``reg_t``)."""
        return None if self._history is None else self._history.to_dict()

    def _tensor(self, s: _Series):
        import torch

        x, _ = _normalise(s.values[-self.context :], self._mean, self._std)
        return torch_side("model.forecast").flat_context(torch.from_numpy(x)[None].to(self._device))

    def codes(self, window: xr.DataArray) -> tuple[np.ndarray | None, np.ndarray]:
        """``(S, T_0)`` from the last ``context`` frames of ``window``: the static latent map
        ``(static_channels, H/4, W/4)`` (None without S) and the initial dynamic state."""
        import torch

        s = _series(window, self.context, *self._dims, label="window", fitting=False)
        ctx = torch_side("model.forecast").pad_to(self._tensor(s))[0]
        with torch.inference_mode():
            static = self._model.encode_static(ctx)
            dynamic = self._model.encode_dynamic(ctx)
        return (None if static is None else static[0][0].cpu().numpy()), dynamic[0].cpu().numpy()

    def forecast(self, context_window: xr.DataArray, horizon: int = 12, *, clip: bool = True) -> xr.DataArray:
        """The ``horizon`` frames after ``context_window`` (its last ``context`` frames are used).

        Returns a DataArray like the window, ``time`` continuing it at its step, with a
        ``lead_time`` coord; NaN where the last frame of the window is.
        """
        import torch

        horizon = whole("horizon", horizon, 1)
        s = _series(context_window, self.context, *self._dims, label="context_window", fitting=False)
        if s.values.shape[1] != self._model.channels:
            raise InputError(f"The forecaster was fitted on {self._model.channels} channel(s); this window has "
                             f"{s.values.shape[1]}.")
        if s.step is not None and self._step is not None and _encode_step(s.step) != list(self._step):
            raise IrregularTimeError(
                f"context_window has a time step of {geo.human_duration(s.step)}, the forecaster was fitted at "
                f"{geo.human_duration(self._step_value())}: "
                "forecast at the step it was fitted at (resample the window)."
            )
        ctx, (h, w) = torch_side("model.forecast").pad_to(self._tensor(s))
        with torch.inference_mode():
            frames = torch.stack(self._model.rollout(ctx, horizon), dim=1)[0, :, :, :h, :w].cpu().numpy()
        frames = geo.denormalise(frames, self._mean, self._std, s.source.dtype)  # float64 series keep their precision
        if s.step is None:
            s.step = self._step_value()
        call = cf.call_repr("Forecaster.forecast", horizon=horizon, context=self.context)
        lo, hi = (None, None) if self._range is None else self._range
        return _output(s, frames, horizon, _attrs("latent", s, self.config, call, self._device), clip, lo, hi)

    def _step_value(self):
        if self._step is None:
            return None
        kind, value = self._step
        return np.timedelta64(int(value), "ns") if kind == "ns" else value

    def save(self, path: str | Path) -> Path:
        """Weights and a JSON description in one file (read back by :func:`load_forecaster`)."""
        meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "channels": self._model.channels,
                "context": self.context, "config": self.config.to_dict(), "mean": self._mean.tolist(),
                "std": self._std.tolist(), "step": self._step, "dims": list(self._dims),
                "value_range": None if self._range is None else self._range.tolist()}
        return modelfile.write(path, meta, self._model.state_dict())


def _encode_step(step) -> list | None:
    if step is None:
        return None
    if isinstance(step, np.timedelta64):
        return ["ns", int(step.astype("timedelta64[ns]").astype(np.int64))]
    if hasattr(step, "total_seconds"):
        return ["ns", int(round(step.total_seconds() * 1e9))]
    return ["number", float(step)]


def _attrs(method: str, s: _Series, config, call: str, device=None) -> dict:
    info = {"device": str(device)} if device is not None else {}
    return provenance(method, info, source=s.source, config=config, call=call)


def _build_model(channels: int, context: int, config: ForecastConfig, device):
    """The forecaster's network, built on ``device`` (no CPU copy first)."""
    import torch

    with torch.device(device):
        return torch_side("model.forecast").SpatioTemporal(
            channels, context, static_channels=config.static_channels, dynamic_channels=config.dynamic_channels,
            width=config.width, ode_hidden=config.ode_hidden, ode_blocks=config.ode_blocks, static=config.static)


def load_forecaster(path: str | Path, device: str = "auto") -> Forecaster:
    """Read a forecaster written by :meth:`Forecaster.save`; nothing but tensors and JSON is unpickled."""
    check_device(device)
    meta, tensors = modelfile.read(path, _FORMAT, _FORMAT_VERSION, "forecaster", "Forecaster.save")
    config = ForecastConfig.from_dict({**meta["config"], "betas": tuple(meta["config"]["betas"])})
    dev = resolve_device(device)
    model = _build_model(meta["channels"], meta["context"], config, dev)
    model.load_state_dict(tensors)
    model.eval()
    return Forecaster(model, config, meta["context"], meta["mean"], meta["std"], meta["step"], meta["dims"], None, dev,
                      meta.get("value_range"))


def _config(config: ForecastConfig | None, options: dict) -> ForecastConfig:
    if config is not None and not isinstance(config, ForecastConfig):
        raise ConfigError(f"config must be an xlatent.ForecastConfig or None, got {type(config).__name__}.")
    base = config or ForecastConfig()
    if options:
        ForecastConfig.from_dict({**base.to_dict(), **options})  # validates the names and values
        base = replace(base, **options)
    return base


def _train(model, data: list[tuple[np.ndarray, np.ndarray]], config: ForecastConfig, context: int, device,
           seed, progress):
    """Fit ``model`` on random (window, patch) draws from the normalised series in ``data``."""
    import torch

    length = context + min(config.train_horizon, min(x.shape[0] for x, _ in data) - context)
    shape = data[0][0].shape[-2:]
    p = max(4, min(config.patch, *shape) // 4 * 4)
    origins = patch_origins(shape, (p, p), (config.stride, config.stride))
    starts = [x.shape[0] - length + 1 for x, _ in data]
    held = config.validation if min(starts) > config.validation else 0  # too short a series: no validation
    windows = np.array([(i, t) for i, n in enumerate(starts) for t in range(n - held)])
    stacks = [(torch.from_numpy(x).to(device), torch.from_numpy(m).to(device)) for x, m in data]
    weights = {"pred": config.lambda_pred, "ae": config.lambda_ae, "s": config.lambda_s, "t": config.lambda_t}
    train = torch_side("train")
    callbacks = []
    if held:
        fixed = origins[np.unique(np.linspace(0, len(origins) - 1, 4).round().astype(int))]
        chosen = [(i, t, r, q) for i, n in enumerate(starts) for t in range(n - held, n) for r, q in fixed]
        val_frames = torch.stack([stacks[i][0][t : t + length, :, r : r + p, q : q + p] for i, t, r, q in chosen])
        val_masks = torch.stack([stacks[i][1][t : t + length, :, r : r + p, q : q + p] for i, t, r, q in chosen])
        error = torch_side("model.forecast").prediction_error
        callbacks.append(train.Validation(lambda m: error(m, val_frames, val_masks), every=config.val_every,
                                          patience=config.val_patience, keep_best=True))

    def step(rng: np.random.Generator):
        picks = windows[rng.integers(len(windows), size=config.batch_size)]
        where = origins[rng.integers(len(origins), size=config.batch_size)]
        frames = torch.stack([stacks[i][0][t : t + length, :, r : r + p, q : q + p] for (i, t), (r, q) in zip(picks, where)])
        masks = torch.stack([stacks[i][1][t : t + length, :, r : r + p, q : q + p] for (i, t), (r, q) in zip(picks, where)])
        return torch_side("model.forecast").window_loss(model, frames, masks, weights, rng)

    return train.optimise(model, step, device=device, seed=seed, progress=progress, lr=config.lr,
                          lr_final=config.lr, max_iters=config.max_iters, patience=config.patience,
                          min_delta=config.min_delta, time_budget=config.time_budget,
                          keys=("loss", "pred", "ae", "reg_s", "reg_t"), betas=config.betas,
                          desc="xlatent forecaster", callbacks=callbacks)


def fit_forecaster(
    series: xr.DataArray | Sequence[xr.DataArray],
    context: int = 4,
    *,
    x_dim: str | None = None,
    y_dim: str | None = None,
    device: str = "auto",
    seed: int | None = 0,
    progress: bool = True,
    config: ForecastConfig | None = None,
    **options: Any,
) -> Forecaster:
    """Fit the latent forecaster on sliding windows of one series, or of several on one grid.

    Parameters
    ----------
    series : xarray.DataArray or list of them
        ``(time, y, x)`` or with one channel dim, at one regular time step, at least ``context + 1``
        frames each (``context + train_horizon`` to use the full training horizon).
    context : int
        Frames the encoders see (the paper's ``tau + 1``).
    device, seed, progress
        As for :func:`xlatent.fit`.
    config : ForecastConfig, optional
        ``**options`` override single fields (``max_iters=300``, ``time_budget=60``, ``static=False``).

    Every option and input is checked before training: an irregular time step is an
    :class:`~xlatent.exceptions.IrregularTimeError`, a series shorter than ``context + 1`` a
    :class:`~xlatent.exceptions.SeriesTooShortError`, a frame without data an
    :class:`~xlatent.exceptions.InputError`.
    """
    context = whole("context", context, 1)
    check_flags(progress=progress)
    check_seed(seed)
    cfg = _config(config, options)
    check_device(device)
    many = list(series) if isinstance(series, (list, tuple)) else [series]
    if not many:
        raise InputError("series is an empty list: pass at least one (time, y, x) DataArray.")
    parsed = [_series(s, context, x_dim, y_dim, label=f"series[{i}]" if len(many) > 1 else "series")
              for i, s in enumerate(many)]
    shapes = {p.values.shape[1:] for p in parsed}
    steps = {str(p.step) for p in parsed}
    if len(shapes) > 1 or len(steps) > 1:
        raise InputError(f"The series differ in channels/grid size {sorted(shapes)} or time step {sorted(steps)}: "
                         "fit on series of one grid and one step.")
    flat = np.concatenate([p.values.transpose(1, 0, 2, 3).reshape(p.values.shape[1], -1) for p in parsed], axis=1)
    mean = np.nanmean(flat, axis=1).astype(np.float32)
    std = np.nanstd(flat, axis=1)
    std = np.where(std > 0, std, 1.0).astype(np.float32)
    data = [_normalise(p.values, mean, std) for p in parsed]
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    dev = resolve_device(device)
    model = _build_model(parsed[0].values.shape[1], context, cfg, dev)
    history = _train(model, data, cfg, context, dev, seed, progress)
    value_range = (np.nanmin(flat, axis=1), np.nanmax(flat, axis=1))
    return Forecaster(model, cfg, context, mean, std, _encode_step(parsed[0].step), (x_dim, y_dim), history, dev,
                      value_range)


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
    cfg = _config(config, options) if found.trained else None
    check_device(device, method, uses_device=found.trained)
    s = _series(series, context, x_dim, y_dim)
    call = cf.call_repr("forecast", method=method, horizon=horizon, context=context, seed=seed, **options)
    request = _Request(series, s, method, horizon, context, clip, motion, motion_transform, cfg, call, x_dim, y_dim,
                       device, seed, progress)
    return found.run(request)


@dataclass(frozen=True)
class _Request:
    """A checked call of :func:`forecast`, as the method functions receive it."""

    series: xr.DataArray
    parsed: _Series
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
    return _output(r.parsed, frames, r.horizon, _attrs(r.method, r.parsed, None, r.call), r.clip)


def _flow(r: _Request) -> xr.DataArray:
    """The last frame extrapolated along the motion between the last two."""
    frames, _ = _flow_frames(r.parsed.values[-r.context:], r.horizon, r.motion, r.motion_transform)
    return _output(r.parsed, frames, r.horizon, _attrs(r.method, r.parsed, None, r.call), r.clip)


def _latent(r: _Request) -> xr.DataArray:
    """The forecaster fitted on the series' sliding windows, run from its last ``context`` frames."""
    fitted = fit_forecaster(r.series, r.context, x_dim=r.x_dim, y_dim=r.y_dim, device=r.device, seed=r.seed,
                            progress=r.progress, config=r.config)
    out = fitted.forecast(r.series, r.horizon, clip=r.clip)
    out.attrs.update(_attrs("latent", r.parsed, r.config, r.call, fitted._device))
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
