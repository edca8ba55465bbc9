"""method='dynamic-ot': Benamou-Brenier transport by proximal splitting, checked on known answers."""

import numpy as np
import pytest

import xlatent
from xlatent.exceptions import ConfigError
from xlatent.methods.dynamic_ot import solve

N = 24
Y, X = np.mgrid[0:N, 0:N]


def gaussian(cx, cy, s=2.5):
    g = np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * s * s))
    return g / g.sum()


@pytest.fixture(scope="module")
def pair():
    return gaussian(7, 8), gaussian(15, 13)


@pytest.fixture(scope="module")
def geodesic(pair):
    return solve(*pair, steps=4, iters=400, device="cpu")


def test_midpoint_is_the_translated_gaussian(pair, geodesic):
    mid = geodesic.rho.numpy()[2]
    centre = ((mid * X).sum() / mid.sum(), (mid * Y).sum() / mid.sum())
    np.testing.assert_allclose(centre, (11.0, 10.5), atol=0.5)
    assert mid.max() == pytest.approx(pair[0].max(), rel=0.05)
    assert mid.sum() == pytest.approx(1.0, rel=1e-9)


def test_kinetic_energy_is_pot_w2(pair, geodesic):
    """The path's kinetic energy against the exact discrete W2² (POT, squared Euclidean cost,
    same grid in cells): within 2 % after 400 iterations (measured 1.7 %, from above)."""
    ot = pytest.importorskip("ot")
    pos = np.stack([X.ravel(), Y.ravel()], 1).astype(float)
    w2 = ot.emd2(pair[0].ravel(), pair[1].ravel(), ot.dist(pos, pos))
    assert geodesic.energy == pytest.approx(w2, rel=0.02)


def test_velocity_is_the_translation(geodesic):
    """m / rho where the mass is: (8, 5) cells per unit time."""
    v = geodesic.velocity.numpy()[1]  # time cell 1: between levels 1 and 2
    rho = geodesic.rho.numpy()[1:3].mean(axis=0)
    core = rho > 0.3 * rho.max()
    np.testing.assert_allclose([np.nanmean(v[0][core]), np.nanmean(v[1][core])], (8, 5), atol=0.5)
    assert np.isnan(v[0][rho < 1e-4 * rho.max()]).all()


def test_unbalanced_with_a_large_tau_is_balanced(pair, geodesic):
    big = solve(*pair, steps=4, iters=400, unbalanced=1e4, device="cpu").rho.numpy()
    small = solve(*pair, steps=4, iters=400, unbalanced=1e-3, device="cpu").rho.numpy()
    bal = geodesic.rho.numpy()
    assert np.abs(big - bal).max() < 0.02 * bal.max()
    assert np.abs(small - bal).max() > 0.3 * bal.max()  # cheap sources: a blend, not a move


def test_unbalanced_grows_mass():
    a, b = gaussian(12, 12), 2 * gaussian(12, 12)
    with pytest.raises(ConfigError, match="equal masses"):
        solve(a, b, steps=4, iters=10)
    g = solve(a, b, steps=4, iters=200, unbalanced=1.0, device="cpu")
    np.testing.assert_allclose(g.rho.numpy().sum(axis=(1, 2)), [1, 1.25, 1.5, 1.75, 2], atol=0.05)


def test_obstacle_has_zero_momentum_and_is_gone_around():
    a, b = gaussian(5, 12, 2.0), gaussian(18, 12, 2.0)
    wall = (X >= 10) & (X <= 12) & (Y < 16)  # a gap in rows 16-23
    a, b = np.where(wall, 0, a), np.where(wall, 0, b)
    a, b = a / a.sum(), b / b.sum()
    free = solve(a, b, steps=4, iters=300, device="cpu")
    g = solve(a, b, steps=4, iters=300, obstacle=wall, device="cpu")
    rho = g.rho.numpy()
    assert (g.velocity.numpy()[:, :, wall] == 0).all()
    assert rho[:, wall].sum(axis=1).max() < 1e-3  # no mass through the wall
    assert (rho[2] * Y).sum() > 14.5 > (free.rho.numpy()[2] * Y).sum()  # through the gap
    assert g.energy > 1.3 * free.energy


def test_through_the_accessor(translation_case):
    first, last = translation_case.first, translation_case.last
    frames, flow = first.latentdyn.interpolate(last, steps=4, method="dynamic-ot", ot_grid=16, ot_steps=4,
                                               ot_iters=150, progress=False)
    np.testing.assert_allclose(frames[0], first, atol=1e-4)
    np.testing.assert_allclose(frames[-1], last, atol=1e-4)
    assert frames.attrs["xlatent_method"] == "dynamic-ot"
    assert frames.attrs["xlatent_path_energy"] > 0
    assert flow.sizes["time"] == 4 and flow.u.attrs["units"] == "m s-1"
    obstacle = xlatent.interpolate(first, last, 4, method="dynamic-ot", ot_grid=16, ot_steps=4, ot_iters=20,
                                   obstacle=first > 1e9, progress=False)  # a DataArray mask
    assert obstacle[0].sizes["time"] == 5


@pytest.mark.parametrize("bad", [{"ot_steps": 0}, {"ot_iters": 1.5}, {"ot_grid": True}, {"unbalanced": -1},
                                 {"obstacle": np.zeros((3, 3), bool)}])
def test_bad_options(translation_case, bad):
    with pytest.raises(ConfigError):
        xlatent.interpolate(translation_case.first, translation_case.last, 2, method="dynamic-ot", **bad)
