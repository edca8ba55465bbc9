"""Fitted object, save/load, NetCDF round trip, tiling, seeds, the training smoke test."""

import numpy as np
import pytest
import torch
import xarray as xr

import xlatent
from xlatent.config import LatentConfig
from xlatent.exceptions import ModelFileError
from xlatent.methods.latent import LatentCore

from conftest import QUICK


def test_fit_frames_flow_history(rotation_case):
    model = xlatent.fit(rotation_case.first, rotation_case.last, **QUICK)
    assert len(model.history["loss"]) == QUICK["max_iters"]
    assert model.frames(3, progress=False).sizes["time"] == 4
    assert model.flow(progress=False).sizes["time"] == model.config.stages


def test_save_load_round_trip(tmp_path, rotation_case):
    model = xlatent.fit(rotation_case.first, rotation_case.last, **QUICK)
    path = model.save(tmp_path / "model.pt")
    loaded = xlatent.load(path)
    assert loaded.config == model.config
    with pytest.raises(xlatent.XlatentError, match="first= and last="):
        loaded.frames(2)
    a = model.frames(2, progress=False)
    b = loaded.frames(2, rotation_case.first, rotation_case.last, progress=False)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"meta": "{}", "state_dict": {}}, bad)
    with pytest.raises(ModelFileError):
        xlatent.load(bad)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ModelFileError):
        xlatent.load(tmp_path / "junk.pt")
    with pytest.raises(ModelFileError, match="No model file"):
        xlatent.load(tmp_path / "missing.pt")


def test_netcdf_round_trip_keeps_crs_time_units(tmp_path, quick_result, rotation_case):
    frames, flow = quick_result
    frames.to_netcdf(tmp_path / "frames.nc")
    flow.to_netcdf(tmp_path / "flow.nc")
    f2 = xr.open_dataarray(tmp_path / "frames.nc", decode_coords="all")
    w2 = xr.open_dataset(tmp_path / "flow.nc", decode_coords="all")
    assert f2.rio.crs == rotation_case.first.rio.crs
    assert w2.u.rio.crs == rotation_case.first.rio.crs and w2.v.rio.crs == w2.u.rio.crs
    np.testing.assert_array_equal(f2.time.values, frames.time.values)
    assert np.issubdtype(f2.time.dtype, np.datetime64)
    assert w2.u.attrs["units"] == "m s-1"
    np.testing.assert_allclose(f2.interp_fraction, frames.interp_fraction)


def test_tiled_equals_untiled():
    rng = np.random.default_rng(1)
    first = rng.normal(size=(1, 100, 84)).astype("float32")
    last = np.roll(first, 2, axis=2)
    cfg = LatentConfig(stages=2)
    torch.manual_seed(0)
    core = LatentCore(1, cfg, "cpu")
    for p in core.model.parameters():  # non-trivial weights everywhere (outputs start at zero)
        torch.nn.init.normal_(p, std=0.05)
    fractions = np.array([0.0, 0.5, 1.0])
    whole_fields = core.fields(first, last)
    whole = core.frames(first, last, whole_fields, fractions)
    core.config.tile = 32
    tiled_fields = core.fields(first, last)
    tiled = core.frames(first, last, tiled_fields, fractions)
    assert np.abs(whole_fields).max() > 0.1
    np.testing.assert_allclose(tiled_fields, whole_fields, atol=1e-4)
    np.testing.assert_allclose(tiled, whole, atol=1e-3)  # float32 conv algorithms differ by size
    assert np.abs(tiled - whole).mean() < 1e-5


def test_same_seed_same_result(rotation_case):
    a, fa = xlatent.interpolate(rotation_case.first, rotation_case.last, steps=2, seed=3, **QUICK)
    b, fb = xlatent.interpolate(rotation_case.first, rotation_case.last, steps=2, seed=3, **QUICK)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(fa.u.values, fb.u.values)


def test_training_recovers_motion_and_beats_linear(translation_case):
    case = translation_case
    frames, flow = xlatent.interpolate(case.first, case.last, steps=6, max_iters=60, progress=False)
    truth = case.frames.values[1:-1]
    lin = np.stack([(1 - t) * case.first.values + t * case.last.values for t in np.arange(1, 6) / 6])
    err_latent = np.mean((frames.values[1:-1] - truth) ** 2)
    err_linear = np.mean((lin - truth) ** 2)
    assert err_latent < 0.5 * err_linear
    true_dir = np.array([float(case.flow.u.mean()), float(case.flow.v.mean())])
    got = np.array([float(flow.u.mean()), float(flow.v.mean())])
    cos = got @ true_dir / np.linalg.norm(got) / np.linalg.norm(true_dir)
    assert cos > 0.95


def test_time_budget_and_patch_by_dim_name(rotation_case):
    model = xlatent.fit(rotation_case.first, rotation_case.last, max_iters=10_000, time_budget=1.0,
                        patch={"y": 32, "x": 48}, stride={"y": 8, "x": 8}, progress=False)
    assert model.history["stopped"].startswith("time budget")
    assert len(model.history["loss"]) < 10_000
    assert model.history["seconds"] < 10


def test_accessor_fit_matches_function(rotation_case):
    a = rotation_case.first.latentdyn.fit(rotation_case.last, seed=1, **QUICK)
    b = xlatent.fit(rotation_case.first, rotation_case.last, seed=1, **QUICK)
    np.testing.assert_array_equal(a.flow(progress=False).u.values, b.flow(progress=False).u.values)


@pytest.mark.parametrize("blend", ["transport", "symmetric", "residual"])
def test_blends_keep_exact_endpoints(rotation_case, blend):
    model = xlatent.fit(rotation_case.first, rotation_case.last, **QUICK)
    frames = model.frames(2, blend=blend, progress=False)
    np.testing.assert_allclose(frames[0], rotation_case.first, atol=1e-4)
    np.testing.assert_allclose(frames[-1], rotation_case.last, atol=1e-4)


def test_unknown_blend_is_rejected(rotation_case):
    model = xlatent.fit(rotation_case.first, rotation_case.last, **QUICK)
    with pytest.raises(ValueError, match="blend"):
        model.frames(2, blend="magic", progress=False)
