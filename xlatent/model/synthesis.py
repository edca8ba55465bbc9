"""The archive model's network: a latent synthesis on top of ``flow``'s rendering (torch only).

A frame at fraction ``t`` of a window starts from two hypotheses rendered outside the network:
``base``, ``flow``'s own frame (its stationary velocity ``v``, guard and sampling), and ``alt``,
the frame of ``flow`` along an independent motion estimate (TV-L1). Inside, the two ends are
carried along ``v``: ``fwd = first∘exp(-t v)``, ``bwd = last∘exp((1 - t) v)``. The network

- encodes each end (``E``: two 3x3 convolutions) into latent channels appended to the image,
- carries both latents to ``t`` along the same maps (``z0∘exp(-t v)``, ``z1∘exp((1 - t) v)``),
- decodes (``D``: a U-Net) them together with what shows where the motion is wrong: the two
  warped ends, their mismatch, the two hypotheses and their disagreement, the velocity (per
  interval and per time step), the confidence of the motion, ``t`` and the window length,

into a change of the blend weight, a weight on the second hypothesis and a residual:
``frame = base + w (bwd - fwd) + a (alt - base) + r``, ``w = tanh(.) / 2``, ``a = sigmoid(.)``.
``a`` is a convex weight between the two hypotheses: where two independent motions disagree the
truth is uncertain, and on radar their average scores better than either (benchmarks/RESULTS.md,
entries 39 and 41); where one is exact the other is worse: the network learns from the archive
where to weigh which. The output layer starts at zero, so an untrained network renders the
average of the two hypotheses (``a = 1/2``, ``w = r = 0``); where the model's gate is closed
the network is not used (``xlatent.archive.model``).

Inputs are the window's values standardised by the window (the pair's mean and standard
deviation), so the network is blind to units and intensity scale. Vector channels are
``(column, row)`` in grid cells.
"""

from __future__ import annotations

import torch
from torch import nn

from xlatent.model.integrate import exp_field, warp
from xlatent.model.networks import UNet

_SLOPE = 0.2
_SPEED_SCALE = 8.0  # cells: typical displacement over a window, brings the velocity channels near 1
_STEPS_SCALE = 12.0  # time steps: the longest default window


def maps(v: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Displacements of ``exp(-t v)`` and ``exp((1 - t) v)`` for each ``t`` ``(B,)``, ``v`` ``(B, 2, H, W)``.

    Grid cells; ``image∘phi`` with :func:`warp`. The same maps as ``flow`` renders with.
    """
    d0 = torch.cat([exp_field(v[i : i + 1], -float(t[i])) if float(t[i]) > 0 else torch.zeros_like(v[i : i + 1])
                    for i in range(len(t))])
    d1 = torch.cat([exp_field(v[i : i + 1], 1 - float(t[i])) if float(t[i]) < 1 else torch.zeros_like(v[i : i + 1])
                    for i in range(len(t))])
    return d0, d1


class Synthesis(nn.Module):
    """Encoder, latents carried along the motion, decoder to a gated correction of ``flow``'s frame.

    Parameters
    ----------
    channels : int
        Image channels.
    latent : int
        Learned latent channels per end.
    width : int
        Channels of the decoder's first level.
    levels : int
        Levels of the decoder U-Net.
    """

    def __init__(self, channels: int = 1, latent: int = 8, width: int = 24, levels: int = 3) -> None:
        super().__init__()
        self.channels, self.latent, self.width, self.levels = channels, latent, width, levels
        self.encoder = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(_SLOPE),
                                     nn.Conv2d(width, latent, 3, padding=1))
        cin = 2 * (channels + latent) + 5 * channels + 1 + 2 + 2 + 1 + 1
        self.decoder = UNet(cin, 3 * channels, width, levels)  # output layer zero: the two hypotheses' mean

    def forward(self, first, last, v, d0, d1, confidence, t, steps, base, alt, crop=None) -> torch.Tensor:
        """Frames ``(B, C, H, W)``.

        Parameters
        ----------
        first, last : Tensor ``(B, C, H, W)``
            The window's ends, standardised.
        v : Tensor ``(B, 2, H, W)``
            ``flow``'s stationary velocity, grid cells per window.
        d0, d1 : Tensor ``(B, 2, H, W)``
            :func:`maps` of ``v`` at ``t``.
        confidence : Tensor ``(B, 1, H, W)``
            Confidence of the motion in [0, 1].
        t : Tensor ``(B,)``
            Fractions of the window.
        steps : Tensor ``(B,)``
            Window length in time steps of the archive.
        base, alt : Tensor ``(B, C, H, W)``
            ``flow``'s frame at ``t`` and the second hypothesis's (standardised like the ends).
        crop : (int, int, int), optional
            ``(row, column, size)``: decode only this square (training: the warps see the whole
            window, the decoder a crop).
        """
        c = self.channels
        fwd, bwd = warp(first, d0), warp(last, d1)
        tt = t.view(-1, 1, 1, 1).to(first.dtype)
        z0 = warp(torch.cat((first, self.encoder(first)), 1), d0)
        z1 = warp(torch.cat((last, self.encoder(last)), 1), d1)
        k = steps.view(-1, 1, 1, 1).to(first.dtype)
        ones = torch.ones_like(confidence)
        x = torch.cat((z0, z1, fwd, bwd, fwd - bwd, base, alt - base, confidence, v / _SPEED_SCALE, v / k,
                       tt * ones, k / _STEPS_SCALE * ones), 1)
        if crop is not None:
            r, q, n = crop
            x, base, alt, fwd, bwd = (y[..., r : r + n, q : q + n] for y in (x, base, alt, fwd, bwd))
        out = self.decoder(x)
        return (base + 0.5 * torch.tanh(out[:, :c]) * (bwd - fwd) + torch.sigmoid(out[:, c : 2 * c]) * (alt - base)
                + out[:, 2 * c :])
