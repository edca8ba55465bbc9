"""Bad inputs a new user gives (issue 23): each gets a named error before any work, or is handled
as xarray users expect, never a silent wrong answer. Tiny grids and the fast methods only."""

import datetime
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (the tests write CRSs themselves)
import xarray as xr

import xlatent
from xlatent import datasets, geo, input_checks
from xlatent.datasets import wave_equation
from xlatent.exceptions import (
    CRSNotFoundWarning,
    FillValueError,
    InputError,
    IrregularTimeError,
    NoCRSWarning,
    TimeNotDateWarning,
    TimeOrderError,
)

ROOT = Path(__file__).resolve().parents[1]
FAST = {"motion": "tvl1"}  # method="flow" with its quick motion estimate: these tests are about geo handling


@pytest.fixture(scope="module")
def pair():
    case = datasets.translation(size=32, steps=2)
    return case.first, case.last


# --------------------------------------------------------------------------- 1. fill values


@pytest.mark.parametrize("fill", [-9999.0, 1e4, -999.0])
@pytest.mark.parametrize("method", ["flow", "latent"])
def test_undeclared_fill_value_is_named(pair, fill, method):
    first, last = (x.copy() for x in pair)
    first[:, :5] = fill  # a rim outside the data, as a swath edge or a land mask leaves it
    last[:, :5] = fill
    with pytest.raises(FillValueError, match=rf"at {fill:.7g}.*_FillValue.*where"):
        xlatent.interpolate(first, last, steps=2, method=method, max_iters=1, progress=False) if method == "latent" \
            else xlatent.interpolate(first, last, steps=2, method=method, progress=False)


def test_undeclared_fill_value_is_named_on_lazy_inputs(pair):
    first, last = (x.copy() for x in pair)
    first[:, :5] = -9999.0
    last[:, :5] = -9999.0
    with pytest.raises(FillValueError, match="at -9999.*_FillValue"):
        xlatent.interpolate(first.chunk(16), last.chunk(16), steps=2, method="flow", progress=False)
    declared = first.assign_attrs(_FillValue=-9999.0), last.assign_attrs(_FillValue=-9999.0)
    frames, _ = xlatent.interpolate(*(x.chunk(16) for x in declared), steps=2, method="linear", progress=False)
    assert np.isnan(frames.values[0, :, :5]).all() and np.isfinite(frames.values[0, :, 5:]).all()


def test_declared_fill_value_is_masked_and_real_data_passes(pair):
    first, last = (x.copy() for x in pair)
    first[:, :5] = -9999.0
    declared = first.assign_attrs(_FillValue=-9999.0)
    frames, _ = xlatent.interpolate(declared, last, steps=2, method="linear", progress=False)
    assert np.isnan(frames.values[0, :, :5]).all() and np.isfinite(frames.values[0, :, 5:]).all()
    # fields with a repeated extreme that is data: rain (zeros), sea ice (open water), a mask
    rng = np.random.default_rng(0)
    rain = np.where(rng.random((32, 32)) < 0.7, 0.0, rng.gamma(0.5, 5.0, (32, 32)))
    ice = np.where(rng.random((32, 32)) < 0.5, 0.0, rng.uniform(15, 100, (32, 32)))
    for values in (rain, ice, (rng.random((32, 32)) < 0.3).astype(float), first.values[:, 5:]):
        assert input_checks.find_fill_value(values) is None


def test_forecast_refuses_an_undeclared_fill_value():
    series = wave_equation(size=16, frames=6, seed=3)
    values = series.values.copy()
    values[:, :3, :] = -3.4e38  # GeoTIFF's float32 nodata, undeclared
    with pytest.raises(InputError, match="3.4e\\+38|-3.402823e\\+38"):
        xlatent.forecast(series.copy(data=values), horizon=1, context=3, method="persistence")
    values = series.values.copy()
    values[:, :3, :] = -9999.0
    with pytest.raises(FillValueError, match="-9999"):
        xlatent.forecast(series.copy(data=values), horizon=1, context=3, method="persistence")


# --------------------------------------------------------------------------- 2. output size


def test_output_that_cannot_fit_is_refused_with_its_size(pair, monkeypatch):
    first, last = pair
    monkeypatch.setattr(input_checks, "available_memory", lambda: 64 * 2**20)  # 64 MiB free
    with pytest.raises(InputError, match=r"steps=100000 .*100001 frames.*391 MiB.*64 MiB"):
        xlatent.interpolate(first, last, steps=100_000, method="linear", progress=False)
    # lazy: one chunk's frames count, as the output goes to disk chunk by chunk
    with pytest.raises(InputError, match=r"each dask chunk's frames take 97.7 MiB"):
        xlatent.interpolate(first.chunk(16), last.chunk(16), steps=100_000, method="linear", progress=False)
    frames, _ = xlatent.interpolate(first, last, steps=1000, method="linear", progress=False)  # 3.9 MiB: fits
    assert frames.sizes["time"] == 1001


