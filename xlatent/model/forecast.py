"""PDE-driven spatiotemporal disentanglement (Donà et al., ICLR 2021) on 2-D latent maps.

Plain torch, no xarray. From a context of ``k`` frames ``V`` (``(B, k*C, H, W)``, frames grouped on
the channel axis as the paper does for images):

- ``E_S(V)`` gives the static code ``S``: a latent map at 1/4 resolution plus the encoder's inner
  maps, which the decoder receives as skip connections (the paper's SST architecture integrates
  the skips into ``S``);
- ``E_T(V)`` gives the initial dynamic state ``T_0``, a latent map at 1/4 resolution;
- ``T`` evolves by the paper's residual integrator, ``T_{t+1} = Phi(T_t)`` with ``Phi`` the
  composition of ``K`` residual blocks ``id + g_i`` (``g_i``: three 3x3 convolutions with leaky
  ReLU, orthogonal initialisation gain 0.2, as in the paper's 2-D SST variant; its batch
  normalisation is left out so that a forecast does not depend on the batch it is made in);
- ``D(S, T_t)`` decodes the frame ``t``. As in the paper's 2-D SST setting (its appendix E.4),
  ``T_0`` decodes to the first frame *after* the context.

``static=False`` is the paper's ablation without ``S``: ``T`` gets the channels of both codes,
the decoder has no skip connections, and ``L_reg^S``/``L_reg^T`` are dropped.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_SLOPE = 0.2
DOWN = 4  # latent maps are 1/4 of the frame a side (the paper's SST: 64 -> 16)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class _Encoder(nn.Module):
    """Three resolution levels (1, 1/2, 1/4); returns the latent map and the two inner maps."""

    def __init__(self, cin: int, cout: int, width: int) -> None:
        super().__init__()
        self.level0 = nn.Sequential(_conv(cin, width), nn.LeakyReLU(_SLOPE), _conv(width, width), nn.LeakyReLU(_SLOPE))
        self.level1 = nn.Sequential(_conv(width, 2 * width, 2), nn.LeakyReLU(_SLOPE), _conv(2 * width, 2 * width),
                                    nn.LeakyReLU(_SLOPE))
        self.level2 = nn.Sequential(_conv(2 * width, 2 * width, 2), nn.LeakyReLU(_SLOPE), _conv(2 * width, cout))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        s0 = self.level0(x)
        s1 = self.level1(s0)
        return self.level2(s1), [s0, s1]


class _Decoder(nn.Module):
    """Mirror of the encoder: bilinear upsampling, with or without the static skip maps."""

    def __init__(self, cin: int, cout: int, width: int, skips: bool) -> None:
        super().__init__()
        extra1, extra0 = (2 * width, width) if skips else (0, 0)
        self.level2 = nn.Sequential(_conv(cin, 2 * width), nn.LeakyReLU(_SLOPE), _conv(2 * width, 2 * width),
                                    nn.LeakyReLU(_SLOPE))
        self.level1 = nn.Sequential(_conv(2 * width + extra1, 2 * width), nn.LeakyReLU(_SLOPE),
                                    _conv(2 * width, width), nn.LeakyReLU(_SLOPE))
        self.level0 = nn.Sequential(_conv(width + extra0, width), nn.LeakyReLU(_SLOPE), _conv(width, cout))

    def forward(self, z: torch.Tensor, skips: list[torch.Tensor] | None) -> torch.Tensor:
        x = self.level2(z)
        for level, k in ((self.level1, 1), (self.level0, 0)):
            size = skips[k].shape[-2:] if skips else tuple(2 * n for n in x.shape[-2:])
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            x = level(torch.cat((x, skips[k]), dim=1) if skips else x)
        return x


class _Residual(nn.Module):
    """One block ``id + g`` of the integrator; ``g`` has two hidden layers of ``hidden`` channels."""

    def __init__(self, channels: int, hidden: int, gain: float) -> None:
        super().__init__()
        self.g = nn.Sequential(_conv(channels, hidden), nn.LeakyReLU(_SLOPE), _conv(hidden, hidden),
                               nn.LeakyReLU(_SLOPE), _conv(hidden, channels))
        for m in self.g:
            if isinstance(m, nn.Conv2d):
                nn.init.orthogonal_(m.weight, gain=gain)
                nn.init.zeros_(m.bias)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t + self.g(t)


class SpatioTemporal(nn.Module):
    """E_S, E_T, the residual integrator and D (see the module docstring)."""

    def __init__(self, channels: int, context: int, *, static_channels: int = 32, dynamic_channels: int = 16,
                 width: int = 32, ode_hidden: int = 64, ode_blocks: int = 2, static: bool = True) -> None:
        super().__init__()
        self.channels, self.context, self.static = channels, context, static
        cin = channels * context
        t_ch = dynamic_channels if static else dynamic_channels + static_channels
        self.enc_s = _Encoder(cin, static_channels, width) if static else None
        self.enc_t = _Encoder(cin, t_ch, width)
        self.dec = _Decoder(t_ch + (static_channels if static else 0), channels, width, skips=static)
        for m in [*(self.enc_s.modules() if static else []), *self.enc_t.modules(), *self.dec.modules()]:
            if isinstance(m, nn.Conv2d):  # the paper's initialisation of encoders and decoder
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
        self.ode = nn.Sequential(*(_Residual(t_ch, ode_hidden, 0.2) for _ in range(ode_blocks)))

    def encode_static(self, ctx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
        """``S``: latent map and skip maps from a context ``(B, k*C, H, W)``; None without S."""
        return self.enc_s(ctx) if self.static else None

    def encode_dynamic(self, ctx: torch.Tensor) -> torch.Tensor:
        """``T_0`` from a context ``(B, k*C, H, W)``."""
        return self.enc_t(ctx)[0]

    def decode(self, s, t: torch.Tensor) -> torch.Tensor:
        """``D(S, T)``: a frame ``(B, C, H, W)``."""
        if s is None:
            return self.dec(t, None)
        return self.dec(torch.cat((s[0], t), dim=1), s[1])

    def rollout(self, ctx: torch.Tensor, steps: int) -> list[torch.Tensor]:
        """The ``steps`` frames after the context: ``D(S, Phi^j(T_0))``, ``j = 0 .. steps - 1``."""
        s, t = self.encode_static(ctx), self.encode_dynamic(ctx)
        frames = []
        for j in range(steps):
            if j:
                t = self.ode(t)
            frames.append(self.decode(s, t))
        return frames


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return ((pred - target) ** 2 * mask).sum() / (mask.sum() * pred.shape[1]).clamp_min(1.0)


def _static_distance(a, b) -> torch.Tensor:
    """``L_reg^S``: mean squared difference of two static codes (latent map and skip maps)."""
    parts = [a[0] - b[0]] + [x - y for x, y in zip(a[1], b[1])]
    return sum(p.pow(2).mean() for p in parts) / len(parts)


def flat_context(frames: torch.Tensor) -> torch.Tensor:
    """``(B, k, C, H, W)`` -> ``(B, k*C, H, W)``: frames grouped on the channel axis."""
    b, k, c, h, w = frames.shape
    return frames.reshape(b, k * c, h, w)


def window_loss(model: SpatioTemporal, frames: torch.Tensor, mask: torch.Tensor, weights: dict[str, Any],
                rng) -> tuple[torch.Tensor, dict[str, float]]:
    """The paper's loss (its eq. 13) on training windows.

    ``frames`` ``(B, L, C, h, w)`` normalised with NaN set to 0, ``mask`` ``(B, L, 1, h, w)`` 1 where
    valid; the first ``k = model.context`` frames are the context, the other ``L - k`` the targets.
    ``weights``: ``pred``, ``ae``, ``s``, ``t`` (None: ``p/2 * 1e-3``, ``p`` the size of ``T_0``).
    ``rng`` (numpy) draws the auto-encoding offset ``i``.
    """
    k, n = model.context, frames.shape[1] - model.context
    pred, s, t0 = _rollout_error(model, frames, mask)
    i = int(rng.integers(n))  # L_AE: E_T on a later context window of the same sequence
    ae = _masked_mse(model.decode(s, model.encode_dynamic(flat_context(frames[:, i : i + k]))),
                     frames[:, i + k], mask[:, i + k])
    loss = weights["pred"] * pred + weights["ae"] * ae
    parts = {"pred": pred.item(), "ae": ae.item(), "reg_s": 0.0, "reg_t": 0.0}
    if model.static:  # the ablation without S drops both regularisers, as in the paper
        s_last = model.encode_static(flat_context(frames[:, n : n + k]))
        reg_s = _static_distance(s, s_last)
        reg_t = t0.pow(2).mean()
        lam_t = weights["t"] if weights["t"] is not None else 0.5 * t0[0].numel() * 1e-3
        loss = loss + weights["s"] * reg_s + lam_t * reg_t
        parts.update(reg_s=reg_s.item(), reg_t=reg_t.item())
    parts["loss"] = loss.item()
    return loss, parts


def _rollout_error(model: SpatioTemporal, frames: torch.Tensor, mask: torch.Tensor):
    """``L_pred``: the masked mean squared error of the frames after the first ``model.context``,
    rolled out from the context's codes; with the codes ``S`` and ``T_0``."""
    k, n = model.context, frames.shape[1] - model.context
    ctx = flat_context(frames[:, :k])
    s, t0 = model.encode_static(ctx), model.encode_dynamic(ctx)
    t, err = t0, 0.0
    for j in range(n):
        if j:
            t = model.ode(t)
        err = err + _masked_mse(model.decode(s, t), frames[:, k + j], mask[:, k + j])
    return err / n, s, t0


def prediction_error(model: SpatioTemporal, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The masked mean squared error of the forecast of the frames after the first ``model.context``
    of each window (``frames``/``mask`` as for :func:`window_loss`): the validation score, the
    loss's ``L_pred`` term."""
    return _rollout_error(model, frames, mask)[0]


def pad_to(x: torch.Tensor, multiple: int = DOWN) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the last two axes (edge values) up to a multiple of ``multiple``; returns the original size."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)
