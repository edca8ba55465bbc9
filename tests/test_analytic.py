"""Tests for the analytic flows of :mod:`xlatent.datasets` (exact solutions by characteristics)."""

import time

import numpy as np
import pytest

from xlatent import datasets
from xlatent.datasets import kinematics

SIZE = 48
SECONDS = 12 * 3600.0


@pytest.fixture(scope="module", params=datasets.ANALYTIC)
def case(request):
    return datasets.load(request.param, size=SIZE, steps=4)


def _residual(case: datasets.SyntheticCase) -> float:
    """Relative brightness-constancy residual dI/dt + u dI/dx + v dI/dy at mid-time (interior)."""
    f = case.frames.values.astype(float)
    k = f.shape[0] // 2
    dt = float((case.frames.time[k + 1] - case.frames.time[k - 1]) / np.timedelta64(1, "s"))
    didt = (f[k + 1] - f[k - 1]) / dt
    didx, didy = _d4(f[k], 1) / 1000.0, -_d4(f[k], 0) / 1000.0  # y descends with the row
    u, v = case.flow.u.values[k], case.flow.v.values[k]
    res = (didt + u * didx + v * didy)[4:-4, 4:-4]
    return float(np.sqrt(np.mean(res**2) / np.mean(didt[4:-4, 4:-4] ** 2)))


def _d4(a: np.ndarray, axis: int) -> np.ndarray:
    """Fourth-order central difference along ``axis`` (edges left at zero, outside the scored interior)."""
    out = np.zeros_like(a)
    a = np.moveaxis(a, axis, 0)
    d = (a[:-4] - 8 * a[1:-3] + 8 * a[3:-1] - a[4:]) / 12
    np.moveaxis(out, axis, 0)[2:-2] = d
    return out


def test_structure(case):
    assert case.name in datasets.ANALYTIC and case.description
    assert case.first.dims == ("y", "x") and case.first.shape == (SIZE, SIZE)
    assert case.frames.shape == (5, SIZE, SIZE) and case.frames.dtype == np.float32
    assert np.all(np.isfinite(case.frames.values))
    np.testing.assert_array_equal(case.frames.values[0], case.first.values)
    np.testing.assert_array_equal(case.frames.values[-1], case.last.values)
    np.testing.assert_allclose(case.frames.interp_fraction.values, np.linspace(0, 1, 5))
    assert (case.last.time - case.first.time).values == np.timedelta64(12, "h")
    for name in ("u", "v"):
        assert case.flow[name].attrs["units"] == "m s-1"
        assert case.flow[name].shape == (5, SIZE, SIZE)
    assert case.first.rio.crs.to_epsg() == 3413
    assert case.first.attrs["units"] in ("1", "mm h-1")


@pytest.mark.parametrize("name", [n for n in datasets.ANALYTIC if n != "growth"])
def test_velocity_carries_the_frames(name):
    """The true velocity satisfies brightness constancy on the frames (the smooth rain texture
    keeps the finite differences accurate)."""
    case = datasets.load(name, size=SIZE, steps=16, texture="rain")
    assert _residual(case) < 0.1


def test_rotation_is_exact():
    """20 degrees at t = 0.5 is the 10-degree case at t = 1 (same texture and seed): the frames
    are the texture at the exact rotated positions, not resampled."""
    half = datasets.load("rotation20", size=SIZE, steps=2, texture="sea_ice").frames.values[1]
    ten = datasets.load("rotation", size=SIZE, steps=2).last.values
    np.testing.assert_allclose(half, ten, rtol=1e-6, atol=1e-6)


