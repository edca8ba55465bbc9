"""Fitted object, save/load, NetCDF round trip, tiling, seeds, the training smoke test."""

import numpy as np
import pytest
import torch
import xarray as xr
from conftest import LATENT, QUICK

import xlatent
import xlatent.train
from xlatent import datasets, modelfile
from xlatent.config import LatentConfig, ModelConfig, RunOptions, TrainConfig
from xlatent.engine import LatentCore
from xlatent.exceptions import ConfigError, ModelFileError


def test_fit_frames_flow_history(rotation_case):
    model = xlatent.fit(rotation_case.first, rotation_case.last, **QUICK)
    assert len(model.history["loss"]) == QUICK["max_iters"]
    assert model.frames(3, progress=False).sizes["time"] == 4
    assert model.flow(progress=False).sizes["time"] == model.config.stages


@pytest.mark.parametrize("choice", ["objective", "prior"])
def test_fit_renders_with_the_motion_interpolate_chooses(rotation_case, choice):
    """``fit(...).frames()``/``.flow()`` apply the same choice between the trained motion and the
    starting field as ``interpolate`` (same seed: same frames, same decision) and the flow
    carries the confidence map."""
    a, b = rotation_case.first, rotation_case.last
    opts = dict(steps=2, seed=3, motion_choice=choice, **LATENT)
    frames, flow = xlatent.interpolate(a, b, **opts)
    model = xlatent.fit(a, b, seed=3, motion_choice=choice, **QUICK)
    got, got_flow = model.frames(2, progress=False), model.flow(progress=False)
    np.testing.assert_allclose(got, frames, atol=1e-5)
    np.testing.assert_allclose(got_flow.u, flow.u, rtol=1e-5, atol=1e-9)
    assert got.attrs["xlatent_motion_choice"] == frames.attrs["xlatent_motion_choice"]
    assert got_flow.attrs["xlatent_motion_choice"] == flow.attrs["xlatent_motion_choice"]
    np.testing.assert_allclose(got_flow["confidence"], flow["confidence"], atol=1e-6)


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


def test_config_parts_are_frozen_and_cover_every_field():
    cfg = LatentConfig(max_iters=7, tile=64, stages=3)
    model, train, run = cfg.model_part(), cfg.train_part(), cfg.run_part()
    names = [*model.to_dict(), *train.to_dict(), *run.to_dict()]
    assert sorted(names) == sorted(cfg.to_dict())
    assert (model.stages, train.max_iters, run.tile) == (3, 7, 64)
    with pytest.raises(AttributeError):  # dataclasses.FrozenInstanceError
        model.stages = 4
    assert LatentConfig.from_parts(model, train, run) == cfg
    with pytest.raises(ConfigError, match="tile"):
        RunOptions(tile=0)
    with pytest.raises(ConfigError, match="stages"):
        ModelConfig(stages=0)
    with pytest.raises(ConfigError, match="Unknown TrainConfig"):
        TrainConfig.from_dict({"tile": 3})


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, rotation_case):
    """A fitted model with non-trivial weights (the outputs start at zero), saved; it renders with
    its trained motion (``motion_choice="trained"``), so the network runs at every render."""
    model = xlatent.fit(rotation_case.first, rotation_case.last, motion_choice="trained", **QUICK)
    torch.manual_seed(0)
    for p in model._core.model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model, model.save(tmp_path_factory.mktemp("model") / "model.pt")


def test_load_with_another_tile_and_bfloat16(saved_model, rotation_case):
    model, path = saved_model
    pair = (rotation_case.first, rotation_case.last)
    whole = xlatent.load(path).frames(2, *pair, progress=False).values
    np.testing.assert_allclose(whole, model.frames(2, progress=False).values, atol=1e-5)
    tiled_model = xlatent.load(path, tile=16)
    assert tiled_model.run_options.tile == 16 and tiled_model.config.model_part() == model.config.model_part()
    tiled = tiled_model.frames(2, *pair, progress=False).values
    assert np.abs(tiled - whole).mean() < 1e-5  # as tiled = untiled (float32 conv algorithms differ by size)
    np.testing.assert_allclose(tiled, whole, atol=1e-3)
    bf16_model = xlatent.load(path, inference_dtype="bfloat16")
    assert bf16_model.run_options.inference_dtype == "bfloat16"
    bf16 = bf16_model.frames(2, *pair, progress=False).values
    spread = float(np.nanstd(whole))
    assert not np.array_equal(bf16, whole)  # it did run in bfloat16
    np.testing.assert_allclose(bf16, whole, atol=0.05 * spread)


def test_load_reads_format_version_1(saved_model, rotation_case, tmp_path):
    """Files written before the configuration was split (one flat ``config``) still load."""
    model, path = saved_model
    meta, tensors = modelfile.read(path, "xlatent-latent-model", 2, "model", "save")
    flat = {**meta["model"], **meta["train"], **meta["run"]}
    old = {"format": meta["format"], "format_version": 1, "channels": meta["channels"], "config": flat,
           "mean": meta["mean"], "std": meta["std"], "dims": meta["dims"]}
    modelfile.write(tmp_path / "v1.pt", old, tensors)
    loaded = xlatent.load(tmp_path / "v1.pt", tile=16)
    assert loaded.config == LatentConfig.from_dict({**flat, "tile": 16})
    pair = (rotation_case.first, rotation_case.last)
    np.testing.assert_allclose(loaded.frames(2, *pair, progress=False), model.frames(2, progress=False), atol=1e-3)


