"""``flow``: optical flow plus a semi-Lagrangian forward/backward blend, as geoscientists do.

By default (``motion="svf"``) the motion is a stationary velocity ``v`` fitted so that its flow
maps ``first`` onto ``last`` (:mod:`xlatent.motion.svf`; ``svf_weight`` sets its smoothness,
on log values for non-negative fields), and the frame at ``t`` is
``(1 - t) first∘exp(-t v) + t last∘exp((1 - t) v)``: curved paths, the forward and backward
paths each other's inverse. With ``motion="tvl1"`` (the earlier default), ``"vet"`` or ``"lk"``
the straight displacement estimate is taken as a steady field instead, ``first`` advected
forward by ``t`` and ``last`` backward by ``1 - t`` in sub-steps, blended the same way. Assumes
brightness is carried, not created: new features fade in where they are at the end (no motion
can create them), and growth or decay is blended linearly. With ``motion="svf"`` the result
carries the per-cell confidence of the motion (:func:`xlatent.motion.svf.confidence`).
Where the change between the ends is mostly a source rather than transport (a field warming in
place), the motion and its confidence are shrunk toward zero first (:mod:`xlatent.motion.guard`;
``guard=False`` turns it off). The warps that render the frames sample with ``sampling="auto"``
(default): clipped bicubic where the motion's confidence is high, bilinear where it is low,
blended by the confidence (sharper where the motion is exact; the smoother sampling where the two
halves disagree, as on radar); ``"bilinear"`` or ``"bicubic"`` everywhere on request. The fits
sample bilinearly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlatent.device import resolve_device
from xlatent.exceptions import ConfigError
from xlatent.methods.base import MethodResult, physical, register
from xlatent.motion import estimate, motion_space
from xlatent.motion.guard import guarded
from xlatent.motion.svf import confidence

_SUBSTEPS = 8  # semi-Lagrangian sub-steps along the steady field
SAMPLING = ("auto", "bilinear", "bicubic")  # the warps' orders (model.advection.SAMPLING) and "auto"


@register("flow", lazy="xlatent.chunked:flow", uses_device=True,
          options={"motion": "svf", "motion_transform": "auto", "svf_weight": None, "guard": True, "sampling": "auto"})
def flow(first: np.ndarray, last: np.ndarray, mask: np.ndarray, fractions: np.ndarray, *, mean, std,
         motion: str = "svf", motion_transform: str = "auto", svf_weight: float | None = None,
         guard: bool = True, sampling: str = "auto", with_confidence: bool = True, device: Any = "auto",
         motion_coarsen: int = 1, **_) -> MethodResult:
    """Frames blended from both images advected along the estimated motion, and that motion as one
    stage field (see the module docstring); ``with_confidence=False`` leaves the confidence map
    out of the result. The stationary velocity's fit and the rendering run on ``device``
    (``"auto"``: a GPU when there is one). ``motion_coarsen=k`` estimates the motion on ``k x k``
    block means (:func:`xlatent.motion.estimate`'s ``coarsen``), for callers of this function
    only (the archive model's second hypothesis): it is not an option of the registered method."""
    check_sampling(sampling)
    dev = resolve_device(device)

    def fit(a, b):
        return estimate(a, b, motion, motion_transform, mean=mean, std=std, coarsen=motion_coarsen,
                        svf_weight=svf_weight, device=dev)

    def seen(a, b):
        return motion_space(physical(a, mean, std), physical(b, mean, std), motion_transform)

    field, source, share = fit(first, last), None, None
    if guard:  # the motion must explain the change: a source's part is blended, not moved
        field, source, share = guarded(first, last, field, fit, seen)
    frames, conf = render_guarded(first, last, field, fractions, motion, dev, seen=seen, sampling=sampling,
                                  source=source, share=share, with_confidence=with_confidence)
    maps = {"confidence": conf} if conf is not None and with_confidence else {}
    return MethodResult(frames=frames, fields=field[None], info={"motion": motion, "device": str(dev)}, maps=maps)


def render_guarded(first: np.ndarray, last: np.ndarray, field: np.ndarray, fractions: np.ndarray, motion: str,
                   device: Any, *, seen, sampling: str, source: np.ndarray | None, share: np.ndarray | None,
                   with_confidence: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """The frames of :func:`render` after the guard (:func:`xlatent.motion.guard.guarded`): the
    ``source`` ``(C, H, W)`` taken off ``last`` and blended in place, the motion's confidence
    (``svf`` only, computed when wanted or for ``sampling="auto"``) held to the guard's
    ``share``; ``seen(a, b)`` gives the pair as the estimator sees it. Returns the frames and the
    confidence (None when not computed). The in-memory method and each dask chunk share it."""
    target = last if source is None else last - source
    conf = None
    if motion == "svf" and (with_confidence or sampling == "auto"):  # how well the images pin it (svf.confidence)
        conf = confidence(*seen(first, target), field, device=device) * (1.0 if share is None else share)
    frames = render(first, target, field, fractions, motion, device, sampling=sampling, confidence=conf, source=source)
    return frames, conf


def check_sampling(sampling: str) -> None:
    """A :class:`~xlatent.exceptions.ConfigError` unless ``sampling`` is one of :data:`SAMPLING`."""
    if sampling not in SAMPLING:
        raise ConfigError(f"flow: unknown sampling={sampling!r}; use one of {', '.join(map(repr, SAMPLING))}.")


def render(first: np.ndarray, last: np.ndarray, field: np.ndarray, fractions: np.ndarray, motion: str = "svf",
           device: Any = "cpu", *, sampling: str = "bilinear", confidence: np.ndarray | None = None,
           source: np.ndarray | None = None) -> np.ndarray:
    """Frames ``(K, C, H, W)`` at ``fractions``: ``first`` carried forward and ``last`` back along
    the steady ``field`` ``(2, H, W)`` (grid cells), blended (see the module docstring); with
    ``motion="svf"`` along ``exp`` of the velocity, else in straight sub-steps. On ``device``.

    ``sampling`` is the warps' order (``"auto"``: clipped bicubic weighted by ``confidence``,
    bilinear where it is low; bilinear without a confidence map); ``source`` ``(C, H, W)``, the
    part of the change blended in place (:func:`xlatent.motion.guard.guarded`; ``last`` is then
    the end without it), is added as ``t * source``."""
    import torch

    dev = resolve_device(device)
    orders = (sampling,) if sampling != "auto" else ("bilinear", "bicubic") if confidence is not None else ("bilinear",)
    u, a, b = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev)[None] for x in (field, first, last))
    conf = None if len(orders) == 1 else torch.from_numpy(np.ascontiguousarray(confidence, dtype=np.float32)).to(dev)
    extra = None if source is None else torch.from_numpy(np.ascontiguousarray(source, dtype=np.float32)).to(dev)[None]
    frames = []
    with torch.inference_mode():
        for t in np.asarray(fractions, dtype=float):
            rendered = []
            for order in orders:
                fwd, bwd = carried(a, b, u, t, motion, order)
                rendered.append((1 - t) * fwd + t * bwd)
            # auto: the sharper sampling where the motion is pinned, the smoother where it is not
            frame = rendered[0] if conf is None else conf * rendered[1] + (1 - conf) * rendered[0]
            frames.append(frame if extra is None else frame + t * extra)
        return torch.cat(frames).float().cpu().numpy()  # one transfer for all frames


def carried(a, b, u, t: float, motion: str, order: str = "bilinear"):
    """Tensors ``a`` carried forward to fraction ``t`` and ``b`` back from the end along the steady
    ``u`` ``(1, 2, H, W)``: with ``motion="svf"`` ``a∘exp(-t u)`` and ``b∘exp((1 - t) u)`` (the
    map the velocity was fitted with), else in straight semi-Lagrangian sub-steps."""
    from xlatent.model import advection, integrate  # torch

    if motion == "svf":
        fwd = integrate.warp(a, integrate.exp_field(u, -t), order) if t > 0 else a
        bwd = integrate.warp(b, integrate.exp_field(u, 1 - t), order) if t < 1 else b
    else:
        fwd = advection.sample(a, advection.departure([u] * _SUBSTEPS, [t / _SUBSTEPS] * _SUBSTEPS),
                               order) if t > 0 else a
        bwd = advection.sample(b, advection.arrival([u] * _SUBSTEPS, [(1 - t) / _SUBSTEPS] * _SUBSTEPS),
                               order) if t < 1 else b
    return fwd, bwd


def halfway_mismatch(first: np.ndarray, last: np.ndarray, field: np.ndarray, mask: np.ndarray, motion: str = "svf",
                     device: Any = "cpu") -> float:
    """Mean square difference, over the ``mask``'s cells, between ``first`` carried half-way along
    ``field`` and ``last`` carried back half-way (bilinear, as the fits sample): the part of the
    change between the two that the motion leaves unexplained."""
    import torch

    dev = resolve_device(device)
    cells = np.asarray(mask, dtype=bool)
    if not cells.any():
        return 0.0
    u, a, b = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev)[None] for x in (field, first, last))
    keep = torch.from_numpy(cells).to(dev)
    with torch.inference_mode():
        fwd, bwd = carried(a, b, u, 0.5, motion)
        return float(((fwd - bwd)[0][:, keep] ** 2).mean())
