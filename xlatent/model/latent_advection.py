"""The latent advection model of Han, Lee & Gelb (arXiv 2310.09495): E, F, N advection stages, D."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xlatent.config import LatentConfig
from xlatent.model.advection import arrival, departure, sample
from xlatent.model.integrate import exp_field, warp
from xlatent.model.networks import Encoder, UNet, unet_reach


class LatentAdvection(nn.Module):
    """``z0 = E(I0)``, ``u = F(I0, I1)``, ``z_{n+1} = A(z_n, u_n)``, ``I_n = D(z_n)``.

    Parameters
    ----------
    channels : int
        Image channels.
    config : LatentConfig
        Sizes (latent channels, widths, levels, stages).
    """

    def __init__(self, channels: int, config: LatentConfig) -> None:
        super().__init__()
        self.channels = channels
        self.config = config
        self.identity = config.codec == "identity"  # image-space advection: E, D the identity
        latent = channels + config.latent_channels
        self.encoder = None if self.identity else Encoder(channels, config.latent_channels, config.encoder_width)
        self.decoder_net = None if self.identity else UNet(latent, channels, config.unet_width, config.unet_levels)
        fin = (2 * channels if config.flow_sees_last else channels) + (2 if config.flow_prior else 0)
        self.stationary = bool(getattr(config, "stationary", False))
        outputs = 2 if self.stationary else 2 * config.stages
        self.field_map = UNet(fin, outputs, config.unet_width, config.unet_levels)

    @property
    def stages(self) -> int:
        """Number of advection stages N."""
        return self.config.stages

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """E: the latent of an image (the image itself for image-space advection)."""
        return image if self.identity else self.encoder(image)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """D: the image channels of the latent plus a learned correction."""
        return z if self.identity else z[:, : self.channels] + self.decoder_net(z)

    def fields(self, first: torch.Tensor, last: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """F: velocity of every stage, ``(B, N, 2, H, W)`` in grid cells per unit time.

        F runs on the images average-pooled by ``flow_pool``: it sees ``flow_pool`` times
        farther, displacements look that much smaller to it, and its fields come out smooth;
        they are upsampled (bilinear) back to the image grid. With a ``prior`` field
        ``(B, 2, H, W)`` (config ``flow_prior``), F sees it too and its output is a correction
        added to it. With ``config.stationary`` F outputs one velocity (a correction of the
        stationary prior), repeated for every stage: the paths are those of ``exp(t v)``.
        """
        x = torch.cat((first, last), dim=1) if self.config.flow_sees_last else first
        if self.config.flow_prior:
            if prior is None:
                raise ValueError("this model was configured with flow_prior: pass prior=")
            x = torch.cat((x, prior / self.config.flow_scale), dim=1)
        b, _, h, w = x.shape
        s = self.config.flow_pool
        if s > 1:
            x = F.pad(x, (0, (-w) % s, 0, (-h) % s), mode="replicate")
            x = F.avg_pool2d(x, s)
        out = self.field_map(x) * (self.config.flow_scale / s)
        if s > 1:
            out = F.interpolate(out, scale_factor=s, mode="bilinear", align_corners=False)[..., :h, :w] * s
        out = out.reshape(b, 1 if self.stationary else self.stages, 2, h, w)
        out = out if prior is None else out + prior[:, None]
        return out.expand(b, self.stages, 2, h, w) if self.stationary else out

    def carry_back(self, q1: torch.Tensor, fields: torch.Tensor, fractions) -> list[torch.Tensor]:
        """``q1``, known at fraction 1, carried back along the motion to each fraction."""
        if self.stationary:  # exp((1 - t) v): the inverse of the forward path by construction
            v = fields[:, 0]
            return [q1 if float(f) >= 1 else warp(q1, exp_field(v, 1.0 - float(f))) for f in fractions]
        n = self.stages
        out = []
        for f in fractions:
            f = float(f)
            k = self._stage(f)
            if k >= n:
                out.append(q1)
                continue
            steps = [(k + 1) / n - f] + [1.0 / n] * (n - k - 1)
            out.append(sample(q1, arrival([fields[:, j] for j in range(k, n)], steps)))
        return out

    def _stage(self, fraction: float) -> int:
        """Index of the stage a fraction falls in (N for fraction 1): full stages before it."""
        return min(int(math.floor(fraction * self.stages + 1e-9)), self.stages)

    @property
    def alignment(self) -> int:
        """Tile origins must be multiples of this for tiled runs to equal untiled ones."""
        return self.config.alignment

    def field_reach(self) -> int:
        """Receptive radius of F in grid cells."""
        return unet_reach(self.config.unet_levels) * self.config.flow_pool + self.config.flow_pool

    def roll(self, z0: torch.Tensor, fields: torch.Tensor, fractions=(1.0,)) -> list[torch.Tensor]:
        """The latent advected from fraction 0 to each of ``fractions`` (in [0, 1]).

        Stage ``k`` covers ``[k/N, (k+1)/N]`` with its own field; a fraction inside a stage
        takes a partial step. Departure points are traced back through the stages and ``z0`` is
        sampled once (no blur from repeated interpolation).
        """
        if self.stationary:  # z0∘exp(-t v): curved paths of the stationary velocity
            v = fields[:, 0]
            return [z0 if float(f) <= 0 else warp(z0, exp_field(v, -float(f))) for f in fractions]
        n = self.stages
        out = []
        for f in fractions:
            f = float(f)
            full = self._stage(f)
            steps = [1.0 / n] * full
            if full < n and f - full / n > 1e-9:
                steps.append(f - full / n)
            if not steps:
                out.append(z0)
                continue
            pos = departure([fields[:, k] for k in range(len(steps))], steps)
            out.append(sample(z0, pos))
        return out
