"""Convolutional building blocks: the encoder E and the U-Net used for F and D."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_SLOPE = 0.2


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class Encoder(nn.Module):
    """E: ``layers`` 3x3 convolutions with leaky ReLU, no pooling.

    The latent is ``[image, learned channels]``: the image rides along unchanged, so the model
    contains image-space advection as a special case and starts as an exact auto-encoder.
    """

    def __init__(self, channels: int, latent: int, width: int, layers: int = 6) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        cin = channels
        for _ in range(layers - 1):
            mods += [_conv(cin, width), nn.LeakyReLU(_SLOPE)]
            cin = width
        mods.append(_conv(cin, latent))
        self.body = nn.Sequential(*mods)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """The image with the learned channels appended."""
        return torch.cat((image, self.body(image)), dim=1)


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(_conv(cin, cout), nn.LeakyReLU(_SLOPE), _conv(cout, cout), nn.LeakyReLU(_SLOPE))


class UNet(nn.Module):
    """U-Net with ``levels`` levels: max-pool down, bilinear resize + convolution up.

    Skips are joined by resizing the upsampled map to the skip's size (never cropping), so any
    input size works. The output layer starts at zero: F proposes no motion and D adds no
    correction until training says otherwise.
    """

    def __init__(self, cin: int, cout: int, width: int, levels: int = 3) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(levels)]
        self.down = nn.ModuleList(
            _DoubleConv(cin if i == 0 else widths[i - 1], widths[i]) for i in range(levels)
        )
        self.up_conv = nn.ModuleList(_conv(widths[i + 1], widths[i]) for i in reversed(range(levels - 1)))
        self.up_block = nn.ModuleList(_DoubleConv(2 * widths[i], widths[i]) for i in reversed(range(levels - 1)))
        self.out = nn.Conv2d(widths[0], cout, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net's output for ``x``."""
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for conv, block, skip in zip(self.up_conv, self.up_block, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = F.leaky_relu(conv(x), _SLOPE)
            x = block(torch.cat((x, skip), dim=1))
        return self.out(x)


def unet_reach(levels: int) -> int:
    """Receptive radius of :class:`UNet` in grid cells (how far a pixel sees)."""
    down = sum(2 * 2**i + (2**i if i else 0) for i in range(levels))
    up = sum(3 * 2**i for i in range(levels - 1))
    return down + up
