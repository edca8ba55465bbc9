"""``latent`` (default): latent space advection (Han, Lee & Gelb, "Learning In-between
Imagery Dynamics via Physical Latent Spaces", arXiv 2310.09495), fitted to the pair at hand.

Numpy in, numpy out: an adapter from the method contract (:mod:`xlatent.methods.base`) to the
fitted model's owner, :class:`xlatent.engine.LatentCore` (training, tiling, rendering; the
blends are described there).
"""

from __future__ import annotations

from xlatent.config import LatentConfig
from xlatent.engine import LatentCore
from xlatent.methods.base import MethodResult, register


@register("latent", trained=True, lazy="xlatent.chunked:latent")
def latent(first, last, mask, fractions, *, config: LatentConfig, patch, stride, device="auto",
           seed=0, progress=True, exact_endpoints=True, blend="transport", mean=None, std=None,
           **_) -> MethodResult:
    """Fit the latent model to the pair and render ``fractions`` (the method contract, :mod:`xlatent.methods.base`)."""
    core = LatentCore(first.shape[0], config, device, seed, mean, std)
    prior = core.prior(first, last)
    history = core.fit(first, last, mask, patch, stride, seed=seed, progress=progress, prior=prior)
    fields, decided, maps = core.motion(first, last, mask, progress, prior)
    frames = core.frames(first, last, fields, fractions, exact_endpoints, progress, blend)
    info = {"device": str(core.device), "train_seconds": history.seconds, "stopped": history.stopped, **decided}
    return MethodResult(frames=frames, fields=fields, info=info, fitted=core, maps=maps)
