"""No crash and no silent wrong answer on bad input values, grids, times and steps.

Cases that used to kill the process (a NaN reaching torch's ``grid_sample`` on CPU) run in a
subprocess, so that a regression fails the test instead of the test run.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import plain_pair

import xlatent
from xlatent import geo
from xlatent.exceptions import InputError, NonFiniteWarning, SpeedWarning, TimeOrderError

ROOT = Path(__file__).resolve().parents[1]


def run_isolated(code: str, timeout: float = 300) -> str:
    """Run ``code`` in a fresh interpreter importing this checkout; its stdout (a crash fails)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, f"exit {done.returncode} (negative: killed by a signal)\n{done.stderr[-3000:]}"
    return done.stdout


HOUR = np.timedelta64(1, "h")


def timed_pair(ny=24, nx=24, gap=HOUR):
    a, b = plain_pair(ny, nx)
    t0 = np.datetime64("2024-01-01T00:00", "ns")
    metres = {"units": "m"}
    a = a.assign_coords(time=t0, x=("x", a.x.values * 1000, metres), y=("y", a.y.values * 1000, metres))
    b = b.assign_coords(time=t0 + gap, x=a.x, y=a.y)
    return a, b


# -- item 1: inf and huge values never crash the trained methods -----------------------------

def test_inf_and_fill_values_do_not_crash_trained_methods():
    out = run_isolated("""
        import json, warnings
        import numpy as np
        import xlatent
        from conftest import plain_pair
        from xlatent.exceptions import InputError, NonFiniteWarning

        report = {}
        for method in ("latent", "advection"):
            a, b = plain_pair(24, 24)
            a[10, 10] = np.inf
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                frames, flow = xlatent.interpolate(a, b, steps=2, method=method, max_iters=2, progress=False)
            mid = frames.isel(time=1).values
            report[method] = {
                "warned": any(issubclass(w.category, NonFiniteWarning) for w in seen),
                "nan_only_there": bool(np.isnan(mid[10, 10]) and np.isfinite(np.delete(mid.ravel(), 10 * 24 + 10)).all()),
                "flow_finite": bool(np.isfinite(flow.u.values[:, 0, 0]).all()),
            }
            for fill in (9.969209968386869e36, -3.4028235e38):
                a, b = plain_pair(24, 24)
                a[3, 4] = fill
                try:
                    xlatent.interpolate(a, b, steps=2, method=method, max_iters=2, progress=False)
                    report[method][str(fill)] = "no error"
                except InputError as err:
                    report[method][str(fill)] = str(err)
        print(json.dumps(report))
    """)
    report = json.loads(out.strip().splitlines()[-1])
    for method, got in report.items():
        assert got["warned"] and got["nan_only_there"] and got["flow_finite"], (method, got)
        for fill in ("9.969209968386869e+36", "-3.4028235e+38"):
            assert "_FillValue" in got[fill] and "1 value(s)" in got[fill], (method, got[fill])


def test_the_model_never_gets_nan_positions():
    import torch

    from xlatent.model.advection import sample

    positions = torch.zeros(1, 2, 8, 8)
    positions[0, 0, 3, 3] = float("nan")
    with pytest.raises(InputError, match="non-finite"):
        sample(torch.zeros(1, 1, 8, 8), positions)


def test_normalisation_does_not_overflow_float32():
    a, b = plain_pair(24, 24)
    a[5, 5] = 1e20  # finite in float32, but its square is not
    frames, _ = xlatent.interpolate(a, b, steps=2, method="linear", progress=False)
    assert np.isfinite(frames.values).all()


# -- item 2: flow and linear give finite output where both inputs are valid -----------------

