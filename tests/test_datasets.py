"""Tests for the synthetic cases in :mod:`xlatent.datasets`."""

import numpy as np
import pytest
import xarray as xr

from xlatent import datasets
from xlatent.datasets import cases, kinematics

SIZE = 48
HOURS_12 = np.timedelta64(12, "h")


@pytest.fixture(scope="module", params=datasets.CASES)
def case(request):
    return datasets.load(request.param, size=SIZE, steps=4)


def _residual(case: datasets.SyntheticCase, sign: float = 1.0) -> float:
    """Relative brightness-constancy residual dI/dt + u dI/dx + v dI/dy at mid-time."""
    f = case.frames.values.astype(float)
    k = f.shape[0] // 2
    dt = float((case.frames.time[k + 1] - case.frames.time[k - 1]) / np.timedelta64(1, "s"))
    didt = (f[k + 1] - f[k - 1]) / dt
    didx, didy = _d4(f[k], 1) / 1000.0, -_d4(f[k], 0) / 1000.0  # y is descending
    u, v = (sign * case.flow[c].values[k][2:-2, 2:-2] for c in ("u", "v"))
    res = didt[2:-2, 2:-2] + u * didx + v * didy
    return float(np.sqrt(np.mean(res**2) / np.mean(didt[2:-2, 2:-2] ** 2)))


def _d4(a: np.ndarray, axis: int) -> np.ndarray:
    """Fourth-order central difference per cell along `axis`, interior only."""
    a = np.moveaxis(a, axis, 0)
    d = (a[:-4] - 8 * a[1:-3] + 8 * a[3:-1] - a[4:]) / 12
    d = np.moveaxis(d, 0, axis)
    return d[:, 2:-2] if axis == 0 else d[2:-2, :]


def test_structure(case):
    for da in (case.first, case.last):
        assert da.dims == ("y", "x")
        assert da.shape == (SIZE, SIZE)
        assert da.dtype == np.float32
        assert da.name == "backscatter"
        assert da.attrs["units"] == "1"
        assert da.time.dtype == np.dtype("datetime64[ns]") and da.time.ndim == 0
        assert da.rio.crs.to_epsg() == 3413
    assert case.frames.dims == ("time", "y", "x")
    assert case.frames.shape == (5, SIZE, SIZE)
    assert case.frames.dtype == np.float32
    assert case.name in datasets.CASES and case.description
    x, y = case.first.x.values, case.first.y.values
    np.testing.assert_allclose(np.diff(x), 1000.0)
    np.testing.assert_allclose(np.diff(y), -1000.0)
    assert case.first.x.attrs["standard_name"] == "projection_x_coordinate"
    assert case.first.y.attrs["standard_name"] == "projection_y_coordinate"
    assert case.first.x.attrs["units"] == case.first.y.attrs["units"] == "m"
    assert np.isfinite(case.frames.values).all()
    assert 0 < case.frames.min() and case.frames.max() < 3.5


def test_times_and_endpoints(case):
    assert case.first.time.values == np.datetime64("2024-03-01T00:00", "ns")
    assert case.last.time.values - case.first.time.values == HOURS_12
    times = case.frames.time.values
    np.testing.assert_array_equal(np.diff(times), np.full(4, HOURS_12 / 4))
    assert times[0] == case.first.time.values and times[-1] == case.last.time.values
    np.testing.assert_allclose(case.frames.interp_fraction, np.linspace(0, 1, 5))
    np.testing.assert_array_equal(case.frames[0].values, case.first.values)
    np.testing.assert_array_equal(case.frames[-1].values, case.last.values)


def test_flow_structure(case):
    flow = case.flow
    for name in ("u", "v"):
        assert flow[name].dims == ("time", "y", "x")
        assert flow[name].dtype == np.float32
        assert flow[name].attrs["units"] == "m s-1"
    xr.testing.assert_equal(flow.time, case.frames.time)
    np.testing.assert_array_equal(flow.y, case.frames.y)
    assert flow.rio.crs.to_epsg() == 3413


def test_flow_consistent_with_frames(case):
    # Brightness constancy holds with the true flow, not with its opposite.
    if case.name == "new_features":  # leads open after t = 0.4: use early frames
        case = datasets.new_features(size=SIZE, steps=40)
        case = datasets.SyntheticCase(
            case.first, case.last, case.frames[:11], case.flow.isel(time=slice(11)),
            case.name, case.description,
        )
    else:
        case = datasets.load(case.name, size=SIZE, steps=20)
    assert _residual(case) < 0.2
    assert _residual(case, sign=-1.0) > 1.5


