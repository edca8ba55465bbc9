"""Fitting the archive model: :func:`fit_interpolator` (windows, augmentation, the one training
loop with a time-blocked validation against ``flow``)."""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xlatent._lazy import torch_side
from xlatent._version import __version__
from xlatent.archive.model import TRANSFORM, ArchiveInterpolator, predict
from xlatent.archive.windows import archive_series, grid_spacing, psnr, window, window_pairs
from xlatent.device import check_device, resolve_device
from xlatent.exceptions import ArchiveMismatchWarning, ConfigError, InputError

log = logging.getLogger(__name__)


def _dihedral(x, code: int, vectors: int = 3):
    """One of the 8 flips/transposes of a batch ``(B, L, H, W)`` whose first ``vectors`` channel
    pairs are ``(column, row)`` vectors (velocity, displacements): they turn with the grid."""
    import torch

    n = 2 * vectors
    cols, rows = list(range(0, n, 2)), list(range(1, n, 2))
    if code & 4:
        x = x.transpose(-1, -2)
        x = torch.cat((x[:, [k for pair in zip(rows, cols) for k in pair]], x[:, n:]), 1)
    sign = torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
    if code & 1:
        x = x.flip(-1)
        sign[cols] = -1.0
    if code & 2:
        x = x.flip(-2)
        sign[rows] = -sign[rows]
    return x * sign.view(1, -1, 1, 1)


