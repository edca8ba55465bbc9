"""method='ot-autoencoder' (Feng & Strohmer's path-energy autoencoder) and datasets.growing_blobs."""

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers .rio: the fixture writes a CRS itself)
import xarray as xr

import xlatent
from xlatent import datasets
from xlatent.exceptions import ConfigError

N = 32
FAST = {"ae_iters": 40, "ae_width": 8, "ae_batch": 2}


def _image(cx, cy, s=2.5):
    yy, xx = np.mgrid[0:N, 0:N]
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s)).astype(np.float32)


@pytest.fixture(scope="module")
def pair():
    coords = {"y": 500_000.0 - 1000.0 * np.arange(N), "x": 1000.0 * np.arange(N)}
    make = lambda img, hours: xr.DataArray(  # noqa: E731
        img, dims=("y", "x"), coords=coords, name="rain", attrs={"units": "mm h-1"}
    ).assign_coords(time=np.datetime64("2024-03-01T00:00") + np.timedelta64(hours, "h")).rio.write_crs("EPSG:3413")
    return make(_image(10, 14), 0), make(_image(16, 16), 12)


@pytest.fixture(scope="module")
def result(pair):
    first, last = pair
    return first.latentdyn.interpolate(last, steps=4, method="ot-autoencoder", progress=False, **FAST)


def test_contract_through_the_accessor(pair, result):
    first, last = pair
    frames, flow = result
    assert frames.dims == ("time", "y", "x") and frames.shape == (5, N, N)
    np.testing.assert_allclose(frames.interp_fraction, np.linspace(0, 1, 5))
    np.testing.assert_allclose(frames[0], first, atol=1e-5)  # exact ends: the library's contract
    np.testing.assert_allclose(frames[-1], last, atol=1e-5)
    np.testing.assert_array_equal(frames.x, first.x)
    np.testing.assert_array_equal(frames.y, first.y)
    assert frames.rio.crs.to_epsg() == 3413 and frames.name == "rain"
    assert frames.attrs["xlatent_method"] == "ot-autoencoder"
    assert frames.attrs["xlatent_path_energy"] > 0
    assert flow is not None and flow.u.attrs["units"] == "m s-1"
    assert flow.u.dims == ("time", "y", "x") and flow.sizes["time"] == 4  # ae_path - 1 stages
    assert flow.rio.crs.to_epsg() == 3413


def test_flow_points_the_way_the_mass_went(result):
    """The blob moves 6 cells east and 2 south in 12 h: mass-weighted mean u > 0, v < 0 (north up)."""
    frames, flow = result
    rho = frames.values[1:-1].mean(axis=0)
    w = np.where(np.isfinite(flow.u.values.mean(axis=0)), rho, 0.0)
    u = np.nansum(flow.u.values.mean(axis=0) * w) / w.sum()
    v = np.nansum(flow.v.values.mean(axis=0) * w) / w.sum()
    assert u > 0.02 and v < 0 and u > abs(v)  # 6 km / 12 h = 0.14 m/s east


def test_seed_reproducible(pair):
    first, last = pair
    runs = [xlatent.interpolate(first, last, steps=2, method="ot-autoencoder", progress=False, seed=3,
                                exact_endpoints=False, **{**FAST, "ae_iters": 5})[0] for _ in range(2)]
    np.testing.assert_array_equal(runs[0].values, runs[1].values)  # attrs hold timings


def test_alpha_lowers_the_path_energy(pair):
    """Same seed, same steps: the decoded path D((1 - t) z0 + t z1) of the alpha > 0 model
    moves less mass further than the plain autoencoder's (xlatent.path_energy, cells²)."""
    first, last = pair
    energy = {}
    for alpha in (0.0, 10.0):
        frames, _ = xlatent.interpolate(first, last, steps=4, method="ot-autoencoder", progress=False,
                                        exact_endpoints=False, alpha=alpha, **FAST)
        energy[alpha] = xlatent.path_energy(frames)
    assert energy[10.0] < 0.8 * energy[0.0]