def test_available_memory_is_known_here():
    assert input_checks.available_memory() > 2**20


# --------------------------------------------------------------------------- 4. lazy and in-memory together


@pytest.mark.parametrize("lazy", ["first", "last"])
def test_one_lazy_input_and_one_in_memory(pair, lazy):
    first, last = pair
    first, last = (first.chunk(16), last) if lazy == "first" else (first, last.chunk(16))
    frames, _ = xlatent.interpolate(first, last, steps=2, method="linear", progress=False)
    expected, _ = xlatent.interpolate(*pair, steps=2, method="linear", progress=False)
    np.testing.assert_allclose(frames.values, expected.values, rtol=1e-6)
    assert isinstance(first, xr.DataArray) and pair[0].chunks is None and pair[1].chunks is None  # inputs untouched


# --------------------------------------------------------------------------- 5. time zones


def test_timezone_aware_times_are_converted_to_utc(pair):
    first, last = pair
    first = first.assign_coords(time=pd.Timestamp("2024-03-01T01:00", tz="Europe/Brussels"))
    last = last.assign_coords(time=pd.Timestamp("2024-03-01T13:00", tz="Europe/Brussels"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimeNotDateWarning)
        frames, _ = xlatent.interpolate(first, last, steps=2, method="linear", progress=False)
    expected = np.array(["2024-03-01T00:00", "2024-03-01T06:00", "2024-03-01T12:00"], dtype="datetime64[ns]")
    np.testing.assert_array_equal(frames.time.values, expected)


def test_timezone_aware_series_forecasts_at_its_step():
    series = wave_equation(size=16, frames=6, seed=3)
    aware = pd.DatetimeIndex(series.time.values).tz_localize("UTC").tz_convert("America/New_York")
    out = xlatent.forecast(series.assign_coords(time=aware), horizon=2, context=3, method="persistence")
    step = series.time.values[1] - series.time.values[0]
    np.testing.assert_array_equal(out.time.values, series.time.values[-1] + step * np.arange(1, 3))


# --------------------------------------------------------------------------- 6. no CRS


def _units_warnings(first, last, method="flow"):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _, flow = xlatent.interpolate(first, last, steps=2, method=method, progress=False, **FAST)
    said = [w for w in seen if issubclass(w.category, (NoCRSWarning, CRSNotFoundWarning))]
    return flow, said


def test_no_crs_is_said_once_with_the_right_units(pair):
    first, last = (x.drop_vars("spatial_ref") for x in pair)  # metre coords and times: m s-1
    flow, said = _units_warnings(first, last)
    assert len(said) == 1 and said[0].category is NoCRSWarning
    assert flow.u.attrs["units"] == "m s-1" and "in m s-1" in str(said[0].message)
    assert "rio.write_crs(" in str(said[0].message) and said[0].filename == __file__
    cells = [x.drop_vars(["spatial_ref", "time"]).assign_coords(x=np.arange(32.0), y=np.arange(32.0)) for x in pair]
    flow, said = _units_warnings(*cells)
    assert len(said) == 1 and "grid cells" in str(said[0].message)
    assert flow.u.attrs["units"].startswith("grid_cells")


def test_detached_grid_mapping_is_said_once(pair):
    first, last = (x.drop_vars("spatial_ref").assign_attrs(grid_mapping="spatial_ref") for x in pair)
    flow, said = _units_warnings(first, last)
    assert len(said) == 1 and said[0].category is CRSNotFoundWarning
    assert "in m s-1" in str(said[0].message) and flow.u.attrs["units"] == "m s-1"


# --------------------------------------------------------------------------- 7. antimeridian


def _across_the_antimeridian(lon):
    lat = np.arange(60.0, 44.0, -0.5)
    yy, xx = np.meshgrid(np.arange(lat.size), np.arange(lon.size), indexing="ij")

    def make(shift, hours):
        values = np.sin((xx - shift) / 3.0) + np.cos(yy / 4.0)
        da = xr.DataArray(values, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, name="t2m")
        return da.assign_coords(time=np.datetime64("2024-01-01T00", "ns") + np.timedelta64(hours, "h")).rio.write_crs(
            "EPSG:4326")

    return make(0, 0), make(1, 6)


def test_longitudes_across_the_antimeridian():
    """170 ... 179.5, -180 ... -170.5: the motion is that of the same grid written 170 ... 189.5,
    and the outputs keep the input's longitudes."""
    wrapped = np.r_[np.arange(170.0, 180.0, 0.5), np.arange(-180.0, -170.0, 0.5)]
    first, last = _across_the_antimeridian(wrapped)
    # guard=False: a smooth field shifted by a twentieth of its wavelength reads partly as a
    # source, and the do-no-harm guard shrinks that motion (u 1.03 instead of 1.57 m s-1; its middle
    # frame 55.5 dB against 46.3 unguarded, linear blend 52.4); the velocity's units and sign are under test here
    fast = {"motion": "tvl1", "guard": False}
    frames, flow = xlatent.interpolate(first, last, steps=2, method="flow", progress=False, **fast)
    np.testing.assert_array_equal(frames.lon.values, wrapped)
    np.testing.assert_array_equal(flow.lon.values, wrapped)
    ref_frames, ref_flow = xlatent.interpolate(*_across_the_antimeridian(np.unwrap(wrapped, period=360.0)),
                                               steps=2, method="flow", progress=False, **fast)
    np.testing.assert_allclose(flow.u.values, ref_flow.u.values)
    np.testing.assert_allclose(frames.values, ref_frames.values)
    assert 1.2 < float(flow.u.mean()) < 2.0  # 0.5 degree at ~52 N in 6 h: about 1.6 m s-1 eastward


def test_longitudes_in_disorder_still_refused_without_sortby_for_a_wrap():
    lon = np.r_[np.arange(170.0, 180.0, 0.5), np.arange(-180.0, -170.0, 0.5)]
    lon[3], lon[4] = lon[4], lon[3]
    first, last = _across_the_antimeridian(lon)
    with pytest.raises(InputError, match="not strictly monotonic"):
        xlatent.interpolate(first, last, steps=2, method="linear", progress=False)


# --------------------------------------------------------------------------- 9. duplicate and irregular times


def test_times_a_nanosecond_apart_are_one_time(pair):
    first, last = pair
    t = first.time.values
    with pytest.raises(TimeOrderError, match="only 1 ns apart"):
        xlatent.interpolate(first, last.assign_coords(time=t + np.timedelta64(1, "ns")), steps=2,
                            method="linear", progress=False)


def test_duplicate_and_irregular_series_in_human_units():
    series = wave_equation(size=16, frames=6, seed=3)
    series = series.assign_coords(time=pd.date_range("2024-03-01", periods=6, freq="h").values)
    times = series.time.values.astype("datetime64[ns]")
    times[3] = times[2] + np.timedelta64(1, "ns")
    with pytest.raises(IrregularTimeError, match=r"duplicate timestamps: time index 2 and 3 \(1 ns apart\)"):
        xlatent.forecast(series.assign_coords(time=times), horizon=1, context=3, method="persistence")
    times = series.time.values.copy()
    times[3:] += np.timedelta64(90, "s")
    with pytest.raises(IrregularTimeError, match=r"steps found: 1 h, 1 h 1 min 30 s\)"):
        xlatent.forecast(series.assign_coords(time=times), horizon=1, context=3, method="persistence")


def test_human_duration():
    cases = {np.timedelta64(3_600_000_000, "us"): "1 h", np.timedelta64(1, "ns"): "1 ns",
             np.timedelta64(3_599_999_999_999, "ns"): "59 min 59.999999999 s", datetime.timedelta(minutes=5): "5 min"}
    for gap, text in cases.items():
        assert geo.human_duration(gap) == text


# --------------------------------------------------------------------------- 10. float64


def test_float64_inputs_keep_their_dtype_and_precision(pair):
    rng = np.random.default_rng(0)
    first = pair[0].astype("float64") + 1e5 + rng.normal(0.0, 1e-6, pair[0].shape)  # a pressure in Pa, say
    last = pair[1].astype("float64") + 1e5
    frames, _ = xlatent.interpolate(first, last, steps=2, method="linear", progress=False)
    assert frames.dtype == np.float64
    spread = float(first.std())
    assert float(np.abs(frames[0] - first).max()) < 1e-6 * spread  # float32 of the values: 8e-3, 1e-2 of the spread
    assert float(np.abs(frames[-1] - last).max()) < 1e-6 * spread


# --------------------------------------------------------------------------- rioxarray not imported by the caller


def test_maps_find_the_crs_without_importing_rioxarray(pair, tmp_path):
    """A result file opened with xarray alone (rioxarray never imported): the map is still drawn
    in the file's CRS, not on plain axes."""
    frames, _ = xlatent.interpolate(*pair, steps=1, method="linear", progress=False)
    # rebuilt from plain values: xarray's file backends and pickled accessors import rioxarray
    parts = {"x": frames.x.values.tolist(), "y": frames.y.values.tolist(),
             "spatial_ref": {k: str(v) for k, v in frames.spatial_ref.attrs.items()}}
    (tmp_path / "frames.json").write_text(json.dumps(parts))
    code = f"""
import json, sys
import numpy as np, xarray as xr
import xlatent
from xlatent import drawing, plot
p = json.load(open({str(tmp_path / "frames.json")!r}))
frames = xr.DataArray(np.zeros((len(p["y"]), len(p["x"]))), dims=("y", "x"),
                      coords={{"y": p["y"], "x": p["x"], "spatial_ref": ((), 0, p["spatial_ref"])}})
frames.encoding["grid_mapping"] = "spatial_ref"
assert "rioxarray" not in sys.modules
print(drawing.map_crs(frames, "y", "x") is not None)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "True", out.stderr
