"""xlatent.path_energy: the kinetic energy of a sequence of frames, and its gradient."""

import numpy as np
import pytest
import torch

import xlatent
from xlatent.path_energy import path_energy, path_energy_torch

N = 24
Y, X = np.mgrid[0:N, 0:N]


def gaussian(cx, cy, s=2.5):
    g = np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * s * s))
    return g / g.sum()


def moving(dx, dy, k=9, start=(7, 8)):
    return np.stack([gaussian(start[0] + t * dx, start[1] + t * dy) for t in np.linspace(0, 1, k)])


def test_translation_costs_its_squared_distance():
    """A blob moved by (8, 5) cells at constant speed: J = 8² + 5² = 89 cells² (within 3 %)."""
    assert path_energy(moving(8, 5)) == pytest.approx(89, rel=0.03)
    assert path_energy(moving(0, 0)) == pytest.approx(0, abs=1e-9)


def test_a_blend_costs_more_than_a_move():
    frames = moving(8, 5)
    blend = np.stack([(1 - t) * frames[0] + t * frames[-1] for t in np.linspace(0, 1, 9)])
    assert path_energy(blend) > 2 * path_energy(frames)


def test_matches_the_dynamic_ot_geodesic():
    """J of the solver's path against its own kinetic energy and POT's exact W2² (cells²): 5 %."""
    ot = pytest.importorskip("ot")
    from xlatent.methods.dynamic_ot import solve

    a, b = gaussian(7, 8), gaussian(15, 13)
    geo = solve(a, b, steps=8, iters=300, device="cpu")
    pos = np.stack([X.ravel(), Y.ravel()], 1).astype(float)
    w2 = ot.emd2(a.ravel(), b.ravel(), ot.dist(pos, pos))
    j = path_energy(geo.rho.numpy())
    assert j == pytest.approx(w2, rel=0.05)
    assert j == pytest.approx(geo.energy, rel=0.05)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    rho = torch.tensor(moving(4, 3, k=4)[:, 4:20, 4:20] + 1e-3 * rng.random((4, 16, 16)), requires_grad=True)
    path_energy_torch(rho).backward()
    d = torch.tensor(rng.standard_normal(rho.shape)) * 1e-6
    with torch.no_grad():
        fd = (path_energy_torch(rho + d) - path_energy_torch(rho - d)) / 2
    assert float((rho.grad * d).sum()) == pytest.approx(float(fd), rel=1e-4)


def test_frames_dataarray(translation_case):
    first, last = translation_case.first, translation_case.last
    frames, _ = xlatent.interpolate(first, last, 4, method="linear", progress=False)
    j = xlatent.path_energy(frames)
    assert j == pytest.approx(path_energy(frames.values))
    assert j > 0
    with pytest.raises(ValueError, match="time >= 2"):
        path_energy(frames.values[:1])