def _check_fit_options(k_range, windows_per_series, val_fraction, max_iters, time_budget, batch_size, crop, lr,
                       seed) -> tuple[int, int]:
    try:
        kmin, kmax = (int(k) for k in k_range)
    except (TypeError, ValueError):
        raise ConfigError(f"k_range must be two whole numbers (min, max time steps), got {k_range!r}.") from None
    if not 2 <= kmin <= kmax:
        raise ConfigError(f"k_range must satisfy 2 <= min <= max (time steps between the two ends), got {k_range!r}.")
    for name, value, low in (("windows_per_series", windows_per_series, 1), ("max_iters", max_iters, 0),
                             ("batch_size", batch_size, 1), ("crop", crop, 16)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"{name} must be a whole number >= {low}, got {value!r}.")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}.")
    if time_budget is not None and not time_budget > 0:
        raise ConfigError(f"time_budget must be None or seconds > 0, got {time_budget!r}.")
    if not lr > 0:
        raise ConfigError(f"lr must be > 0, got {lr!r}.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ConfigError(f"seed must be None or a whole number >= 0, got {seed!r}.")
    return kmin, kmax


def _start_model(init, first: xr.DataArray, device: str) -> ArchiveInterpolator | None:
    """The model ``init`` names (a model, a shipped name or a file), checked against the archive's
    units; None for none."""
    if init is None:
        return None
    if not isinstance(init, ArchiveInterpolator):
        from xlatent.archive.pretrained import named_or_file

        init = named_or_file(init, device=device)
    init.check_units(first.attrs.get("units"), "init", "the archive is",
                     "Convert the archive to {trained!r}, or fit without init.")
    return init


def _gain_over_start(gains: np.ndarray, start: np.ndarray) -> dict | None:
    """The trained weights' gain over the starting ones on the validation windows, paired per
    window: its mean, its standard error, and whether the mean exceeds one standard error (the
    one-standard-error rule: a handful of windows decide, so the simpler starting model is kept
    unless training is clearly better). None without validation windows."""
    if gains.size == 0:
        return None
    diff = gains - start
    se = float(np.std(diff, ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else float("inf")
    mean = float(np.mean(diff))
    return {"db": mean, "se": se, "clearly_better": bool(mean > se)}


def fit_interpolator(
    archive: xr.DataArray | Sequence[xr.DataArray],
    *,
    k_range: tuple[int, int] = (3, 12),
    windows_per_series: int = 32,
    val_fraction: float = 0.25,
    max_iters: int = 1500,
    time_budget: float | None = 480.0,
    batch_size: int = 8,
    crop: int = 64,
    lr: float = 1e-3,
    latent: int = 8,
    width: int = 16,
    levels: int = 3,
    patience: int = 5,
    eval_every: int = 50,
    min_skill: float = 0.0,
    init: ArchiveInterpolator | str | Path | None = None,
    cache: str | Path | None = None,
    x_dim: str | None = None,
    y_dim: str | None = None,
    device: str = "auto",
    seed: int | None = 0,
    progress: bool = True,
) -> ArchiveInterpolator:
    """Fit the archive model on windows of one or several series.

    Parameters
    ----------
    archive : xarray.DataArray or list of them
        ``(time, y, x)`` series (separate days, events or grids), one variable in one unit, each
        with ``datetime64`` times, strictly increasing (checked as :func:`xlatent.interp` checks a
        series).
    k_range : (int, int)
        Window lengths in time steps, inclusive: frames ``t`` and ``t + K`` are the inputs, the
        frames between them the targets.
    windows_per_series : int
        Windows taken from each series, spread over ``K`` and time (each costs one SVF fit, a
        few seconds for 128²; ``cache`` keeps them).
    val_fraction : float
        The last fraction of each series held out for validation (time-blocked: no window
        straddles the cut); its skill over ``flow`` decides the gate and early stopping.
    max_iters, time_budget : int, float or None
        Training steps and seconds (the SVF fits not counted), whichever ends first.
    batch_size, crop, lr : int, int, float
        Frames per step, the square crop (cells) the decoder trains on, Adam's learning rate.
    latent, width, levels : int
        Latent channels per end, decoder width and levels.
    patience, eval_every : int
        Stop after ``patience`` validations (every ``eval_every`` steps) without a better skill;
        the best weights are kept if they beat the starting ones (untrained, or ``init``'s) by more
        than one standard error of the per-window difference on the validation windows, else the
        starting weights are (``history["kept"]``, ``history["over_start"]``).
    min_skill : float
        dB over ``flow`` on validation the correction must exceed to be used at all.
    init : ArchiveInterpolator, str or pathlib.Path, optional
        A fitted model, a shipped name (:func:`xlatent.pretrained_interpolator`) or a model file
        to start from instead of untrained weights (fine-tuning: a few hours of one radar fit on
        top of what the model learnt elsewhere). Its network is used as it is (``latent``,
        ``width`` and ``levels`` are then ignored); its units must be the archive's. The
        validation scores it before the first step and its weights are kept unless training
        does clearly better (see ``patience``).
    cache : str or pathlib.Path, optional
        Folder where each window's SVF fit is kept (a refit or another run on the same windows
        reads it back).
    x_dim, y_dim : str, optional
        Spatial dims, when they cannot be told.
    device : str
        ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"``...
    seed : int or None
        Seed of the weights, the draws and the augmentation.
    progress : bool
        Show progress bars.

    Returns
    -------
    ArchiveInterpolator
        Its ``skill`` says how it did on the validation windows.

    Raises
    ------
    ConfigError
        For a bad option.
    InputError
        For an archive that is not ``(time, y, x)`` series long enough for ``k_range``.
    SeriesError
        For a series without dated, strictly increasing times or with a frame without data.
    UnitsMismatchError
        For series in different units, or in units other than ``init``'s.
    """
    import torch
    from tqdm.auto import tqdm

    synthesis = torch_side("model.synthesis")
    Synthesis, maps = synthesis.Synthesis, synthesis.maps

    kmin, kmax = _check_fit_options(k_range, windows_per_series, val_fraction, max_iters, time_budget, batch_size,
                                    crop, lr, seed)
    check_device(device)
    series = archive_series(archive, x_dim, y_dim)
    start = _start_model(init, series[0].frame(0), device)
    cache = Path(cache) if cache is not None else None
    step = float(np.median(np.concatenate([np.diff(s.seconds) for s in series])))
    plans = [window_pairs(len(s), (kmin, kmax), windows_per_series, val_fraction) for s in series]
    if not any(train for train, _ in plans):
        raise InputError(f"The archive's series are too short for windows of {kmin}-{kmax} time steps: "
                         "pass longer series or a smaller k_range.")
    dev = resolve_device(device)
    train_w, val_w = [], []
    total = sum(len(a) + len(b) for a, b in plans)
    with tqdm(total=total, desc="xlatent archive windows (flow, TV-L1)", disable=not progress, leave=False) as bar:
        for s, (tr, va) in zip(series, plans):
            for part, out in ((tr, train_w), (va, val_w)):
                for t, k in part:
                    out.append(window(s, t, k, step, cache, dev))
                    bar.update()
    first, grid = series[0].frame(0), series[0].grid
    channels = train_w[0]["first"].shape[0]
    if start is not None and start._meta["channels"] != channels:
        raise InputError(f"init was trained on {start._meta['channels']} channel(s); the archive has {channels}.")

    if seed is not None:
        torch.manual_seed(seed)
    if start is not None:
        latent, width, levels = (start._meta["network"][k] for k in ("latent", "width", "levels"))
    with torch.device(dev):  # built on its device: no CPU copy first
        net = Synthesis(channels, latent, width, levels)
    if start is not None:
        net.load_state_dict(start._net.state_dict())  # load_state_dict copies onto net's device
    samples = [(w, j) for w in range(len(train_w)) for j in range(len(train_w[w]["fractions"]))]
    c = channels
    for win in val_w:  # validation on up to 3 frames per window: the skill's cost bounded
        keep = np.unique(np.linspace(0, len(win["fractions"]) - 1, min(3, len(win["fractions"]))).round().astype(int))
        for name in ("targets", "valid", "fractions", "base", "alt"):
            win[name] = np.asarray(win[name])[keep]
    with torch.no_grad():  # the maps of flow's velocity to each target's time: fixed, computed once
        for win in train_w + val_w:
            tv = torch.from_numpy(win["v"])[None].to(dev)
            t = torch.tensor(win["fractions"], dtype=torch.float32, device=dev)
            d0, d1 = maps(tv.expand(len(t), -1, -1, -1), t)
            win["maps"] = torch.cat((d0, d1), 1).cpu().numpy()

    def batch(rng: np.random.Generator):
        picks = [samples[i] for i in rng.integers(len(samples), size=batch_size)]
        t = np.array([train_w[w]["fractions"][j] for w, j in picks], dtype=np.float32)
        layers = []
        for i, ((w, j), back) in enumerate(zip(picks, rng.random(len(picks)) < 0.5)):
            win = train_w[w]
            v, d0, d1, a, b = win["v"], win["maps"][j][:2], win["maps"][j][2:], win["first"], win["last"]
            if back:  # time reversed: last to first along -v, the same frame at 1 - t
                v, d0, d1, a, b = -v, d1, d0, b, a
                t[i] = 1 - t[i]
            layers.append(np.concatenate((v, d0, d1, a, b, win["confidence"][None], win["base"][j], win["alt"][j],
                                          win["targets"][j], win["valid"][j][None])))
        x = _dihedral(torch.from_numpy(np.stack(layers).astype(np.float32)).to(dev), int(rng.integers(8)))
        k = torch.tensor([train_w[w]["steps"] for w, j in picks], dtype=torch.float32, device=dev)
        return x, torch.from_numpy(t).to(dev), k

    def validate() -> tuple[float | None, float | None, dict, np.ndarray]:
        if not val_w:
            return None, None, {}, np.zeros(0)
        gains_flow, gains_lin, by_k = [], [], {}
        net.eval()
        for win in val_w:
            pred = predict(net, win["first"], win["last"], win["v"], win["confidence"], win["base"], win["alt"],
                            win["fractions"], win["steps"], dev, maps=win["maps"])
            ff = np.asarray(win["fractions"])[:, None, None, None]
            linear = (1 - ff) * win["first"][None] + ff * win["last"][None]
            valid = win["valid"].all(axis=0)
            ref = psnr(pred, win["targets"], valid)
            gains_flow.append(ref - psnr(win["base"], win["targets"], valid))
            gains_lin.append(ref - psnr(linear, win["targets"], valid))
            by_k.setdefault(int(win["K"]), []).append(gains_flow[-1])
        net.train()
        return (float(np.mean(gains_flow)), float(np.mean(gains_lin)),
                {k: float(np.mean(g)) for k, g in sorted(by_k.items())}, np.asarray(gains_flow))

    def train_step(rng: np.random.Generator):
        x, t, k = batch(rng)
        h, w = x.shape[-2:]
        size = min(crop, h, w)
        r0, c0 = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
        v, d0, d1, x = x[:, 0:2], x[:, 2:4], x[:, 4:6], x[:, 6:]
        first_, last_, conf = x[:, :c], x[:, c : 2 * c], x[:, 2 * c : 2 * c + 1]
        base, alt, target = (x[:, 2 * c + 1 + i * c : 3 * c + 1 + i * c] for i in range(3))
        valid = x[:, 5 * c + 1 :]
        pred = net(first_, last_, v, d0, d1, conf, t, k, base, alt, crop=(r0, c0, size))
        sl = (..., slice(r0, r0 + size), slice(c0, c0 + size))
        loss = ((pred - target[sl]) ** 2 * valid[sl]).sum() / valid[sl].sum().clamp_min(1.0) / c
        return loss, {"loss": float(loss.detach())}

    loop = torch_side("train")
    callbacks = [loop.Progress("xlatent archive fit", max_iters, progress)]
    if time_budget is not None:
        callbacks.append(loop.TimeBudget(time_budget))
    evaluations = []  # every validation's scores, in order: the first is the starting weights'

    def scored(_) -> float:
        evaluations.append(validate())
        return -evaluations[-1][0]

    if val_w:  # the loss of a validation is minus the gain over flow: the untrained network is scored too
        callbacks.append(loop.Validation(scored, every=eval_every, patience=patience, keep_best=True,
                                          at_start=True, final=True))
    else:
        warnings.warn("No validation windows (val_fraction=0 or series too short): the model cannot tell "
                      "whether it beats flow, and its correction stays off.", ArchiveMismatchWarning, stacklevel=2)
    start_state = copy.deepcopy(net.state_dict())
    done = loop.fit_loop(net, train_step, lr=lr, max_iters=max_iters, seed=seed, callbacks=callbacks)
    if evaluations:  # the best evaluation's weights are the ones Validation put back
        start_scores, scores = evaluations[0], evaluations[int(np.argmin(done.parts["validation"]))]
    else:
        start_scores = scores = validate()
    over_start = _gain_over_start(scores[3], start_scores[3])
    if over_start is not None and not over_start["clearly_better"]:
        net.load_state_dict(start_state)  # the starting weights unless training is clearly better
        scores = start_scores
    history: dict[str, Any] = {
        "loss": done.loss, "seconds": done.seconds, "stopped": done.stopped,
        "validation": [[int(i), -g] for i, g in zip(done.parts.get("validation_step", []),
                                                     done.parts.get("validation", []))],
        "best_step": done.parts.get("best_step", [None])[0], "over_start": over_start,
        "kept": "start" if over_start is not None and not over_start["clearly_better"] else "trained",
    }
    db_flow, db_lin, by_k, _ = scores
    net.eval()
    speeds = [w["speed"] for w in train_w] + (list(start._meta["speed_range"]) if start is not None else [])
    meta = {
        "xlatent_version": __version__, "channels": channels, "variable": None if first.name is None else str(first.name),
        "units": None if first.attrs.get("units") is None else str(first.attrs["units"]), "transform": TRANSFORM,
        "spacing_m": grid_spacing(first, grid), "step_s": step, "k_range": [kmin, kmax],
        "speed_range": [float(min(speeds)), float(max(speeds))], "min_skill": float(min_skill),
        "skill": {"db_over_flow": db_flow, "db_over_linear": db_lin, "windows": len(val_w),
                  "training_windows": len(train_w), "db_over_flow_by_k": {str(k): g for k, g in by_k.items()}},
        "network": {"latent": latent, "width": width, "levels": levels}, "seed": seed, "history": history,
        "init": None if start is None else {"trained_on": start.trained_on, "skill": start.skill},
    }
    log.info("archive model: %s dB over flow, %s dB over linear on %d validation windows", db_flow, db_lin, len(val_w))
    return ArchiveInterpolator(net, meta, dev)