@pytest.mark.parametrize("method", ["linear", "flow"])
def test_inf_cell_is_missing_not_everything(method):
    a, b = plain_pair(24, 24)
    a[10, 10] = -np.inf
    with pytest.warns(NonFiniteWarning, match="1 infinite") as seen:
        frames, flow = xlatent.interpolate(a, b, steps=2, method=method, progress=False)
    assert seen[0].filename == __file__
    mid = frames.isel(time=1).values
    assert np.isnan(mid[10, 10]) and np.isfinite(mid).sum() == mid.size - 1
    assert np.isfinite(frames.isel(time=2).values).all()  # the last frame is the last image
    if flow is not None:
        assert np.isfinite(flow.u.values).sum() == flow.u.size - flow.sizes["time"]
    assert np.isinf(a.values[10, 10])  # the input is not modified


# -- item 7: coordinates that are not a grid; absurd speeds ---------------------------------

def test_swapped_columns_are_rejected():
    a, b = plain_pair(24, 24)
    x = a.x.values.copy()
    x[[5, 6]] = x[[6, 5]]
    a, b = a.assign_coords(x=x), b.assign_coords(x=x)
    with pytest.raises(InputError, match=r"'x' of first is not strictly monotonic.*sortby"):
        xlatent.interpolate(a, b, steps=2, method="linear", progress=False)


def test_latitudes_beyond_90_are_rejected():
    a, b = plain_pair(24, 24)
    lat, lon = np.linspace(80, 103, 24), np.linspace(0, 23, 24)
    a = a.rename(y="lat", x="lon").assign_coords(lat=lat, lon=lon)
    b = b.rename(y="lat", x="lon").assign_coords(lat=lat, lon=lon)
    with pytest.raises(InputError, match=r"Latitude coordinate 'lat' of first reaches 103"):
        xlatent.interpolate(a, b, steps=2, method="linear", progress=False)


def test_descending_latitudes_within_90_are_fine():
    a, b = plain_pair(24, 24)
    lat, lon = np.linspace(89, 66, 24), np.linspace(0, 23, 24)
    a = a.rename(y="lat", x="lon").assign_coords(lat=lat, lon=lon)
    b = b.rename(y="lat", x="lon").assign_coords(lat=lat, lon=lon)
    xlatent.interpolate(a, b, steps=2, method="linear", progress=False)


def test_times_a_tenth_of_a_second_apart_warn_about_speed():
    a, b = timed_pair(gap=np.timedelta64(100, "ms"))  # 1 ns apart is one time: test_bad_input.py
    with pytest.warns(SpeedWarning, match=r"above 1000 m s-1.*filterwarnings") as seen:
        xlatent.interpolate(a, b, steps=2, method="flow", progress=False)
    assert seen[0].filename == __file__  # points at the caller's line


def test_plausible_speed_does_not_warn():
    a, b = timed_pair(gap=np.timedelta64(1, "h"))  # 1 cell of 1 km per hour: 0.28 m s-1
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpeedWarning)
        _, flow = xlatent.interpolate(a, b, steps=2, method="flow", progress=False)
    assert flow.u.attrs["units"] == "m s-1"


def test_lazy_flow_is_not_computed_to_warn():
    da = pytest.importorskip("dask.array")
    a, _ = timed_pair(gap=np.timedelta64(1, "ns"))
    grid = geo.describe(a)
    u = da.zeros((1, 24, 24), chunks=12, dtype=np.float32)
    with pytest.warns(SpeedWarning, match="One cell of motion"):
        ds = geo.flow_to_xarray(u, u, a, grid, grid.time + np.timedelta64(1, "ns"), np.array([0.5]), {})
    assert isinstance(ds.u.data, da.Array)


# -- item 9: messages that say what is really wrong -----------------------------------------

def test_equal_times_say_so():
    a, b = timed_pair(gap=np.timedelta64(0, "s"))
    with pytest.raises(TimeOrderError, match="same time") as err:
        xlatent.interpolate(a, b, steps=2, method="linear", progress=False)
    assert "Swap" not in str(err.value)


