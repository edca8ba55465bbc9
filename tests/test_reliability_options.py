"""Issue 13, items 3, 4 and 8: the CRS of a CF grid mapping is never lost, a time that is not a
date is decoded or named, and every option is checked before any work."""

import json
import os
import subprocess
import sys
import textwrap
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyproj
import pytest
import xarray as xr
from conftest import QUICK, plain_pair

import xlatent
from xlatent import LatentConfig, geo
from xlatent.exceptions import (
    ConfigError,
    CRSError,
    DeviceError,
    IgnoredOptionWarning,
    TimeNotDateWarning,
)

ROOT = Path(__file__).resolve().parents[1]
SPACING = 1000.0  # metres
HOURS = 6


def metric_pair(crs=True, t0=None, t1=None, attrs=None):
    """A 32 x 40 pair 1 km apart on EPSG:3413, ``last`` one cell to +x, with optional time values."""
    a, b = plain_pair()
    coords = {"x": a.x.values * SPACING, "y": a.y.values[::-1] * SPACING}
    a, b = a.assign_coords(coords), b.assign_coords(coords)
    if crs:
        a, b = a.rio.write_crs("EPSG:3413"), b.rio.write_crs("EPSG:3413")
    if t0 is not None:
        a = a.assign_coords(time=xr.Variable((), t0, dict(attrs or {})))
        b = b.assign_coords(time=xr.Variable((), t1, dict(attrs or {})))
    return a, b


# --- item 3: CRS of a CF grid mapping -------------------------------------------------------------

