"""Real-file variants: cftime, other time names, one-sided time, float32 coords, lat/lon, order."""


import numpy as np
import pytest
import xarray as xr
from conftest import LATENT, plain_pair

import xlatent
from xlatent.exceptions import DeviceError, GridMismatchError


def _timed(a, b, name="time"):
    return (a.assign_coords({name: np.datetime64("2024-01-01T00:00", "ns")}),
            b.assign_coords({name: np.datetime64("2024-01-01T06:00", "ns")}))


def test_cftime_gives_cftime_stamps_and_physical_units():
    cftime = pytest.importorskip("cftime")
    a, b = plain_pair()
    a = a.assign_coords(time=cftime.DatetimeNoLeap(2001, 2, 28, 0)).rio.write_crs("EPSG:3413")
    b = b.assign_coords(time=cftime.DatetimeNoLeap(2001, 3, 1, 0)).rio.write_crs("EPSG:3413")
    frames, flow = xlatent.interpolate(a, b, steps=2, **LATENT)
    assert frames.time.values[1] == cftime.DatetimeNoLeap(2001, 2, 28, 12)
    assert flow.u.attrs["units"] == "m s-1"


def test_time_coord_with_another_name_is_used_and_not_copied():
    a, b = _timed(*plain_pair(), name="valid_time")
    frames, _ = xlatent.interpolate(a.rio.write_crs("EPSG:3413"), b.rio.write_crs("EPSG:3413"), steps=2, **LATENT)
    assert np.issubdtype(frames.time.dtype, np.datetime64)
    assert frames.time.values[1] == np.datetime64("2024-01-01T03:00", "ns")
    assert "valid_time" not in frames.coords


def test_one_sided_time_warns():
    a, b = _timed(*plain_pair())
    with pytest.warns(UserWarning, match="Only the first image"):
        xlatent.interpolate(a, b.drop_vars("time"), steps=1, **LATENT)


def test_float32_and_float64_coords_are_the_same_grid():
    """float32 storage of a float64 grid is the same grid: same result, first's coords kept."""
    a, b = plain_pair()
    a64 = a.assign_coords(x=a.x * 0.1, y=a.y * 0.1)
    b64 = b.assign_coords(x=b.x * 0.1, y=b.y * 0.1)
    a32 = a64.assign_coords(x=a64.x.astype("float32"), y=a64.y.astype("float32"))
    assert not np.array_equal(a32.x.values.astype(float), a64.x.values)  # 0.1 is not exact in float32
    frames, flow = xlatent.interpolate(a32, b64, steps=1, method="flow", progress=False)
    ref_frames, ref_flow = xlatent.interpolate(a64, b64, steps=1, method="flow", progress=False)
    np.testing.assert_array_equal(frames.values, ref_frames.values)
    np.testing.assert_array_equal(flow.u.values, ref_flow.u.values)
    np.testing.assert_array_equal(flow.v.values, ref_flow.v.values)
    for out in (frames, flow):
        for dim in ("x", "y"):
            assert out[dim].dtype == a32[dim].dtype
            np.testing.assert_array_equal(out[dim].values, a32[dim].values)
    shifted = b64.assign_coords(x=b64.x + 0.05)  # half a cell off: another grid
    with pytest.raises(GridMismatchError):
        xlatent.interpolate(a32, shifted, steps=1, method="flow", progress=False)


def test_frames_stay_within_input_range():
    a, b = plain_pair()
    a, b = np.maximum(a, 0), np.maximum(b, 0)  # a non-negative quantity, like rain
    frames, _ = xlatent.interpolate(a, b, steps=4, **LATENT)
    assert float(frames.min()) >= 0.0
    assert float(frames.max()) <= max(float(a.max()), float(b.max())) + 1e-6


def test_unavailable_device_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    a, b = plain_pair()
    with pytest.raises(DeviceError, match="no CUDA"):
        xlatent.interpolate(a, b, device="cuda", **LATENT)


def test_lat_lon_round_trip_keeps_spatial_dims(tmp_path):
    lat = np.linspace(60, 62, 32)
    lon = np.linspace(10, 14, 40)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(32, 40)).astype("float32")
    a = xr.DataArray(base, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, name="sst")
    b = a.copy(data=np.roll(base, 1, axis=1))
    a, b = _timed(a.rio.write_crs("EPSG:4326"), b.rio.write_crs("EPSG:4326"))
    frames, flow = xlatent.interpolate(a, b, steps=2, **LATENT)
    assert flow.u.attrs["units"] == "m s-1"
    frames.to_netcdf(tmp_path / "f.nc")
    back = xr.open_dataarray(tmp_path / "f.nc", decode_coords="all")
    assert back.rio.crs.to_epsg() == 4326
    assert (back.rio.y_dim, back.rio.x_dim) == ("lat", "lon")
    assert "axis" not in a.lat.attrs  # the input was not touched


def test_flow_follows_the_input_dim_order():
    a, b = plain_pair()
    frames, flow = xlatent.interpolate(a.transpose("x", "y"), b.transpose("x", "y"), steps=1, **LATENT)
    assert frames.dims == ("time", "x", "y")
    assert flow.u.dims == ("time", "x", "y")


def test_load_error_does_not_advise_unsafe_loading(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(xlatent.XlatentError) as info:
        xlatent.load(tmp_path / "junk.pt")
    assert "weights_only" not in str(info.value)
