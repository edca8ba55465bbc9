"""CF-1.8 outputs: kind -> standard_name, history and provenance, to_netcdf keeping the CRS link
atomically, and earth-relative vectors on a polar stereographic grid."""

import json
import os
import re
import stat

import cf_xarray  # noqa: F401  (registers .cf)
import numpy as np
import pyproj
import pytest
import xarray as xr
from conftest import QUICK, plain_pair

import xlatent
from xlatent import cf, datasets
from xlatent.exceptions import CRSError, InputError, UnknownKindError

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(scope="module")
def small_case():
    return datasets.rotation(size=32, steps=2)


def _flow(case, **kwargs):
    return xlatent.interpolate(case.first, case.last, steps=2, method="flow", progress=False, **kwargs)


@pytest.mark.parametrize(
    "kind, x_name, y_name",
    [("sea_ice", "sea_ice_x_velocity", "sea_ice_y_velocity"),
     ("sea_water", "sea_water_x_velocity", "sea_water_y_velocity"),
     ("air", "x_wind", "y_wind")],
)
def test_kind_sets_grid_relative_standard_names(small_case, kind, x_name, y_name):
    _, flow = _flow(small_case, kind=kind)
    assert flow.u.attrs["standard_name"] == x_name and flow.v.attrs["standard_name"] == y_name
    assert flow.u.attrs["units"] == "m s-1"
    assert "grid-relative" in flow.u.attrs["long_name"]


def test_no_standard_name_without_kind(small_case):
    frames, flow = _flow(small_case)
    assert "standard_name" not in flow.u.attrs and "standard_name" not in flow.v.attrs
    assert flow.u.attrs["long_name"].startswith("velocity along x")


def test_unknown_kind_is_refused_before_any_work(small_case, monkeypatch):
    from xlatent import methods

    monkeypatch.setattr(methods, "get", lambda name: pytest.fail("the method ran"))
    with pytest.raises(UnknownKindError, match="'sea_ice', 'sea_water', 'air'"):
        xlatent.interpolate(small_case.first, small_case.last, kind="ice")
    with pytest.raises(UnknownKindError):
        xlatent.fit(small_case.first, small_case.last, kind="ice")


def test_kind_without_physical_units_warns_and_sets_no_standard_name():
    a, b = plain_pair()
    with pytest.warns(UserWarning, match="not m s-1"):
        _, flow = xlatent.interpolate(a, b, steps=2, method="flow", kind="sea_ice", progress=False)
    assert "standard_name" not in flow.u.attrs


def test_lat_lon_grid_gets_eastward_names():
    rng = np.random.default_rng(0)
    lat, lon = np.linspace(70, 69, 32), np.linspace(10, 12, 40)
    base = rng.normal(size=(32, 40)).astype("float32")
    coords = {"lat": lat, "lon": lon}
    a = xr.DataArray(base, dims=("lat", "lon"), coords=coords).rio.write_crs("EPSG:4326")
    b = xr.DataArray(np.roll(base, 1, axis=1), dims=("lat", "lon"), coords=coords).rio.write_crs("EPSG:4326")
    a = a.assign_coords(time=np.datetime64("2024-01-01T00:00"))
    b = b.assign_coords(time=np.datetime64("2024-01-01T06:00"))
    _, flow = xlatent.interpolate(a, b, steps=2, method="flow", kind="sea_water", progress=False)
    assert flow.u.attrs["standard_name"] == "eastward_sea_water_velocity"
    assert flow.v.attrs["standard_name"] == "northward_sea_water_velocity"
    earth = flow.latentdyn.to_earth_relative()  # already earth-relative: renamed copy
    np.testing.assert_array_equal(earth.u_east.values, flow.u.values)
    np.testing.assert_array_equal(earth.v_north.values, flow.v.values)


def test_conventions_history_and_provenance(quick_result, rotation_case):
    frames, flow = quick_result
    for obj in (frames, flow):
        assert obj.attrs["Conventions"] == "CF-1.8"
        assert obj.attrs["xlatent_version"] == xlatent.__version__
        assert obj.attrs["xlatent_method"] == "latent"
        assert obj.attrs["xlatent_device"] == "cpu"
        config = json.loads(obj.attrs["xlatent_config"])
        assert config["max_iters"] == QUICK["max_iters"]
        assert xlatent.LatentConfig.from_dict(config).stages == flow.sizes["time"]
        assert re.fullmatch(ISO + r": xlatent \S+ interpolate\(method='latent', steps=4, .*max_iters=8\)", obj.attrs["history"])
    assert "history" not in rotation_case.first.attrs  # the input is untouched


def test_history_keeps_the_inputs(small_case):
    first = small_case.first.copy()
    first.attrs["history"] = "2020-01-01: made by hand"
    before = first.copy(deep=True)
    frames, flow = xlatent.interpolate(first, small_case.last, steps=2, method="linear", progress=False)
    lines = frames.attrs["history"].split("\n")
    assert lines[0] == "2020-01-01: made by hand"
    assert re.match(ISO + r": xlatent .* interpolate\(method='linear'", lines[1])
    assert flow is None and "xlatent_config" not in frames.attrs  # config only for the latent model
    xr.testing.assert_identical(first, before)


