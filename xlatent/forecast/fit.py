"""Fitting the latent forecaster on sliding windows of series: :func:`fit_forecaster`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from xlatent._lazy import torch_side
from xlatent.arguments import check_flags, check_seed
from xlatent.checks import whole
from xlatent.device import check_device, resolve_device
from xlatent.exceptions import InputError
from xlatent.forecast.config import ForecastConfig, resolve_config
from xlatent.forecast.inputs import encode_step, normalise, parse_series
from xlatent.forecast.model import Forecaster, build_model
from xlatent.patches import patch_origins


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

    def cut(crops) -> tuple:
        """Frames and masks ``(B, length, ., p, p)`` of ``(series, start, row, column)`` crops."""
        return tuple(torch.stack([stacks[i][part][t : t + length, :, r : r + p, q : q + p] for i, t, r, q in crops])
                     for part in (0, 1))

    callbacks = []
    if held:
        fixed = origins[np.unique(np.linspace(0, len(origins) - 1, 4).round().astype(int))]
        val_frames, val_masks = cut([(i, t, r, q) for i, n in enumerate(starts) for t in range(n - held, n)
                                     for r, q in fixed])
        error = torch_side("model.forecast").prediction_error
        callbacks.append(train.Validation(lambda m: error(m, val_frames, val_masks), every=config.val_every,
                                          patience=config.val_patience, keep_best=True))

    def step(rng: np.random.Generator):
        picks = windows[rng.integers(len(windows), size=config.batch_size)]
        where = origins[rng.integers(len(origins), size=config.batch_size)]
        frames, masks = cut([(i, t, r, q) for (i, t), (r, q) in zip(picks, where)])
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
    cfg = resolve_config(config, options)
    check_device(device)
    many = list(series) if isinstance(series, (list, tuple)) else [series]
    if not many:
        raise InputError("series is an empty list: pass at least one (time, y, x) DataArray.")
    parsed = [parse_series(s, context, x_dim, y_dim, label=f"series[{i}]" if len(many) > 1 else "series")
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
    data = [normalise(p.values, mean, std) for p in parsed]
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    dev = resolve_device(device)
    model = build_model(parsed[0].values.shape[1], context, cfg, dev)
    history = _train(model, data, cfg, context, dev, seed, progress)
    value_range = (np.nanmin(flat, axis=1), np.nanmax(flat, axis=1))
    return Forecaster(model, cfg, context, mean, std, encode_step(parsed[0].step), (x_dim, y_dim), history, dev,
                      value_range)
