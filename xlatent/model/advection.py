"""Semi-Lagrangian advection with bilinear sampling (torch ``grid_sample``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def advect(z: torch.Tensor, field: torch.Tensor, dt: float) -> torch.Tensor:
    """One semi-Lagrangian step: ``z_new(x) = z(x - dt * field(x))``.

    Parameters
    ----------
    z : Tensor ``(B, C, H, W)``
        Quantity to advect.
    field : Tensor ``(B, 2, H, W)``
        Velocity in grid cells per unit time; channel 0 toward increasing column, channel 1
        toward increasing row.
    dt : float
        Time step (a fraction of the unit interval).

    Returns
    -------
    Tensor ``(B, C, H, W)``. Departure points outside the array take the nearest border value,
    so that features can flow in through the borders.
    """
    _, _, h, w = z.shape
    rows = torch.arange(h, dtype=z.dtype, device=z.device).view(1, h, 1)
    cols = torch.arange(w, dtype=z.dtype, device=z.device).view(1, 1, w)
    gx = (cols - dt * field[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (rows - dt * field[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(z, grid, mode="bilinear", padding_mode="border", align_corners=True)
