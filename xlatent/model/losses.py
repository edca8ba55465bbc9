"""Loss terms of the latent advection model, all masked where an input was missing."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xlatent.config import LatentConfig
from xlatent.model.integrate import bending


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the cells where ``mask`` is 1."""
    err = (pred - target) ** 2 * mask
    return err.sum() / (mask.sum() * pred.shape[1]).clamp_min(1.0)


def pyramid_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, levels: int) -> torch.Tensor:
    """Masked MSE at full resolution and on ``levels - 1`` coarser (2x average-pooled) copies."""
    total = masked_mse(pred, target, mask)
    for _ in range(levels - 1):
        if min(pred.shape[-2:]) < 4:
            break
        pred, target = F.avg_pool2d(pred * mask, 2), F.avg_pool2d(target * mask, 2)
        weight = F.avg_pool2d(mask, 2)
        pred, target = pred / weight.clamp_min(1e-6), target / weight.clamp_min(1e-6)
        mask = (weight > 0.5).to(mask.dtype)
        total = total + masked_mse(pred, target, mask)
    return total


def field_penalties(fields: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Magnitude, spatial roughness and stage-to-stage change of the fields ``(B, N, 2, H, W)``."""
    magnitude = (fields**2).mean()
    dx = fields[..., :, 1:] - fields[..., :, :-1]
    dy = fields[..., 1:, :] - fields[..., :-1, :]
    smooth = (dx**2).mean() + (dy**2).mean()
    change = ((fields[:, 1:] - fields[:, :-1]) ** 2).mean() if fields.shape[1] > 1 else fields.new_zeros(())
    return magnitude, smooth, change


def stationary_penalty(fields: torch.Tensor, prior: torch.Tensor | None, config: LatentConfig) -> torch.Tensor:
    """Regularisation of a stationary velocity: the bending energy (and magnitude) of F's
    correction of the prior, not of the field itself, so an exact prior (rotation, shear:
    affine, no bending) costs nothing to keep."""
    v = fields[:, 0]
    correction = v if prior is None else v - prior
    return config.l_bend * bending(correction) + config.l_mag * (correction**2).mean()


def transport_mse(model, first, last, fields, mask) -> torch.Tensor:
    """The images met half way along the motion: ``first∘exp(-v/2)`` against ``last∘exp(v/2)``
    (what the ``transport`` blend renders depends on the motion only)."""
    (ahead,) = model.roll(first, fields, (0.5,))
    (behind,) = model.carry_back(last, fields, (0.5,))
    (m,) = model.carry_back(mask, fields, (0.5,))
    (m0,) = model.roll(mask, fields, (0.5,))
    return masked_mse(ahead, behind, (m * m0 > 0.999).to(mask.dtype))


def total_loss(model, first, last, mask, config: LatentConfig, prior=None) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss (``docs/method.md``) on one batch, with its parts for the history.

    With a stationary model (``config.stationary``) the field penalties are replaced by
    :func:`stationary_penalty` and the half-way transport match (:func:`transport_mse`,
    weight ``l_transport``) is added."""
    b = first.shape[0]
    z0, z1 = model.encode(torch.cat((first, last))).split(b)  # one pass each: fewer, larger convs
    fields = model.fields(first, last, prior)
    (z_end,) = model.roll(z0, fields)
    end, rec0, rec1 = model.decode(torch.cat((z_end, z0, z1))).split(b)
    terminal = pyramid_mse(end, last, mask, config.pyramid)
    auto = masked_mse(rec0, first, mask) + masked_mse(rec1, last, mask)
    latent = masked_mse(z_end, z1, mask) if config.l_lat else terminal.new_zeros(())
    loss = terminal + config.l_ae * auto + config.l_lat * latent
    if getattr(model, "stationary", False):
        loss = loss + stationary_penalty(fields, prior, config)
        if config.l_transport:
            loss = loss + config.l_transport * transport_mse(model, first, last, fields, mask)
    else:
        magnitude, smooth, change = field_penalties(fields)
        loss = loss + config.l_mag * magnitude + config.l_smooth * smooth + config.l_time * change
    parts = {"loss": loss.item(), "terminal": terminal.item(), "autoencoder": auto.item()}
    return loss, parts