@pytest.mark.parametrize("options", [{"tile": 0}, {"tile": 2.5}, {"inference_dtype": "float16"}])
def test_bad_run_option_at_load_fails_before_reading(tmp_path, options):
    with pytest.raises(ConfigError, match=next(iter(options))):
        xlatent.load(tmp_path / "missing.pt", **options)  # ConfigError, not "No model file"
    with pytest.raises(ConfigError):
        xlatent.LatentInterpolator.load(tmp_path / "missing.pt", **options)


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
    a, fa = xlatent.interpolate(rotation_case.first, rotation_case.last, steps=2, seed=3, **LATENT)
    b, fb = xlatent.interpolate(rotation_case.first, rotation_case.last, steps=2, seed=3, **LATENT)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(fa.u.values, fb.u.values)


def _frame_error(frames, case):
    """Mean squared error of the in-between frames against the truth."""
    return float(np.mean((np.asarray(frames)[1:-1] - case.frames.values[1:-1]) ** 2))


def _linear_error(case):
    t = case.frames.interp_fraction.values[:, None, None]
    return _frame_error((1 - t) * case.first.values + t * case.last.values, case)


def test_training_recovers_motion_and_beats_linear(translation_case):
    """With no starting field the model starts at zero motion: whatever it finds, training found."""
    case = translation_case
    fit = {"flow_prior": None, "progress": False}
    start = xlatent.fit(case.first, case.last, max_iters=1, **fit)
    model = xlatent.fit(case.first, case.last, max_iters=60, **fit)
    steps = case.frames.sizes["time"] - 1
    err_start = _frame_error(start.frames(steps, progress=False), case)
    err_latent = _frame_error(model.frames(steps, progress=False), case)
    err_linear = _linear_error(case)
    assert err_start > 0.9 * err_linear  # the start is a fade: no motion yet
    assert err_latent < 0.5 * err_linear  # measured ratio 0.23, 0.31, 0.14 (seeds 0-2)
    terminal = np.array(model.history["terminal"])
    assert terminal[-10:].mean() < 0.5 * terminal[:10].mean()  # measured 3.5 -> 0.4
    flow = model.flow(progress=False)
    true_dir = np.array([float(case.flow.u.mean()), float(case.flow.v.mean())])
    got = np.array([float(flow.u.mean()), float(flow.v.mean())])
    cos = got @ true_dir / np.linalg.norm(got) / np.linalg.norm(true_dir)
    assert cos > 0.95


def test_training_moves_off_the_starting_field(translation_case):
    """With the default starting field, training still changes the weights and lowers the loss
    (rendered with the trained motion: the default choice may keep the starting field)."""
    case = translation_case
    start = xlatent.fit(case.first, case.last, max_iters=1, progress=False, motion_choice="trained")
    model = xlatent.fit(case.first, case.last, max_iters=30, progress=False, motion_choice="trained")
    loss = np.array(model.history["loss"])
    assert loss[-5:].mean() < 0.7 * loss[:5].mean()  # measured 0.23 -> 0.10-0.11 (seeds 0, 1)
    a, b = start.frames(2, progress=False), model.frames(2, progress=False)
    assert float(np.abs(a[1] - b[1]).max()) > 1e-3
    assert _frame_error(model.frames(6, progress=False), case) < 0.5 * _linear_error(case)


def test_time_budget_and_patch_by_dim_name(monkeypatch):
    """Non-square patches keyed by dim name on a non-square image reach the sampler per axis."""
    case = datasets.translation(size=96, steps=2)
    first, last = (da.isel(y=slice(0, 64)) for da in (case.first, case.last))  # 64 rows x 96 columns
    seen = {"origins": [], "batches": set()}
    origins, total_loss = xlatent.train.patch_origins, xlatent.train.total_loss

    def record_origins(shape, patch, stride):
        seen["origins"].append((tuple(shape), tuple(patch), tuple(stride)))
        return origins(shape, patch, stride)

    def record_loss(model, first, *args, **kwargs):
        seen["batches"].add(tuple(first.shape[-2:]))
        return total_loss(model, first, *args, **kwargs)

    monkeypatch.setattr(xlatent.train, "patch_origins", record_origins)
    monkeypatch.setattr(xlatent.train, "total_loss", record_loss)
    model = xlatent.fit(first, last, max_iters=10_000, time_budget=1.0, patch={"x": 48, "y": 32},
                        stride={"x": 16, "y": 8}, progress=False)
    assert seen["origins"] == [((64, 96), (32, 48), (8, 16))]
    assert seen["batches"] == {(32, 48)}  # rows x columns of every training batch
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