def test_batched_energy_is_path_energy_torch():
    torch = pytest.importorskip("torch")
    from xlatent.methods.ot_autoencoder import _energy
    from xlatent.path_energy import path_energy_torch

    d = torch.rand(5, 3, 2, 12, 12, generator=torch.Generator().manual_seed(0))
    lo = torch.tensor([0.2, 0.1])
    ref = sum(path_energy_torch(torch.relu(d[:, i, k] - lo[k]).double()) for i in range(3) for k in range(2))
    got = _energy(d, lo, torch.ones(3, 1, 12, 12), grid=32)
    assert float(got) == pytest.approx(float(ref) / (6 * 144), rel=1e-6)


@pytest.mark.parametrize("bad", [{"alpha": -1.0}, {"alpha": float("nan")}, {"ae_iters": 0}, {"ae_path": 2},
                                 {"ae_lr": 0.0}, {"ae_levels": 1.5}])
def test_bad_options_fail_before_work(pair, bad):
    first, last = pair
    with pytest.raises(ConfigError):
        xlatent.interpolate(first, last, steps=2, method="ot-autoencoder", progress=False, **bad)


# --- datasets.growing_blobs ---

@pytest.fixture(scope="module")
def blobs():
    return datasets.load("growing_blobs", size=64, steps=10)


def test_blobs_structure(blobs):
    assert "growing_blobs" in datasets.CASES and blobs.name == "growing_blobs"
    assert blobs.first.shape == blobs.last.shape == (64, 64) and blobs.frames.shape == (11, 64, 64)
    assert blobs.flow.u.shape == (11, 64, 64) and blobs.flow.u.attrs["units"] == "m s-1"
    assert blobs.first.rio.crs.to_epsg() == 3413
    assert blobs.last.time.values - blobs.first.time.values == np.timedelta64(12, "h")
    np.testing.assert_array_equal(blobs.frames[0], blobs.first)


def _mass(frames, centre, radius):
    """Mass above the background within ``radius`` (fraction of the side) of a map centre."""
    n = frames.shape[-1]
    rows, cols = np.mgrid[0:n, 0:n]
    near = np.hypot(cols - centre[0] * n, rows + centre[1] * n) < radius * n
    return (frames - 0.05)[:, near].sum(axis=1)


def test_blobs_grow_appear_and_vanish(blobs):
    f = blobs.frames.values
    grow = _mass(f, (0.28, -0.74), 0.2)
    appear = _mass(f, (0.74, -0.72), 0.15)
    vanish = _mass(f, (0.50, -0.50), 0.08)
    assert grow[-1] > 2.5 * grow[0] and np.all(np.diff(grow) > 0)
    assert appear[0] < 1e-3 * appear[-1] and appear[6] < 1e-3 * appear[-1]  # absent until 0.6
    assert vanish[4] < 1e-2 * vanish[0] and vanish[-1] < 1e-2 * vanish[0]  # gone by 0.4
    assert f.min() >= 0.05 - 1e-6


def test_blobs_velocity_in_metres_per_second(blobs):
    """The first blob moves 0.07 x 64 cells east and 0.04 x 64 south (1 km cells) in 12 h."""
    f = blobs.frames.values[5]
    n = 64
    rows, cols = np.mgrid[0:n, 0:n]
    core = (np.hypot(cols - (0.22 + 0.035) * n, rows - (0.30 + 0.02) * n) < 3) & (f > 1.0)
    assert core.sum() > 5
    np.testing.assert_allclose(blobs.flow.u.values[5][core], 0.07 * n * 1000 / 43200, rtol=0.1)
    np.testing.assert_allclose(blobs.flow.v.values[5][core], -0.04 * n * 1000 / 43200, rtol=0.1)
    still = np.hypot(cols - 0.74 * n, rows - 0.72 * n) < 2  # the appearing blob does not move
    assert np.abs(blobs.flow.u.values[-1][still]).max() < 1e-3
