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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlatent.device import resolve_device
from xlatent.methods.base import MethodResult, physical, register
from xlatent.motion import estimate, motion_space
from xlatent.motion.svf import confidence

_SUBSTEPS = 8  # semi-Lagrangian sub-steps along the steady field


@register("flow", lazy="xlatent.chunked:flow", uses_device=True,
          options={"motion": "svf", "motion_transform": "auto", "svf_weight": None})
def flow(first: np.ndarray, last: np.ndarray, mask: np.ndarray, fractions: np.ndarray, *, mean, std,
         motion: str = "svf", motion_transform: str = "auto", svf_weight: float | None = None,
         with_confidence: bool = True, device: Any = "auto", **_) -> MethodResult:
    """Frames blended from both images advected along the estimated motion, and that motion as one
    stage field (see the module docstring); ``with_confidence=False`` skips the confidence map
    (the lazy path runs this per chunk and has no use for it). The stationary velocity's fit
    and the rendering run on ``device`` (``"auto"``: a GPU when there is one)."""
    dev = resolve_device(device)
    field = estimate(first, last, motion, motion_transform, mean=mean, std=std, svf_weight=svf_weight, device=dev)
    frames = render(first, last, field, fractions, motion, dev)
    maps = {}
    if motion == "svf" and with_confidence:  # how well the images pin the fitted velocity, per cell (svf.confidence)
        maps["confidence"] = confidence(*motion_space(physical(first, mean, std), physical(last, mean, std),
                                                      motion_transform), field, device=dev)
    return MethodResult(frames=frames, fields=field[None], info={"motion": motion, "device": str(dev)}, maps=maps)


def render(first: np.ndarray, last: np.ndarray, field: np.ndarray, fractions: np.ndarray, motion: str = "svf",
           device: Any = "cpu") -> np.ndarray:
    """Frames ``(K, C, H, W)`` at ``fractions``: ``first`` carried forward and ``last`` back along
    the steady ``field`` ``(2, H, W)`` (grid cells), blended (see the module docstring); with
    ``motion="svf"`` along ``exp`` of the velocity, else in straight sub-steps. On ``device``."""
    import torch

    from xlatent.model import advection, integrate  # torch

    dev = resolve_device(device)
    u, a, b = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev)[None] for x in (field, first, last))
    frames = []
    with torch.inference_mode():
        for t in np.asarray(fractions, dtype=float):
            if motion == "svf":  # the map the velocity was fitted with: first∘exp(-t v), last∘exp((1-t) v)
                fwd = integrate.warp(a, integrate.exp_field(u, -t)) if t > 0 else a
                bwd = integrate.warp(b, integrate.exp_field(u, 1 - t)) if t < 1 else b
            else:
                fwd = advection.sample(a, advection.departure([u] * _SUBSTEPS, [t / _SUBSTEPS] * _SUBSTEPS)) if t > 0 else a
                bwd = advection.sample(b, advection.arrival([u] * _SUBSTEPS, [(1 - t) / _SUBSTEPS] * _SUBSTEPS)) if t < 1 else b
            frames.append((1 - t) * fwd + t * bwd)
        return torch.cat(frames).float().cpu().numpy()  # one transfer for all frames