_NO_RIOXARRAY = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pyproj, xarray as xr
    import xlatent
    assert "rioxarray" not in sys.modules, "the test needs an interpreter without rioxarray"
    rng = np.random.default_rng(0)
    base = rng.normal(size=(32, 40)).astype("float32")
    coords = {"x": np.arange(40) * 1000.0, "y": np.arange(32)[::-1] * 1000.0,
              "spatial_ref": xr.Variable((), 0, pyproj.CRS.from_epsg(3413).to_cf())}
    a = xr.DataArray(base, dims=("y", "x"), coords=coords, attrs={"grid_mapping": "spatial_ref"})
    b = a.copy(data=np.roll(base, 1, axis=1))
    a = a.assign_coords(time=np.datetime64("2024-01-01T00:00", "ns"))
    b = b.assign_coords(time=np.datetime64("2024-01-01T06:00", "ns"))
    frames, flow = xlatent.interpolate(a, b, steps=2, method="flow", progress=False)
    epsg = lambda obj: pyproj.CRS.from_wkt(obj.coords["spatial_ref"].attrs["crs_wkt"]).to_epsg()
    print(json.dumps({"units": flow.u.attrs["units"], "u": float(np.nanmedian(flow.u.values)),
                      "frames_epsg": epsg(frames), "flow_epsg": epsg(flow)}))
    """
)


def test_cf_grid_mapping_is_read_without_importing_rioxarray():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
    run = subprocess.run([sys.executable, "-c", _NO_RIOXARRAY], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["units"] == "m s-1"
    assert out["frames_epsg"] == 3413 and out["flow_epsg"] == 3413
    assert out["u"] == pytest.approx(SPACING / (HOURS * 3600), rel=0.3)  # one cell in 6 h


def _with_grid_mapping(da, attrs):
    da = da.drop_vars("spatial_ref", errors="ignore").assign_coords(spatial_ref=xr.Variable((), 0, attrs))
    return da.assign_attrs(grid_mapping="spatial_ref")


def test_broken_wkt_falls_back_to_cf_parameters():
    a, b = metric_pair(crs=False, t0=np.datetime64("2024-01-01T00", "ns"), t1=np.datetime64("2024-01-01T06", "ns"))
    attrs = {**pyproj.CRS.from_epsg(3413).to_cf(), "crs_wkt": "not a WKT", "spatial_ref": "not a WKT"}
    a, b = _with_grid_mapping(a, attrs), _with_grid_mapping(b, attrs)
    assert pyproj.CRS.from_user_input(geo._crs(a)).is_projected
    _, flow = xlatent.interpolate(a, b, steps=1, method="flow", progress=False)
    assert flow.u.attrs["units"] == "m s-1"


def test_unreadable_grid_mapping_is_a_crs_error_not_a_silent_loss():
    a, b = metric_pair(crs=False)
    attrs = {"grid_mapping_name": "no_such_projection"}
    a, b = _with_grid_mapping(a, attrs), _with_grid_mapping(b, attrs)
    with pytest.raises(CRSError, match="grid mapping 'spatial_ref'.*drop"):
        xlatent.interpolate(a, b, steps=1, method="linear", progress=False)


# --- item 4: a time that is not a datetime64 ------------------------------------------------------


def test_numeric_time_with_cf_units_is_decoded():
    a, b = metric_pair(t0=0.0, t1=float(HOURS), attrs={"units": "hours since 2024-01-01"})
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimeNotDateWarning)
        frames, flow = xlatent.interpolate(a, b, steps=2, method="flow", progress=False)
    assert frames.time.values[1] == np.datetime64("2024-01-01T03:00", "ns")
    assert flow.u.attrs["units"] == "m s-1"
    assert float(np.nanmedian(flow.u)) == pytest.approx(SPACING / (HOURS * 3600), rel=0.3)
    assert a.time.dtype == np.float64  # the input is not modified


def test_numeric_time_with_a_cf_calendar_gives_cftime():
    cftime = pytest.importorskip("cftime")
    a, b = metric_pair(t0=59, t1=60, attrs={"units": "days since 2001-01-01", "calendar": "noleap"})
    frames, _ = xlatent.interpolate(a, b, steps=2, method="linear", progress=False)
    assert frames.time.values[1] == cftime.DatetimeNoLeap(2001, 3, 1, 12)


def test_iso_string_time_is_parsed():
    a, b = metric_pair(t0="2024-01-01T00:00", t1="2024-01-01T06:00Z")
    frames, flow = xlatent.interpolate(a, b, steps=2, method="flow", progress=False)
    assert frames.time.values[1] == np.datetime64("2024-01-01T03:00", "ns")
    assert flow.u.attrs["units"] == "m s-1"


@pytest.mark.parametrize("t0, t1, attrs, said", [
    (0.0, 6.0, None, "number .* without CF units"),
    (0.0, 6.0, {"units": "hours"}, "not CF time units"),
    ("yesterday", "today", None, "not an ISO 8601 date"),
])
def test_time_that_is_not_a_date_warns(t0, t1, attrs, said):
    a, b = metric_pair(t0=t0, t1=t1, attrs=attrs)
    with pytest.warns(TimeNotDateWarning, match=said + ".*grid cells per unit interp_fraction.*filterwarnings"):
        frames, flow = xlatent.interpolate(a, b, steps=2, method="flow", progress=False)
    assert flow.u.attrs["units"] == "grid_cells per unit interp_fraction"
    assert frames.time.dtype == np.float64


# --- item 8: options checked before any work ------------------------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Make reading the inputs, estimating motion and training fail: an option error must come first."""

    def work(*args, **kwargs):
        raise AssertionError("work started before the options were checked")

    import xlatent.backends
    import xlatent.motion.estimators
    import xlatent.train

    monkeypatch.setattr(xlatent.backends.InMemory, "prepare", work)
    monkeypatch.setattr(xlatent.backends.Dask, "prepare", work)
    monkeypatch.setattr(xlatent.train, "train", work)
    monkeypatch.setattr(xlatent.motion.estimators, "estimate", work)


def test_config_error_is_a_value_error_and_a_usage_exit():
    from xlatent.cli import EXIT_USAGE, _code_for

    assert issubclass(ConfigError, ValueError) and not issubclass(ConfigError, TypeError)
    assert _code_for(ConfigError("x")) == EXIT_USAGE


