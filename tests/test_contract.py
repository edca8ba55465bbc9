"""The output contract (docs/guide.md, "What comes back" and "Units and signs"): dims, coords, attrs, CRS, time, units, sign."""

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers .rio: tests write CRSs themselves)
import xarray as xr
from conftest import LATENT, plain_pair

import xlatent
from xlatent import datasets, geo


def test_frames_contract(quick_result, rotation_case):
    frames, _ = quick_result
    first = rotation_case.first
    assert frames.dims == ("time", "y", "x")
    assert frames.sizes["time"] == 5
    assert frames.name == first.name
    assert frames.attrs["units"] == first.attrs["units"]
    np.testing.assert_array_equal(frames.x, first.x)
    np.testing.assert_array_equal(frames.y, first.y)
    assert frames.rio.crs == first.rio.crs
    np.testing.assert_allclose(frames.interp_fraction, np.linspace(0, 1, 5))
    t0, t1 = rotation_case.first.time.values, rotation_case.last.time.values
    assert frames.time.values[0] == t0 and frames.time.values[-1] == t1
    assert np.all(np.diff(frames.time.values) == (t1 - t0) / 4)


def test_endpoints_equal_inputs(quick_result, rotation_case):
    frames, _ = quick_result
    np.testing.assert_allclose(frames[0], rotation_case.first, atol=1e-4)
    np.testing.assert_allclose(frames[-1], rotation_case.last, atol=1e-4)


def test_flow_contract(quick_result, rotation_case):
    _, flow = quick_result
    stages = xlatent.LatentConfig().stages
    assert set(flow.data_vars) == {"u", "v", "confidence"}  # the latent method's motion confidence
    assert flow.confidence.dims == ("y", "x") and flow.confidence.attrs["units"] == "1"
    assert flow.u.dims == ("time", "y", "x") and flow.sizes["time"] == stages
    np.testing.assert_allclose(flow.interp_fraction, (np.arange(stages) + 0.5) / stages)
    assert flow.u.attrs["units"] == "m s-1"
    assert flow.rio.crs == rotation_case.first.rio.crs
    for var in flow.data_vars.values():
        assert var.encoding["grid_mapping"] == "spatial_ref"
    assert "standard_name" not in flow.u.attrs  # only when the user says what moves


def test_north_moving_feature_gets_positive_v(translation_case):
    # the texture moves 3 rows up (north, y descending) and 5 columns east
    _, flow = xlatent.interpolate(translation_case.first, translation_case.last, steps=2, **LATENT)
    assert float(flow.v.mean()) > 0
    assert float(flow.u.mean()) > 0


def test_without_time_or_crs_units_are_cells(monkeypatch):
    a, b = plain_pair()
    frames, flow = xlatent.interpolate(a, b, steps=2, **LATENT)
    assert "interp_fraction" in frames.coords
    np.testing.assert_allclose(frames.time, [0, 0.5, 1])
    assert flow.u.attrs["units"] == "grid_cells per unit interp_fraction"
    assert frames.rio.crs is None


def test_channel_dim_is_kept():
    a, b = plain_pair()
    a3 = xr.concat([a, a * 2, a + 1], dim="band").assign_coords(band=[1, 2, 3])
    b3 = xr.concat([b, b * 2, b + 1], dim="band").assign_coords(band=[1, 2, 3])
    frames, flow = xlatent.interpolate(a3, b3, steps=2, **LATENT)
    assert frames.dims == ("time", "band", "y", "x")
    np.testing.assert_array_equal(frames.band, [1, 2, 3])
    assert flow.u.dims == ("time", "y", "x")


