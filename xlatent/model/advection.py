"""Semi-Lagrangian advection with bilinear (or clipped bicubic) sampling (torch ``grid_sample``).

Two forms of the same operator. :func:`advect` is one step, ``z_new(x) = z(x - dt * u(x))``.
:func:`departure` traces the departure points of several steps back through their fields, so
that :func:`sample` interpolates the advected quantity once instead of once per step: the
composition is the same, without the blur that repeated bilinear interpolation adds (pysteps
accumulates displacements for the same reason).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from xlatent.exceptions import InputError


def _grid(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(h, dtype=like.dtype, device=like.device).view(1, h, 1).expand(1, h, w)
    cols = torch.arange(w, dtype=like.dtype, device=like.device).view(1, 1, w).expand(1, h, w)
    return torch.stack((cols, rows), dim=1)  # (1, 2, H, W): column, row positions


def check_finite(positions: torch.Tensor) -> None:
    """Raise :class:`~xlatent.exceptions.InputError` when CPU ``positions`` (or a motion they are
    made of) hold a NaN or inf: on CPU, grid_sample's backward pass with a NaN position is a
    segmentation fault. One sum (NaN or inf if any term is) costs ~2% of the sampling, a
    cell-wise test ~15%; elsewhere the check is skipped (it would wait for the device)."""
    if positions.device.type == "cpu" and not bool(torch.isfinite(positions.detach().sum())):
        raise InputError(
            "The motion has non-finite values (NaN or inf): the inputs were not finite after "
            "normalisation, or training diverged. Mask inf and fill values in the inputs, or lower lr."
        )


SAMPLING = ("bilinear", "bicubic")


def sample(z: torch.Tensor, positions: torch.Tensor, order: str = "bilinear") -> torch.Tensor:
    """Values of ``z`` ``(B, C, H, W)`` at ``positions`` ``(B, 2, H, W)`` (column, row in grid
    cells). Positions outside the array take the nearest border value, so features can flow in
    through the borders.

    ``order="bilinear"`` (the default, and what the fits differentiate) or ``"bicubic"``: Keys'
    cubic convolution (torch ``grid_sample``), sharper on sub-cell shifts, clipped to the range
    of the four cells around each position so that it never overshoots (no new extremes, no
    negative rain)."""
    _, _, h, w = z.shape
    check_finite(positions)
    gx = positions[:, 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = positions[:, 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1)
    if order == "bilinear" or min(h, w) < 2:
        return F.grid_sample(z, grid, mode="bilinear", padding_mode="border", align_corners=True)
    if order != "bicubic":
        raise InputError(f"Unknown sampling order {order!r}: use one of {', '.join(SAMPLING)}.")
    out = F.grid_sample(z, grid, mode="bicubic", padding_mode="border", align_corners=True)
    # the four cells around each position: the 2 x 2 block whose top-left corner is floor(pos)
    hi = F.max_pool2d(z, 2, stride=1)
    lo = -F.max_pool2d(-z, 2, stride=1)
    corner = torch.stack((positions[:, 0].clamp(0, w - 1).floor().clamp(max=w - 2) * (2.0 / max(w - 2, 1)) - 1.0,
                          positions[:, 1].clamp(0, h - 1).floor().clamp(max=h - 2) * (2.0 / max(h - 2, 1)) - 1.0), dim=-1)
    hi = F.grid_sample(hi, corner, mode="nearest", padding_mode="border", align_corners=True)
    lo = F.grid_sample(lo, corner, mode="nearest", padding_mode="border", align_corners=True)
    return torch.minimum(torch.maximum(out, lo), hi)


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
    """
    h, w = z.shape[-2:]
    return sample(z, _grid(h, w, z) - dt * field)


def _trace(fields: Sequence[torch.Tensor], steps: Sequence[float], order: Sequence[int], sign: float) -> torch.Tensor:
    """Positions of the grid cells moved by ``sign * dt_k * field_k`` for ``k`` in ``order``,
    each field read (bilinearly) at the point's current position."""
    first = fields[0]
    pos = _grid(*first.shape[-2:], first).expand(first.shape[0], -1, -1, -1)
    moved = False
    for k in order:
        if steps[k] == 0:
            continue
        velocity = sample(fields[k], pos) if moved else fields[k]  # still on the grid: exact
        pos = pos + sign * steps[k] * velocity
        moved = True
    return pos


def departure(fields: Sequence[torch.Tensor], steps: Sequence[float]) -> torch.Tensor:
    """Departure points ``(B, 2, H, W)`` of the cells after the steps ``(field_k, dt_k)`` in order.

    Traced backward: from the final time, each step moves the point back by ``dt_k`` times
    field ``k`` read (bilinearly) at the point's current position.
    """
    return _trace(fields, steps, range(len(fields) - 1, -1, -1), -1.0)


def arrival(fields: Sequence[torch.Tensor], steps: Sequence[float]) -> torch.Tensor:
    """Arrival points ``(B, 2, H, W)`` of the cells after the steps ``(field_k, dt_k)`` in order.

    Traced forward, the mirror of :func:`departure`: sampling a quantity known at the final
    time at these points carries it back to the starting time along the same motion.
    """
    return _trace(fields, steps, range(len(fields)), 1.0)