def test_rotation_speed():
    case = datasets.load("rotation30", size=SIZE, steps=2)
    speed = np.hypot(case.flow.u.values[0], case.flow.v.values[0])
    corner = np.hypot(SIZE - 1, SIZE - 1) / 2 * 1000.0  # metres from the centre
    assert speed.max() == pytest.approx(np.deg2rad(30) * corner / SECONDS, rel=1e-5)
    assert speed[SIZE // 2 - 1 : SIZE // 2 + 1, SIZE // 2 - 1 : SIZE // 2 + 1].max() < 0.02


def test_vortex_turn_decays_with_radius():
    case = datasets.load("vortex", size=SIZE, steps=2)
    u, v = case.flow.u.values[0], case.flow.v.values[0]
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    r = np.hypot(cols - (SIZE - 1) / 2, rows - (SIZE - 1) / 2)
    omega = np.hypot(u, v) / np.maximum(r, 1e-9) / 1000.0 * SECONDS  # rad per interval
    centre, outer = omega[(r > 1) & (r < 3)].mean(), omega[r > 0.45 * SIZE].mean()
    assert centre == pytest.approx(np.deg2rad(60), rel=0.05)  # exp(-r^2/2R^2) > 0.95 for r < 3
    assert outer < 0.2 * centre


def test_shear_profile():
    case = datasets.load("shear", size=SIZE, steps=2)
    u, v = case.flow.u.values[0], case.flow.v.values[0]
    assert np.all(v == 0)
    np.testing.assert_array_equal(u, np.broadcast_to(u[:, :1], u.shape))  # depends on y only
    assert u[0, 0] > 0 and u[-1, 0] == pytest.approx(-u[0, 0])  # north moves east, south west
    rows = np.arange(SIZE)
    expected = 0.08 * SIZE * np.tanh(((SIZE - 1) / 2 - rows) / (0.094 * SIZE)) * 1000.0 / SECONDS
    np.testing.assert_allclose(u[:, 0], expected, rtol=1e-5, atol=1e-7)


def test_radial_departure_is_exact():
    """RK4 departure points of a linear radial flow (infinite radius) are closed-form."""
    positions, _ = kinematics.radial(0.3, 1e12, 0.0, 0.0)
    px, py = np.meshgrid(np.linspace(-20, 20, 9), np.linspace(-20, 20, 9))
    qx, qy = positions(0.7, px, py)
    np.testing.assert_allclose(qx, px * np.exp(-0.3 * 0.7), atol=1e-9)
    np.testing.assert_allclose(qy, py * np.exp(-0.3 * 0.7), atol=1e-9)


def test_convergent_brightness_is_conserved_along_paths():
    """Transport only: the values at t = 1 are the values at the departure points, so the
    frames' value range does not grow (no numerical diffusion to shrink it either)."""
    case = datasets.load("convergent", size=SIZE, steps=2)
    assert case.last.values.max() <= case.first.values.max() * 1.5


def test_growth_changes_intensity_locally():
    """4 cells east and 3 north: a cell's value at t = 1 is its value at t = 0 times the local
    growth factor (exact, the shift is whole cells), which spans decay and growth."""
    case = datasets.load("growth", size=SIZE, steps=2)
    a, b = case.first.values[3:, : SIZE - 4], case.last.values[: SIZE - 3, 4:]
    wet = a > 0.1
    ratio = b[wet] / a[wet]
    assert np.all(b[~wet & (a == 0)] == 0)
    assert ratio.max() > 1.8 and ratio.min() < 1 / 1.8


def test_textures_and_errors():
    names = {datasets.load("rotation20", size=16, texture=t).first.name for t in datasets.TEXTURES}
    assert names == {"brightness", "backscatter", "rainfall_rate"}
    rain = datasets.load("shear", size=SIZE).first.values
    assert 0.2 < np.mean(rain > 0) < 0.7  # intermittent
    with pytest.raises(ValueError, match="valid cases"):
        datasets.load("rotation45")
    with pytest.raises(ValueError, match="valid textures"):
        datasets.load("vortex", texture="plasma")


def test_fast():
    start = time.perf_counter()
    datasets.load("divergent", size=128)
    assert time.perf_counter() - start < 5.0  # ~0.5 s alone; generous on a shared machine
