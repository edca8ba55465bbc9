"""The latent advection model of Han, Lee & Gelb (paper 000): E, F, N advection stages, D."""

from __future__ import annotations

import math

import torch
from torch import nn

from xlatent.config import LatentConfig
from xlatent.model.advection import advect
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
        latent = channels + config.latent_channels
        self.encoder = Encoder(channels, config.latent_channels, config.encoder_width)
        fin = 2 * channels if config.flow_sees_last else channels
        self.field_map = UNet(fin, 2 * config.stages, config.unet_width, config.unet_levels)
        self.decoder_net = UNet(latent, channels, config.unet_width, config.unet_levels)

    @property
    def stages(self) -> int:
        return self.config.stages

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return self.encoder(image)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """D: the image channels of the latent plus a learned correction."""
        return z[:, : self.channels] + self.decoder_net(z)

    def fields(self, first: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """F: velocity of every stage, ``(B, N, 2, H, W)`` in grid cells per unit time."""
        x = torch.cat((first, last), dim=1) if self.config.flow_sees_last else first
        out = self.field_map(x) * self.config.flow_scale
        b, _, h, w = out.shape
        return out.view(b, self.stages, 2, h, w)

    def roll(self, z0: torch.Tensor, fields: torch.Tensor, fractions=None):
        """Advect ``z0`` through the stages.

        Returns the latent after every stage (list of N + 1) or, with ``fractions``, the latent
        at each fraction in [0, 1] (a partial last step with the stage's own field).
        """
        n = self.stages
        dt = 1.0 / n
        if fractions is None:
            out = [z0]
            for k in range(n):
                out.append(advect(out[-1], fields[:, k], dt))
            return out
        wanted = sorted(set(float(f) for f in fractions))
        found: dict[float, torch.Tensor] = {}
        z, done = z0, 0
        for f in wanted:
            full = min(int(math.floor(f * n + 1e-9)), n)
            while done < full:
                z = advect(z, fields[:, done], dt)
                done += 1
            rest = f - done * dt
            found[f] = advect(z, fields[:, done], rest) if rest > 1e-9 and done < n else z
        return [found[float(f)] for f in fractions]

    def receptive_radius(self) -> int:
        """How far (grid cells) the output at one pixel depends on input, excluding motion."""
        return len(self.encoder.body) // 2 + 1 + 2 * unet_reach(self.config.unet_levels)
