"""Convolutional autoencoder of ``method="ot-autoencoder"`` (Feng & Strohmer's generator).

Fully convolutional, so the latent ``z`` keeps the spatial layout of the image, but at
``1 / 2**levels`` of its resolution and without skip connections: a straight line between two
codes is then not a cross-dissolve of the two images (a skip would carry each image past the
bottleneck and the decoder could only blend them), and the decoder is free to render the mass
of an intermediate code at intermediate places.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xlatent.model.networks import _SLOPE, _conv


class ConvAutoencoder(nn.Module):
    """Encoder: a convolution, then ``levels`` stride-2 down-samplings (each followed by a
    convolution), widths doubling, and a 1x1 projection to ``latent`` channels. Decoder: the
    mirror image with bilinear up-sampling. Inputs of any size are edge-padded to a multiple
    of ``2**levels`` and the output cropped back."""

    def __init__(self, channels: int, latent: int = 8, width: int = 16, levels: int = 2) -> None:
        super().__init__()
        act = lambda: nn.LeakyReLU(_SLOPE)  # noqa: E731
        enc: list[nn.Module] = [_conv(channels, width), act()]
        w = width
        for _ in range(levels):
            enc += [nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), act(), _conv(2 * w, 2 * w), act()]
            w *= 2
        enc.append(nn.Conv2d(w, latent, 1))
        dec: list[nn.Module] = [nn.Conv2d(latent, w, 1), act(), _conv(w, w), act()]
        for _ in range(levels):
            dec += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    _conv(w, w // 2), act(), _conv(w // 2, w // 2), act()]
            w //= 2
        dec.append(nn.Conv2d(w, channels, 1))
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        self.alignment = 2**levels
        self.levels = levels

    def reach(self) -> int:
        """Receptive radius in grid cells of ``decode(encode(x))`` (a bound)."""
        return 8 * self.alignment

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, latent, ceil(H / 2**levels), ceil(W / 2**levels))``."""
        h, w = image.shape[-2:]
        a = self.alignment
        pad = (0, -w % a, 0, -h % a)
        if any(pad):
            image = F.pad(image, pad, mode="replicate")
        return self.encoder(image)

    def decode(self, z: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Latent codes -> images ``(B, C, *size)`` (cropped from the padded grid)."""
        return self.decoder(z)[..., : size[0], : size[1]]
