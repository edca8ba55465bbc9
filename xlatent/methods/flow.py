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
``guard=False`` turns it off). The warps that render the frames sample with ``sampling="auto"``
(default): clipped bicubic where the motion's confidence is high, bilinear where it is low,
blended by the confidence (sharper where the motion is exact; the smoother sampling where the two
halves disagree, as on radar); ``"bilinear"`` or ``"bicubic"`` everywhere on request. The fits
sample bilinearly.
"""

from __future__ import annotations

import numpy as np

from xlatent.exceptions import ConfigError
from xlatent.methods.base import MethodResult, physical, register
from xlatent.methods.guard import guarded
from xlatent.methods.motion import estimate, motion_space
from xlatent.methods.svf import confidence

_SUBSTEPS = 8  # semi-Lagrangian sub-steps along the steady field


@register("flow", lazy=True, options={"motion": "svf", "motion_transform": "auto", "svf_weight": None,
                                         "guard": True, "sampling": "auto"})
def flow(first: np.ndarray, last: np.ndarray, mask: np.ndarray, fractions: np.ndarray, *, mean, std,
         motion: str = "svf", motion_transform: str = "auto", svf_weight: float | None = None,
         guard: bool = True, sampling: str = "auto", with_confidence: bool = True, **_) -> MethodResult:
    """Frames blended from both images advected along the estimated motion, and that motion as one
    stage field (see the module docstring); ``with_confidence=False`` skips the confidence map
    (the lazy path runs this per chunk and has no use for it)."""
    import torch

    from xlatent.model import advection, integrate  # torch

    if sampling not in ("auto", *advection.SAMPLING):
        raise ConfigError(f"flow: unknown sampling={sampling!r}; use 'auto', {', '.join(map(repr, advection.SAMPLING))}.")

    def fit(a, b):
        return estimate(a, b, motion, motion_transform, mean=mean, std=std, svf_weight=svf_weight)

    def seen(a, b):
        return motion_space(physical(a, mean, std), physical(b, mean, std), motion_transform)

    field, source, share = fit(first, last), None, None
    if guard:  # the motion must explain the change: a source's part is blended, not moved
        field, source, share = guarded(first, last, field, fit, seen)
    if source is not None:
        last = last - source
    conf = None
    if motion == "svf" and (with_confidence or sampling == "auto"):  # how well the images pin it (svf.confidence)
        conf = confidence(*seen(first, last), field) * (1.0 if share is None else share)
    orders = ("bilinear", "bicubic") if sampling == "auto" else (sampling,)
    if sampling == "auto" and conf is None:
        orders = ("bilinear",)
    u = torch.from_numpy(field)[None]
    a = torch.from_numpy(first)[None]
    b = torch.from_numpy(last)[None]
    frames = []
    with torch.inference_mode():
        for t in np.asarray(fractions, dtype=float):
            rendered = []
            for order in orders:
                if motion == "svf":  # the map the velocity was fitted with: first∘exp(-t v), last∘exp((1-t) v)
                    fwd = integrate.warp(a, integrate.exp_field(u, -t), order) if t > 0 else a
                    bwd = integrate.warp(b, integrate.exp_field(u, 1 - t), order) if t < 1 else b
                else:
                    fwd = advection.sample(a, advection.departure([u] * _SUBSTEPS, [t / _SUBSTEPS] * _SUBSTEPS),
                                           order) if t > 0 else a
                    bwd = advection.sample(b, advection.arrival([u] * _SUBSTEPS, [(1 - t) / _SUBSTEPS] * _SUBSTEPS),
                                           order) if t < 1 else b
                rendered.append(((1 - t) * fwd + t * bwd)[0].numpy())
            # auto: the sharper sampling where the motion is pinned, the smoother where it is not
            frame = rendered[0] if len(rendered) == 1 else conf * rendered[1] + (1 - conf) * rendered[0]
            frames.append(frame + (0.0 if source is None else t * source))
    info = {"motion": motion}
    if conf is not None and with_confidence:
        info["confidence"] = conf
    return MethodResult(frames=np.stack(frames), fields=field[None], info=info)