def test_fit_kind_is_the_flow_default(rotation_case):
    model = xlatent.fit(rotation_case.first, rotation_case.last, kind="sea_ice", **QUICK)
    assert model.flow(progress=False).u.attrs["standard_name"] == "sea_ice_x_velocity"
    assert model.flow(kind="air", progress=False).v.attrs["standard_name"] == "y_wind"
    assert "LatentInterpolator.flow(kind='air')" in model.flow(kind="air", progress=False).attrs["history"]


def test_to_netcdf_keeps_grid_mapping_with_compression(tmp_path, small_case):
    frames, flow = _flow(small_case, kind="sea_ice")
    path = xlatent.to_netcdf(flow, tmp_path / "flow.nc", encoding={"u": {"zlib": True, "complevel": 4}, "v": {"zlib": True}})
    ds = xr.open_dataset(path, decode_coords="all")
    assert ds.cf.standard_names["sea_ice_x_velocity"] == ["u"]
    assert ds.cf.standard_names["sea_ice_y_velocity"] == ["v"]
    assert ds.cf.grid_mapping_names == {"polar_stereographic": ["spatial_ref"]}
    assert ds.u.rio.crs.to_epsg() == 3413 and ds.v.rio.crs.to_epsg() == 3413
    assert ds.u.encoding["zlib"] and ds.u.encoding["grid_mapping"] == "spatial_ref"
    assert ds.attrs["Conventions"] == "CF-1.8" and ds.time.attrs["standard_name"] == "time"
    assert "_FillValue" not in ds.x.encoding  # CF: no missing values in coordinates


