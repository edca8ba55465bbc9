"""Higher-order sampling in the rendering warps (issue 21): sharper on sub-cell shifts, no overshoot."""

import numpy as np
import pytest
import torch

from xlatent.exceptions import XlatentError
from xlatent.model.advection import _grid, sample
from xlatent.model.integrate import warp


def _smooth(x, y):
    return np.sin(2 * np.pi * x / 9.0) * np.cos(2 * np.pi * y / 13.0)


def test_bicubic_translates_a_smooth_field_better_than_bilinear():
    rows, cols = np.mgrid[0:32, 0:32].astype(np.float64)
    z = torch.from_numpy(_smooth(cols, rows).astype(np.float32))[None, None]
    d = torch.zeros(1, 2, 32, 32)
    d[:, 0], d[:, 1] = 0.37, -0.21  # a fraction of a cell
    truth = _smooth(cols + 0.37, rows - 0.21)[4:-4, 4:-4]  # away from the clamped borders
    err = {order: np.abs(warp(z, d, order)[0, 0].numpy()[4:-4, 4:-4] - truth).max() for order in ("bilinear", "bicubic")}
    assert err["bicubic"] < 0.5 * err["bilinear"]


def test_bicubic_never_overshoots_the_cells_around():
    z = torch.zeros(1, 1, 16, 16)
    z[..., 8:] = 1.0  # a step: cubic convolution rings on both sides of it
    z[..., 4, 4] = 5.0  # and a spike
    pos = _grid(16, 16, z) + torch.tensor([0.45, 0.3]).view(1, 2, 1, 1)
    out = sample(z, pos, "bicubic")[0, 0]
    unclipped = torch.nn.functional.grid_sample(
        z, torch.stack((pos[:, 0] * 2 / 15 - 1, pos[:, 1] * 2 / 15 - 1), -1), mode="bicubic", align_corners=True)
    assert float(unclipped.min()) < 0.0  # the clip has something to do
    c0, r0 = pos[0, 0].clamp(0, 15).floor().long().clamp(max=14), pos[0, 1].clamp(0, 15).floor().long().clamp(max=14)
    block = torch.stack([z[0, 0][r0 + i, c0 + j] for i in (0, 1) for j in (0, 1)])
    assert bool((out >= block.min(0).values - 1e-6).all()) and bool((out <= block.max(0).values + 1e-6).all())


def test_unknown_order_is_a_named_error():
    z = torch.zeros(1, 1, 4, 4)
    with pytest.raises(XlatentError, match="sampling order"):
        sample(z, _grid(4, 4, z), "lanczos")


def test_flow_refuses_an_unknown_sampling_before_any_work():
    import xlatent
    from xlatent import datasets

    case = datasets.load("translation", size=16, steps=1)
    with pytest.raises(XlatentError, match="sampling='lanczos'.*'auto'.*'bicubic'"):
        xlatent.interpolate(case.first, case.last, steps=1, method="flow", sampling="lanczos", progress=False)
