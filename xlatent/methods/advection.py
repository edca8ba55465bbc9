"""``advection``: the paper's image-space comparison — the same model with E and D the identity.

The fields come from the same F (U-Net correcting the starting field), the same N stages,
losses and regularisation as ``latent``; only the space differs: the image itself is advected,
so nothing but transport can happen. Shows what the latent space adds.
"""

from __future__ import annotations

from dataclasses import replace

from xlatent.config import LatentConfig
from xlatent.methods.base import MethodResult, register
from xlatent.methods.latent import latent


@register("advection", trained=True, lazy="xlatent.chunked:advection")
def advection(first, last, mask, fractions, *, config: LatentConfig, **kwargs) -> MethodResult:
    """The ``latent`` method with E and D the identity (same keywords)."""
    return latent(first, last, mask, fractions, config=replace(config, codec="identity", latent_channels=0), **kwargs)