def test_to_netcdf_dataarray_has_global_attrs(tmp_path, small_case):
    frames, _ = _flow(small_case)
    path = xlatent.to_netcdf(frames, tmp_path / "frames.nc", encoding={frames.name: {"zlib": True}})
    ds = xr.open_dataset(path, decode_coords="all")
    assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["history"] == frames.attrs["history"]
    back = xr.open_dataarray(path, decode_coords="all")
    assert back.name == frames.name and back.rio.crs == frames.rio.crs
    np.testing.assert_array_equal(back.values, frames.values)


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_to_netcdf_failure_leaves_no_partial_file(tmp_path, small_case, monkeypatch, error):
    _, flow = _flow(small_case)
    target = tmp_path / "flow.nc"
    target.write_bytes(b"old")

    def broken(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise error

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(type(error)):
        xlatent.to_netcdf(flow, target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow.nc"]


def test_to_netcdf_gives_the_usual_file_mode(tmp_path, small_case):
    _, flow = _flow(small_case)
    path = xlatent.to_netcdf(flow, tmp_path / "flow.nc")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(InputError, match="mode='a'"):
        xlatent.to_netcdf(flow, path, mode="a")


# --- earth-relative vectors ------------------------------------------------------------------

A = 1_000_000.0  # metres from the pole


def _stereo_flow(u, v):
    """A 3 x 3 EPSG:3413 grid around the North Pole, y descending (north-up)."""
    x, y = np.array([-A, 0.0, A]), np.array([A, 0.0, -A])
    shape = (1, 3, 3)
    ds = xr.Dataset(
        {"u": (("time", "y", "x"), np.full(shape, u, "float32"), {"units": "m s-1", "standard_name": "sea_ice_x_velocity"}),
         "v": (("time", "y", "x"), np.full(shape, v, "float32"), {"units": "m s-1", "standard_name": "sea_ice_y_velocity"})},
        coords={"time": [np.datetime64("2024-03-01T06:00", "ns")], "y": y, "x": x},
    )
    return ds.rio.write_crs("EPSG:3413")


def test_hand_computed_rotation_on_polar_stereographic():
    # EPSG:3413: x = r sin(lon + 45), y = -r cos(lon + 45). Where is each test point?
    to_geo = pyproj.Transformer.from_crs("EPSG:3413", "EPSG:4326", always_xy=True)
    for (x, y), lon in {(0, -A): -45, (0, A): 135, (A, -A): 0, (-A, -A): -90}.items():
        assert to_geo.transform(x, y)[0] == pytest.approx(lon)
    # Grid +y at lon: gamma = lon + 45 is the angle from true north to grid north (clockwise);
    # east = u cos(gamma) + v sin(gamma), north = -u sin(gamma) + v cos(gamma).
    s = np.sqrt(0.5)
    earth = xlatent.to_earth_relative(_stereo_flow(0.0, 1.0)).isel(time=0)
    expected = {(0, -A): (0.0, 1.0), (0, A): (0.0, -1.0), (A, -A): (s, s), (-A, -A): (-s, s)}
    for (x, y), (east, north) in expected.items():
        point = earth.sel(x=x, y=y)
        assert float(point.u_east) == pytest.approx(east, abs=1e-5), (x, y)
        assert float(point.v_north) == pytest.approx(north, abs=1e-5), (x, y)
    along_x = xlatent.to_earth_relative(_stereo_flow(1.0, 0.0)).isel(time=0).sel(x=A, y=-A)  # lon 0
    assert float(along_x.u_east) == pytest.approx(s, abs=1e-5)
    assert float(along_x.v_north) == pytest.approx(-s, abs=1e-5)
    assert earth.u_east.attrs["standard_name"] == "eastward_sea_ice_velocity"
    assert earth.v_north.attrs["standard_name"] == "northward_sea_ice_velocity"
    assert earth.u_east.attrs["units"] == "m s-1"


def test_north_angle_is_minus_proj_meridian_convergence():
    crs = pyproj.CRS("EPSG:3413")
    x, y = np.meshgrid(np.linspace(-3e6, 3e6, 7), np.linspace(-3e6, 3e6, 7))
    lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    convergence = pyproj.Proj(crs).get_factors(lon, lat).meridian_convergence
    angle = np.degrees(cf.north_angle(crs, x, y, step=1.0))
    diff = (angle + convergence + 180) % 360 - 180
    assert np.abs(diff[np.hypot(x, y) > 0]).max() < 1e-3


def test_synthetic_case_rotation_keeps_speed_and_crs():
    case = datasets.translation(size=32, steps=2)
    earth = case.flow.latentdyn.to_earth_relative()
    np.testing.assert_allclose(np.hypot(earth.u_east, earth.v_north), np.hypot(case.flow.u, case.flow.v), rtol=1e-5)
    assert earth.u_east.rio.crs == case.flow.u.rio.crs
    # the hand formula of the test above at every cell (the grid lies around lon 180, gamma ~ -135)
    x, y = np.meshgrid(case.flow.x, case.flow.y)
    lon, _ = pyproj.Transformer.from_crs("EPSG:3413", "EPSG:4326", always_xy=True).transform(x, y)
    gamma = np.radians(lon + 45)
    assert np.abs((np.degrees(gamma) + 135 + 180) % 360 - 180).max() < 5
    u, v = case.flow.u.values, case.flow.v.values
    np.testing.assert_allclose(earth.u_east, u * np.cos(gamma) + v * np.sin(gamma), atol=1e-6)
    np.testing.assert_allclose(earth.v_north, -u * np.sin(gamma) + v * np.cos(gamma), atol=1e-6)
    xr.testing.assert_equal(earth, xlatent.to_earth_relative(case.flow))  # history stamps may differ
    assert "to_earth_relative()" in earth.attrs["history"]


def test_earth_relative_needs_a_crs():
    a, _ = plain_pair()
    flow = xr.Dataset({"u": a, "v": a})
    with pytest.raises(CRSError, match="decode_coords='all'"):
        xlatent.to_earth_relative(flow)


def test_long_names_follow_dim_names_in_any_order(small_case):
    first = small_case.first.rename(x="easting", y="northing").transpose("easting", "northing")
    last = small_case.last.rename(x="easting", y="northing").transpose("easting", "northing")
    _, flow = xlatent.interpolate(first, last, steps=2, method="flow", progress=False, x_dim="easting", y_dim="northing")
    assert flow.u.dims == ("time", "easting", "northing")
    assert flow.u.attrs["long_name"].endswith("increasing easting coordinate)")
    assert flow.v.attrs["long_name"].endswith("increasing northing coordinate)")


def test_rotated_pole_grid_is_rotated_by_the_geodesic_azimuth():
    crs = pyproj.CRS("+proj=ob_tran +o_proj=longlat +o_lon_p=0 +o_lat_p=40 +lon_0=-170 +R=6371000 +no_defs")
    x, y = np.array([-20.0, 0.0, 20.0]), np.array([10.0, 0.0, -10.0])
    ones = np.ones((3, 3), "float32")
    flow = xr.Dataset({"u": (("y", "x"), 0 * ones, {"units": "m s-1"}), "v": (("y", "x"), ones, {"units": "m s-1"})},
                      coords={"y": y, "x": x}).rio.write_crs(crs.to_wkt())
    earth = xlatent.to_earth_relative(flow)
    # independent reference, vector algebra on the sphere: a short step along rotated +y, as a 3-D
    # chord, projected on the local east and north unit vectors
    to_geo = pyproj.Transformer.from_crs(crs, crs.source_crs, always_xy=True)
    xx, yy = np.meshgrid(x, y)
    lon0, lat0 = np.radians(to_geo.transform(xx, yy))
    lon1, lat1 = np.radians(to_geo.transform(xx, yy + 1e-4))

    def xyz(lon, lat):
        return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])

    step = xyz(lon1, lat1) - xyz(lon0, lat0)
    east = np.stack([-np.sin(lon0), np.cos(lon0), 0 * lon0])
    north = np.stack([-np.sin(lat0) * np.cos(lon0), -np.sin(lat0) * np.sin(lon0), np.cos(lat0)])
    bearing = np.arctan2((step * east).sum(0), (step * north).sum(0))
    np.testing.assert_allclose(earth.u_east, np.sin(bearing), atol=1e-4)
    np.testing.assert_allclose(earth.v_north, np.cos(bearing), atol=1e-4)
    assert np.abs(earth.u_east).max() > 0.3  # grid north is far from true north off the centre
