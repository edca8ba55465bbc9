"""``flow``: optical flow plus a semi-Lagrangian forward/backward blend, as geoscientists do.

By default (``motion="svf"``) the motion is a stationary velocity ``v`` fitted so that its flow
maps ``first`` onto ``last`` (:mod:`xlatent.methods.svf`; ``svf_weight`` sets its smoothness,
on log values for non-negative fields), and the frame at ``t`` is
``(1 - t) first∘exp(-t v) + t last∘exp((1 - t) v)``: curved paths, the forward and backward
paths each other's inverse. With ``motion="tvl1"`` (the earlier default), ``"vet"`` or ``"lk"``
the straight displacement estimate is taken as a steady field instead, ``first`` advected
forward by ``t`` and ``last`` backward by ``1 - t`` in sub-steps, blended the same way. Assumes
brightness is carried, not created: new features fade in where they are at the end (no motion
can create them), and growth or decay is blended linearly. With ``motion="svf"`` the result
carries the per-cell confidence of the motion (:func:`xlatent.methods.svf.confidence`).
Where the change between the ends is mostly a source rather than transport (a field warming in
place), the motion and its confidence are shrunk toward zero first (:mod:`xlatent.methods.guard`;
``guard=False`` turns it off).
"""

from __future__ import annotations

import numpy as np

from xlatent.methods.base import MethodResult, physical, register
from xlatent.methods.guard import guarded
from xlatent.methods.motion import estimate, motion_space
from xlatent.methods.svf import confidence

_SUBSTEPS = 8  # semi-Lagrangian sub-steps along the steady field


@register("flow", lazy=True, options={"motion": "svf", "motion_transform": "auto", "svf_weight": None,
                                         "guard": True, "sampling": "bilinear"})
def flow(first: np.ndarray, last: np.ndarray, mask: np.ndarray, fractions: np.ndarray, *, mean, std,
         motion: str = "svf", motion_transform: str = "auto", svf_weight: float | None = None,
         guard: bool = True, sampling: str = "bilinear", with_confidence: bool = True, **_) -> MethodResult:
    """Frames blended from both images advected along the estimated motion, and that motion as one
    stage field (see the module docstring); ``with_confidence=False`` skips the confidence map
    (the lazy path runs this per chunk and has no use for it)."""
    import torch

    from xlatent.model import advection, integrate  # torch

    def fit(a, b):
        return estimate(a, b, motion, motion_transform, mean=mean, std=std, svf_weight=svf_weight)

    def seen(a, b):
        return motion_space(physical(a, mean, std), physical(b, mean, std), motion_transform)

    field, source, share = fit(first, last), None, None
    if guard:  # the motion must explain the change: a source's part is blended, not moved
        field, source, share = guarded(first, last, field, fit, seen)
    if source is not None:
        last = last - source
    u = torch.from_numpy(field)[None]
    a = torch.from_numpy(first)[None]
    b = torch.from_numpy(last)[None]
    frames = []
    with torch.inference_mode():
        for t in np.asarray(fractions, dtype=float):
            if motion == "svf":  # the map the velocity was fitted with: first∘exp(-t v), last∘exp((1-t) v)
                fwd = integrate.warp(a, integrate.exp_field(u, -t), sampling) if t > 0 else a
                bwd = integrate.warp(b, integrate.exp_field(u, 1 - t), sampling) if t < 1 else b
            else:
                fwd = advection.sample(a, advection.departure([u] * _SUBSTEPS, [t / _SUBSTEPS] * _SUBSTEPS),
                                       sampling) if t > 0 else a
                bwd = advection.sample(b, advection.arrival([u] * _SUBSTEPS, [(1 - t) / _SUBSTEPS] * _SUBSTEPS),
                                       sampling) if t < 1 else b
            frames.append(((1 - t) * fwd + t * bwd)[0].numpy() + (0.0 if source is None else t * source))
    info = {"motion": motion}
    if motion == "svf" and with_confidence:  # how well the images pin the fitted velocity, per cell (svf.confidence)
        info["confidence"] = confidence(*seen(first, last), field) * (1.0 if share is None else share)
    return MethodResult(frames=np.stack(frames), fields=field[None], info=info)