def test_nat_time_says_so():
    a, b = timed_pair()
    b = b.assign_coords(time=np.datetime64("NaT", "ns"))
    with pytest.raises(TimeOrderError, match="last image is NaT") as err:
        xlatent.interpolate(a, b, steps=2, method="linear", progress=False)
    assert "Swap" not in str(err.value)


def test_values_beyond_float32_are_named_not_called_missing():
    a, b = plain_pair(24, 24)
    a = a.astype("float64")
    a[:] = 1e39  # finite in float64, inf in float32
    with pytest.raises(InputError, match=r"576 value\(s\) of magnitude above 1e\+30"):
        xlatent.interpolate(a, b, steps=2, method="linear", progress=False)


def test_declared_fill_value_is_masked():
    a, b = plain_pair(24, 24)
    a[3, 4] = 9.969209968386869e36
    a.attrs["_FillValue"] = 9.969209968386869e36
    frames, _ = xlatent.interpolate(a, b, steps=2, method="linear", progress=False)
    assert np.isnan(frames.values[1, 3, 4]) and np.isfinite(frames.values[1]).sum() == 24 * 24 - 1


def test_nan_coordinates_are_rejected_clearly():
    a, b = plain_pair(24, 24)
    x = a.x.values.copy()
    x[7] = np.nan
    with pytest.raises(InputError, match=r"'x' of last has 1 NaN") as err:
        xlatent.interpolate(a, b.assign_coords(x=x), steps=2, method="linear", progress=False)
    assert "nan apart" not in str(err.value)


@pytest.mark.parametrize("steps", [2.0, np.float32(2.0), np.int64(2)])
def test_whole_float_steps_are_accepted(steps):
    a, b = plain_pair(24, 24)
    frames, _ = xlatent.interpolate(a, b, steps=steps, method="linear", progress=False)
    assert frames.sizes["time"] == 3


@pytest.mark.parametrize("steps", [2.5, True, "2", float("nan"), 0.0])
def test_other_steps_are_rejected(steps):
    a, b = plain_pair(24, 24)
    with pytest.raises(InputError, match="whole number"):
        xlatent.interpolate(a, b, steps=steps, method="linear", progress=False)


def test_one_time_coord_warning_points_at_the_caller():
    a, b = timed_pair()
    with pytest.warns(UserWarning, match="Only the first image") as seen:
        xlatent.interpolate(a, b.drop_vars("time"), steps=2, method="linear", progress=False)
    assert seen[0].filename == __file__


def test_detached_grid_mapping_warns_instead_of_dropping_the_crs(tmp_path):
    """``xr.open_dataset(path)["var"]`` keeps ``grid_mapping`` as an attribute but not the
    variable it names: the CRS must not vanish without a word."""
    import rioxarray  # noqa: F401  (registers .rio)
    import xarray as xr

    from xlatent.exceptions import CRSNotFoundWarning

    a, b = (x.rio.write_crs("EPSG:3413") for x in plain_pair())
    xr.Dataset({"first": a, "last": b}).to_netcdf(tmp_path / "pair.nc")
    with xr.open_dataset(tmp_path / "pair.nc") as ds:
        first, last = ds["first"].load(), ds["last"].load()
    assert "spatial_ref" not in first.coords and first.attrs["grid_mapping"] == "spatial_ref"
    with pytest.warns(CRSNotFoundWarning, match="decode_coords='all'"):
        xlatent.interpolate(first, last, method="linear", steps=1)
    with xr.open_dataset(tmp_path / "pair.nc", decode_coords="all") as ds:
        first, last = ds["first"].load(), ds["last"].load()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CRSNotFoundWarning)
        frames, _ = xlatent.interpolate(first, last, method="linear", steps=1)
    assert frames.rio.crs is not None
    dropped = a.drop_vars("spatial_ref")  # the documented way to work in grid cells: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", CRSNotFoundWarning)
        xlatent.interpolate(dropped, b.drop_vars("spatial_ref"), method="linear", steps=1)