def test_lat_lon_units_on_the_sphere():
    lat = np.linspace(60, 61, 20)
    lon = np.linspace(10, 12, 30)
    da = xr.DataArray(np.zeros((20, 30)), dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    da = da.rio.write_crs("EPSG:4326")
    grid = geo.describe(da)
    assert (grid.y_dim, grid.x_dim) == ("lat", "lon")
    one = np.ones((1, 20, 30))
    u, v, units = geo.flow_in_coordinates(one, one, da, grid, seconds=3600.0)
    assert units == "m s-1"
    dlat_m = np.deg2rad(lat[1] - lat[0]) * geo.EARTH_RADIUS_M
    np.testing.assert_allclose(v[0, 0, 0], dlat_m / 3600, rtol=1e-6)
    dlon_m = np.deg2rad(lon[1] - lon[0]) * geo.EARTH_RADIUS_M * np.cos(np.deg2rad(lat[0]))
    np.testing.assert_allclose(u[0, 0, 0], dlon_m / 3600, rtol=1e-6)


def test_descending_y_flips_v_sign(rotation_case):
    grid = geo.describe(rotation_case.first)
    one = np.ones((1, 48, 48))
    _, v, _ = geo.flow_in_coordinates(one, one, rotation_case.first, grid, seconds=1.0)
    assert np.all(v < 0)  # moving toward larger row index = toward smaller y = south


def test_explicit_dims_override():
    a, b = plain_pair()
    a, b = a.rename(y="row", x="col"), b.rename(y="row", x="col")
    frames, _ = xlatent.interpolate(a, b, steps=1, x_dim="col", y_dim="row", **LATENT)
    assert frames.dims == ("time", "row", "col")


def test_linear_method_has_no_flow(rotation_case):
    frames, flow = rotation_case.first.latentdyn.interpolate(rotation_case.last, steps=2, method="linear")
    assert flow is None
    mid = 0.5 * (rotation_case.first + rotation_case.last)
    np.testing.assert_allclose(frames[1], mid, atol=1e-6)


def test_nan_stays_nan(rotation_case):
    first = rotation_case.first.copy()
    first[:5, :5] = np.nan
    frames, flow = xlatent.interpolate(first, rotation_case.last, steps=2, **LATENT)
    assert np.isnan(frames[0, :5, :5]).all() and np.isnan(frames[1, :5, :5]).all()
    assert not np.isnan(frames[-1, :5, :5]).any()  # the last image had data there
    assert np.isnan(flow.u[0, :5, :5]).all()
    assert np.isfinite(frames[1, 10:, 10:]).all()


def test_constant_images_give_zero_flow_and_constant_frames():
    a, _ = plain_pair()
    a = a * 0 + 3.0
    frames, flow = xlatent.interpolate(a, a.copy(), steps=3, **LATENT)
    np.testing.assert_allclose(frames, 3.0, atol=1e-5)
    np.testing.assert_allclose(flow.u, 0, atol=1e-6)
    np.testing.assert_allclose(flow.v, 0, atol=1e-6)


def test_flow_method_contract_and_direction(translation_case):
    case = translation_case
    frames, flow = case.first.latentdyn.interpolate(case.last, steps=6, method="flow")
    assert frames.sizes["time"] == 7 and flow.sizes["time"] == 1
    np.testing.assert_allclose(flow.interp_fraction, [0.5])
    assert flow.u.attrs["units"] == "m s-1"
    assert float(flow.u.mean()) > 0 and float(flow.v.mean()) > 0  # east and north
    truth = case.frames.values[1:-1]
    lin = np.stack([(1 - t) * case.first.values + t * case.last.values for t in np.arange(1, 6) / 6])
    assert np.mean((frames.values[1:-1] - truth) ** 2) < 0.5 * np.mean((lin - truth) ** 2)


@pytest.fixture(scope="module", params=["translation", "rotation"])
def truth_case(request):
    return datasets.load(request.param, size=48, steps=2)


@pytest.mark.parametrize("method", ["flow", "latent"])
def test_velocity_in_m_per_s_matches_the_truth(method, truth_case):
    """The size of u/v end to end: a 1 km grid, 12 h apart, against the case's true velocity."""
    case = truth_case
    options = {"max_iters": 8} if method == "latent" else {}
    _, flow = xlatent.interpolate(case.first, case.last, steps=2, method=method, progress=False, **options)
    assert flow.u.attrs["units"] == flow.v.attrs["units"] == "m s-1"
    inner = (slice(None), slice(6, -6), slice(6, -6))  # texture enters and leaves at the borders
    u, v = flow.u.values[inner], flow.v.values[inner]
    ut, vt = (case.flow[c].isel(time=[0]).values[inner] for c in ("u", "v"))
    true_speed = float(np.hypot(ut, vt).mean())  # 0.135 m s-1 (translation), 0.056 (rotation)
    assert float(np.hypot(u, v).mean()) == pytest.approx(true_speed, rel=0.1)
    epe = float(np.hypot(u - ut, v - vt).mean())  # end-point error, m s-1
    assert epe < 0.2 * true_speed  # measured: flow 0.07 %, latent 2.3 % (translation); 8.6-8.7 % (rotation)