@pytest.mark.parametrize("method, options, said", [
    ("latent", {"blend": "magic"}, "blend"),
    ("latent", {"inference_dtype": "float16"}, "inference_dtype"),
    ("latent", {"max_iters": 0}, "max_iters"),
    ("latent", {"lr": -1.0}, "lr"),
    ("latent", {"time_budget": 0}, "time_budget"),
    ("advection", {"stages": 2.5}, "stages"),
    ("latent", {"flow_sees_last": "yes"}, "flow_sees_last"),
    ("latent", {"seed": -1}, "seed"),
    ("latent", {"patch": 0}, "patch"),
    ("latent", {"stride": {"x": -4}}, "stride"),
    ("latent", {"exact_endpoints": "no"}, "exact_endpoints"),
    ("latent", {"config": {"max_iters": 5}}, "LatentConfig"),
    ("flow", {"blend": "magic"}, "blend"),
    ("flow", {"motion_transform": "sqrt"}, "motion_transform"),
    ("ot", {"ot_grid": 1}, "ot_grid"),
    ("linear", {"clip": None}, "clip"),
])
def test_bad_option_fails_before_any_work(no_work, method, options, said):
    a, b = plain_pair()
    with pytest.raises(ConfigError, match=said):
        xlatent.interpolate(a, b, steps=2, method=method, progress=False, **options)


def test_fit_checks_its_options_before_any_work(no_work):
    a, b = plain_pair()
    with pytest.raises(ConfigError, match="inference_dtype"):
        xlatent.fit(a, b, inference_dtype="half", progress=False)
    with pytest.raises(DeviceError, match="not a torch device"):
        xlatent.fit(a, b, device="gpu", progress=False)


def test_frames_checks_blend_before_computing_the_motion(rotation_case, monkeypatch):
    model = xlatent.fit(rotation_case.first, rotation_case.last, **QUICK)

    def work(*args, **kwargs):
        raise AssertionError("the motion was computed before blend was checked")

    monkeypatch.setattr(model, "_motion", work)
    with pytest.raises(ConfigError, match="blend.*'transport'"):
        model.frames(2, blend="magic", progress=False)


def test_latent_config_checks_every_way_it_is_built():
    with pytest.raises(ConfigError, match="inference_dtype"):
        LatentConfig(inference_dtype="float16")
    with pytest.raises(ConfigError, match="batch_size"):
        replace(LatentConfig(), batch_size=0)
    with pytest.raises(ConfigError, match="l_smooth"):
        LatentConfig.from_dict({"l_smooth": float("nan")})
    assert LatentConfig(max_iters=200.0).max_iters == 200  # a whole float is an int
    back = LatentConfig.from_dict(LatentConfig().to_dict())
    assert back == LatentConfig()


@pytest.mark.parametrize("method", ["linear", "flow", "ot", "latent"])
def test_device_is_checked_for_every_method(no_work, method):
    a, b = plain_pair()
    with pytest.raises(DeviceError, match="not a torch device"):
        xlatent.interpolate(a, b, method=method, device="gpu", progress=False)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA"):
            xlatent.interpolate(a, b, method=method, device="cuda", progress=False)


def test_device_of_a_cpu_method_is_ignored_with_a_warning(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    a, b = plain_pair()
    with pytest.warns(IgnoredOptionWarning, match="method='linear' runs on the CPU.*device='cuda' is ignored"):
        xlatent.interpolate(a, b, steps=1, method="linear", device="cuda", progress=False)
    with pytest.raises(DeviceError, match="1 CUDA GPU"):
        xlatent.interpolate(a, b, steps=1, method="linear", device="cuda:3", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredOptionWarning)
        xlatent.interpolate(a, b, steps=1, method="linear", device="cpu", progress=False)


def test_methods_that_run_on_the_device_say_so():
    """The ignored-device warning is for CPU-only methods: flow, dynamic-ot and ot-autoencoder run
    their torch solvers on the device they are given."""
    from xlatent import methods

    on_device = {name for name in methods.available() if methods.spec(name).uses_device}
    assert on_device == {"latent", "advection", "flow", "dynamic-ot", "ot-autoencoder"}
