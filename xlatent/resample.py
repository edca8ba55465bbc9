"""Resampling between a grid and a coarser one: the motion estimators' integer-factor block
means and field upsampling, and the OT methods' resampling to a given coarse shape.

Two families, kept apart on purpose: they give different numbers (edge-padded ``k x k`` blocks
and scikit-image's bilinear resize; torch's adaptive pooling and interpolation), and each
method's results depend on its own.
"""

from __future__ import annotations

import numpy as np


def block_mean(x: np.ndarray, k: int) -> np.ndarray:
    """``(H, W)`` averaged over ``k x k`` blocks (edges padded with their last values)."""
    h, w = x.shape
    x = np.pad(x, ((0, -h % k), (0, -w % k)), mode="edge")
    return x.reshape(x.shape[0] // k, k, x.shape[1] // k, k).mean(axis=(1, 3))


def upsample_field(field: np.ndarray, k: int, shape: tuple[int, int]) -> np.ndarray:
    """A displacement field ``(2, h, w)`` estimated on ``k``-times coarser cells, back on the
    ``shape`` grid: bilinear between cell centres, in fine cells (times ``k``)."""
    from skimage.transform import resize

    h, w = field.shape[1:]
    fine = resize(field, (2, h * k, w * k), order=1, mode="edge", anti_aliasing=False)
    return (k * fine[:, : shape[0], : shape[1]]).astype(np.float32)


def coarse_shape(h: int, w: int, grid: int) -> tuple[int, int]:
    """``(h, w)`` scaled down to at most ``grid`` cells a side (never up), at least 1 each."""
    scale = min(1.0, grid / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def pool(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` averaged onto ``shape`` cells (torch's adaptive average pooling)."""
    import torch
    import torch.nn.functional as F

    return F.adaptive_avg_pool2d(torch.from_numpy(x)[None, None], shape)[0, 0].numpy()


def resize(x: np.ndarray, shape: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """``(h, w)`` resampled onto ``shape`` cells, ``"bilinear"`` or ``"nearest"`` (torch), float64."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[None, None]
    corners = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t, size=shape, mode=mode, **corners)[0, 0].numpy()