def test_reproducible_and_seeded():
    a, b = datasets.rotation(size=32, seed=3), datasets.rotation(size=32, seed=3)
    xr.testing.assert_identical(a.frames, b.frames)
    xr.testing.assert_identical(a.flow, b.flow)
    c = datasets.rotation(size=32, seed=4)
    assert not np.allclose(a.first, c.first)


def test_netcdf_round_trip(case, tmp_path):
    path = tmp_path / "first.nc"
    case.first.to_netcdf(path)
    with xr.open_dataarray(path, decode_coords="all") as back:
        assert back.rio.crs.to_epsg() == 3413
        np.testing.assert_array_equal(back.values, case.first.values)
        assert back.time.values == case.first.time.values
    path = tmp_path / "flow.nc"
    case.flow.to_netcdf(path)
    with xr.open_dataset(path, decode_coords="all") as back:
        assert back.rio.crs.to_epsg() == 3413
        assert back.u.rio.crs.to_epsg() == 3413


def test_translation_velocity_and_shift():
    case = datasets.translation(size=SIZE)
    u, v = float(case.flow.u[0, 0, 0]), float(case.flow.v[0, 0, 0])
    np.testing.assert_allclose(case.flow.u, u)
    np.testing.assert_allclose(case.flow.v, v)
    # 5 cells toward +column (east), 3 cells toward -row (north) in 12 h.
    np.testing.assert_allclose([u * 43200, v * 43200], [5000.0, 3000.0], rtol=1e-6)
    # last[i, j] == first[i + 3, j - 5]: the texture moved, nothing resampled.
    np.testing.assert_allclose(case.last[:-3, 5:], case.first[3:, :-5], atol=1e-5)


def test_rotation_sign_convention():
    case = datasets.rotation(size=SIZE)
    flow = case.flow.isel(time=0)
    xc, yc = float(case.first.x.mean()), float(case.first.y.mean())
    east = flow.sel(x=xc + 15_000, y=yc, method="nearest")
    north = flow.sel(x=xc, y=yc + 15_000, method="nearest")
    assert east.v > 0 and abs(east.u) < 0.1 * east.v
    assert north.u < 0 and abs(north.v) < 0.1 * abs(north.u)
    # Solid body: |velocity| = omega * radius with omega = 10 deg / 12 h.
    omega = np.deg2rad(10.0) / 43200
    np.testing.assert_allclose(
        float(flow.v.sel(x=xc + 15_000, y=yc, method="nearest")),
        omega * (float(east.x) - xc),
        rtol=1e-5,
    )


def test_new_features_leads_appear():
    case = datasets.new_features(size=SIZE, steps=5)
    np.testing.assert_allclose(case.flow.u * 43200, 3000.0, rtol=1e-6)
    np.testing.assert_allclose(case.flow.v * 43200, -2000.0, rtol=1e-6)
    # Same texture without leads, same motion: identical up to t = 0.4.
    clean = cases._build(
        "x", "x", SIZE, 5, 0, lambda n: kinematics.shift(3.0, -2.0), cracks=False
    )
    assert case.frames.interp_fraction[2] == pytest.approx(0.4)
    np.testing.assert_array_equal(case.frames[:3].values, clean.frames[:3].values)
    ratio = (case.frames[3:] / clean.frames[3:]).values
    assert ratio.max() <= 1.0 + 1e-6
    assert ratio[0].min() > ratio[-1].min()  # leads deepen with time
    # Last frame: 3 cells east, 2 cells south, so last[i, j] matches first[i - 2, j - 3]
    # except along the leads, which are up to 60 % darker.
    last_ratio = (case.last[2:, 3:].values / case.first[:-2, :-3].values)
    assert last_ratio.min() < 0.5
    assert np.median(last_ratio) == pytest.approx(1.0, abs=1e-4)


def test_load():
    case = datasets.load("translation", size=16, steps=2, seed=1)
    assert case.name == "translation" and case.frames.sizes["time"] == 3
    with pytest.raises(ValueError, match="translation.*rotation.*new_features"):
        datasets.load("nope")
