"""Integration of a stationary velocity field by scaling and squaring (diffeomorphic maps).

A stationary velocity field ``v`` (``(B, 2, H, W)``, column and row, grid cells per unit time)
defines the map ``exp(t v)``: where a point ends after flowing along ``v`` for time ``t``, along
its curved path. Scaling and squaring (Arsigny et al. 2006; VoxelMorph's ``VecInt``) computes it
as ``phi = x + t v / 2**K`` composed with itself ``K`` times. ``exp(-t v)`` is the inverse of
``exp(t v)`` by construction, so a frame rendered forward from ``first`` and one carried back
from ``last`` follow the same paths.

Maps are stored as displacements ``d`` (``phi(x) = x + d(x)``) in grid cells; ``image∘phi`` is
:func:`warp`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xlatent.model.advection import _grid, check_finite, sample

_MAX_STEP = 0.5  # cells: the scaled field's largest step before squaring


def squarings(v: torch.Tensor, t: float = 1.0) -> int:
    """Number of squarings so that ``|t v| / 2**K`` stays within half a cell (at least 4)."""
    peak = float(v.detach().abs().max()) * abs(t)
    return max(4, math.ceil(math.log2(max(peak, 1e-12) / _MAX_STEP)) if peak > 0 else 4)


def compose(d1: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """Displacement of ``phi1∘phi2`` (``phi2`` first): ``d2(x) + d1(x + d2(x))``."""
    h, w = d2.shape[-2:]
    return d2 + sample(d1, _grid(h, w, d2) + d2)


def exp_field(v: torch.Tensor, t: float = 1.0, steps: int | None = None) -> torch.Tensor:
    """Displacement of ``exp(t v)`` by scaling and squaring.

    Parameters
    ----------
    v : Tensor ``(B, 2, H, W)``
        Stationary velocity, grid cells per unit time (column, row).
    t : float
        Time to flow for; negative flows backward (the inverse map).
    steps : int, optional
        Number of squarings ``K``; by default enough for a first step within half a cell.

    Returns
    -------
    Tensor ``(B, 2, H, W)``
        ``phi(x) - x`` in grid cells. Points leaving the grid read the border values of ``v``.
    """
    k = squarings(v, t) if steps is None else int(steps)
    d = v * (t / 2**k)
    if k == 0:
        return d
    check_finite(d)  # once: a finite d stays finite under composition
    # compose(d, d) k times, with the identity grid and the scale to grid_sample's [-1, 1]
    # coordinates built once: the loop is then one sample and two adds per squaring
    h, w = d.shape[-2:]
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=d.dtype, device=d.device).view(1, 2, 1, 1)
    base = (_grid(h, w, d) * scale - 1.0).permute(0, 2, 3, 1)  # (1, H, W, 2)
    for _ in range(k):
        d = d + F.grid_sample(d, base + (d * scale).permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                              align_corners=True)
    return d


def warp(image: torch.Tensor, d: torch.Tensor, order: str = "bilinear") -> torch.Tensor:
    """``image∘phi``: ``image`` ``(B, C, H, W)`` read at ``x + d(x)``, bilinearly or with clipped
    bicubic sampling (``order``, :func:`xlatent.model.advection.sample`)."""
    h, w = d.shape[-2:]
    return sample(image, _grid(h, w, d) + d, order)


def bending(v):
    """Mean bending energy of ``v`` ``(B, 2, H, W)``: ``v_xx**2 + 2 v_xy**2 + v_yy**2``."""
    vxx = v[..., :, 2:] - 2 * v[..., :, 1:-1] + v[..., :, :-2]
    vyy = v[..., 2:, :] - 2 * v[..., 1:-1, :] + v[..., :-2, :]
    vxy = v[..., 1:, 1:] - v[..., 1:, :-1] - v[..., :-1, 1:] + v[..., :-1, :-1]
    return (vxx**2).mean() + (vyy**2).mean() + 2 * (vxy**2).mean()
