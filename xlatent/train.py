"""Training loops: the generic Adam loop (:func:`optimise`, shared by the trained models) and
the latent model's training on one image pair: patches, Adam, decay, early stop."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from xlatent.config import LatentConfig
from xlatent.device import resolve_device  # noqa: F401  (read from here by earlier callers)
from xlatent.model.latent_advection import LatentAdvection
from xlatent.model.losses import total_loss
from xlatent.patches import patch_origins

log = logging.getLogger(__name__)


@dataclass
class History:
    """Loss per training step (and its parts), plus why and when training stopped."""

    loss: list[float] = field(default_factory=list)
    terminal: list[float] = field(default_factory=list)
    autoencoder: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str = ""
    parts: dict[str, list[float]] = field(default_factory=dict)

    def record(self, values: dict, keys: Sequence[str]) -> None:
        """Append one step's ``values`` for ``keys``: to a fixed field when there is one, else to ``parts``."""
        for key in keys:
            target = getattr(self, key) if key in ("loss", "terminal", "autoencoder") else self.parts.setdefault(key, [])
            target.append(values[key])

    def to_dict(self) -> dict:
        """The history as plain lists and numbers (JSON-serialisable)."""
        out = {
            "loss": self.loss,
            "terminal": self.terminal,
            "autoencoder": self.autoencoder,
            "seconds": self.seconds,
            "stopped": self.stopped,
        }
        out.update(self.parts)  # only the forecaster's named parts; none for the interpolator
        return out


def train(
    model: LatentAdvection,
    first: np.ndarray,
    last: np.ndarray,
    mask: np.ndarray,
    prior: np.ndarray | None,
    config: LatentConfig,
    patch: tuple[int, int],
    stride: tuple[int, int],
    device: torch.device,
    seed: int | None = 0,
    progress: bool = True,
) -> History:
    """Fit ``model`` to the pair ``first`` -> ``last`` (normalised ``(C, H, W)``, NaN-free).

    ``mask`` ``(H, W)`` is 1 where both inputs were valid; ``prior`` ``(2, H, W)`` is the
    starting field when the config asks for one. Patches are drawn at random from a
    grid of origins (``patch`` and ``stride`` in rows, columns); the same ``seed`` gives the same
    result on the same device and thread count.
    """
    origins = patch_origins(first.shape[-2:], patch, stride)
    ph, pw = patch
    layers = [first, last, mask[None]] + ([prior] if prior is not None else [])
    pair = torch.from_numpy(np.concatenate(layers, axis=0)).to(device)

    def draw(rng: np.random.Generator) -> torch.Tensor:
        pick = origins[rng.integers(len(origins), size=config.batch_size)]
        return torch.stack([pair[:, r : r + ph, q : q + pw] for r, q in pick])

    return _optimise(model, draw, first.shape[0], prior is not None, config, device, seed, progress)


def train_windows(
    model: LatentAdvection,
    windows: np.ndarray,
    channels: int,
    has_prior: bool,
    config: LatentConfig,
    device: torch.device,
    seed: int | None = 0,
    progress: bool = True,
) -> History:
    """Fit ``model`` on pre-cut training windows ``(P, L, h, w)`` (for scenes too large to hold).

    Each window stacks ``first`` and ``last`` (``channels`` each), the validity mask and, with
    ``has_prior``, the starting field, in the layout :func:`train` uses. Batches are drawn from
    the windows with the same random sequence as :func:`train` draws origins, so a set of
    windows cut at every origin of :func:`train`'s grid, in its order, trains the same way.
    """
    stack = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).to(device)

    def draw(rng: np.random.Generator) -> torch.Tensor:
        return stack[torch.from_numpy(rng.integers(len(stack), size=config.batch_size))]

    return _optimise(model, draw, channels, has_prior, config, device, seed, progress)


def _optimise(model, draw, c: int, has_prior: bool, config: LatentConfig, device, seed, progress) -> History:
    """The interpolator's step on the generic loop: ``draw(rng)`` returns one batch ``(B, L, h, w)``."""

    def step(rng: np.random.Generator):
        batch = draw(rng).contiguous(memory_format=torch.channels_last)
        return total_loss(
            model, batch[:, :c], batch[:, c : 2 * c], batch[:, 2 * c : 2 * c + 1], config,
            batch[:, 2 * c + 1 :] if has_prior else None,
        )

    return optimise(
        model, step, device=device, seed=seed, progress=progress, lr=config.lr, lr_final=config.lr_final,
        max_iters=config.max_iters, patience=config.patience, min_delta=config.min_delta,
        time_budget=config.time_budget, keys=("loss", "terminal", "autoencoder"),
    )


def optimise(
    model: torch.nn.Module,
    step: Callable[[np.random.Generator], tuple[torch.Tensor, dict]],
    *,
    device: torch.device,
    seed: int | None,
    progress: bool,
    lr: float,
    lr_final: float,
    max_iters: int,
    patience: int,
    min_delta: float,
    time_budget: float | None,
    keys: Sequence[str] = ("loss",),
    betas: tuple[float, float] = (0.9, 0.999),
    desc: str = "xlatent fit",
) -> History:
    """Generic Adam loop shared by the trained models: seeding, exponential decay from ``lr`` to
    ``lr_final``, early stop on a plateau of the smoothed loss, time budget, progress bar, History.

    ``step(rng)`` draws one batch with the numpy generator ``rng`` and returns the loss tensor and
    a dict of floats (``"loss"`` and the parts named in ``keys``). The History's fixed fields
    (``loss``, ``terminal``, ``autoencoder``) take those keys; any other key goes to ``parts``.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    if seed is not None:
        torch.manual_seed(seed)
    # channels_last: measured 2.2x faster training steps on CPU for these narrow nets
    model.to(device=device, memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas)
    gamma = (lr_final / lr) ** (1.0 / max(max_iters, 1))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
    history = History()
    best, since_best, smooth = np.inf, 0, None
    start = time.perf_counter()
    bar = tqdm(total=max_iters, desc=desc, disable=not progress, leave=False)
    try:
        for it in range(max_iters):
            loss, parts = step(rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            history.record(parts, keys)
            smooth = parts["loss"] if smooth is None else 0.95 * smooth + 0.05 * parts["loss"]
            if smooth < best * (1 - min_delta):
                best, since_best = smooth, 0
            else:
                since_best += 1
            bar.update(1)
            if it % 10 == 0:
                bar.set_postfix(loss=f"{smooth:.4g}")
            elapsed = time.perf_counter() - start
            if since_best >= patience:
                history.stopped = f"plateau after {it + 1} steps"
                break
            if time_budget is not None and elapsed >= time_budget:
                history.stopped = f"time budget ({time_budget:g} s) after {it + 1} steps"
                break
        else:
            history.stopped = f"max_iters ({max_iters})"
    finally:
        bar.close()
    history.seconds = time.perf_counter() - start
    log.info("training stopped: %s, %.1f s, final loss %.4g", history.stopped, history.seconds, smooth or 0)
    model.eval()
    return history
