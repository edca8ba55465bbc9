"""Forecasting (issue 15): errors before training, output shape/time/CRS, S invariance, save/load."""

import numpy as np
import pytest
import xarray as xr

import xlatent
from xlatent.datasets import wave_equation
from xlatent.exceptions import (
    ConfigError,
    InputError,
    IrregularTimeError,
    SeriesTooShortError,
)

# a model small enough to train in seconds on a shared CPU
TINY = dict(width=8, static_channels=4, dynamic_channels=4, ode_hidden=8, train_horizon=3, batch_size=2,
            patch=16, progress=False)


@pytest.fixture(scope="module")
def wave():
    return wave_equation(size=16, frames=24, seed=3)


@pytest.fixture(scope="module")
def tiny(wave):
    return xlatent.fit_forecaster(wave, context=3, max_iters=4, seed=0, **TINY)


@pytest.fixture()
def one_thread():
    """One torch thread for a training test: on the shared 2-core machine two threads made the same
    60 steps 13x slower (61.5 s against 4.7 s, load ~7, measured), one thread waiting on the other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def no_training(monkeypatch):
    """Fail the test if any training step starts."""
    import xlatent.train

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the inputs were checked")

    monkeypatch.setattr(xlatent.train, "optimise", refuse)


@pytest.mark.parametrize("method", ["latent", "flow", "persistence"])
def test_irregular_time_step_is_a_named_error(wave, method, no_training):
    times = wave.time.values.copy()
    times[5:] += np.timedelta64(1, "ms")
    with pytest.raises(IrregularTimeError, match="regular"):
        wave.assign_coords(time=times).latentdyn.forecast(horizon=2, context=3, method=method)


def test_series_shorter_than_context_plus_one(wave, no_training):
    with pytest.raises(SeriesTooShortError, match="at least 5"):
        wave.isel(time=slice(0, 4)).latentdyn.forecast(horizon=2, context=4)


@pytest.mark.parametrize("horizon", [0, -1, 1.5])
def test_bad_horizon(wave, horizon, no_training):
    with pytest.raises(ConfigError, match="horizon"):
        wave.latentdyn.forecast(horizon=horizon, context=3)


def test_all_nan_frame(wave, no_training):
    values = wave.values.copy()
    values[7] = np.nan
    with pytest.raises(InputError, match=r"all NaN.*\[7\]"):
        wave.copy(data=values).latentdyn.forecast(horizon=2, context=3)


def test_frame_of_declared_fill_values_is_empty(wave, no_training):
    values = wave.values.copy()
    values[7] = -999.0
    with pytest.raises(InputError, match=r"all NaN.*\[7\]"):
        wave.copy(data=values).assign_attrs(_FillValue=-999.0).latentdyn.forecast(horizon=2, context=3)


def test_lazy_series_with_an_empty_frame(wave, no_training):
    pytest.importorskip("dask")
    values = wave.values.copy()
    values[5] = np.nan
    with pytest.raises(InputError, match=r"all NaN.*\[5\]"):
        wave.copy(data=values).chunk({"time": 4}).latentdyn.forecast(horizon=2, context=3)


def test_cftime_and_numeric_times_are_forecast_in_their_own_kind(wave):
    """Forecasting needs only the order and the step, so it takes what interpolation refuses."""
    cftime = pytest.importorskip("cftime")
    days = [cftime.DatetimeNoLeap(2001, 2, 20 + i // 24, i % 24) for i in range(wave.sizes["time"])]
    out = wave.assign_coords(time=days).latentdyn.forecast(horizon=2, context=3, method="persistence")
    assert list(out.time.values) == [cftime.DatetimeNoLeap(2001, 2, 21, 0), cftime.DatetimeNoLeap(2001, 2, 21, 1)]
    steps = wave.assign_coords(time=np.arange(wave.sizes["time"]) * 2.5)
    out = steps.latentdyn.forecast(horizon=2, context=3, method="persistence")
    np.testing.assert_allclose(out.time.values, [60.0, 62.5])
    np.testing.assert_array_equal(out.isel(time=0).values, wave.isel(time=-1).values)
    backwards = steps.isel(time=slice(None, None, -1))
    with pytest.raises(InputError, match="strictly increase"):
        backwards.latentdyn.forecast(horizon=2, context=3, method="persistence")


def test_unknown_option_and_method(wave, no_training):
    with pytest.raises(ConfigError, match="nonsense"):
        wave.latentdyn.forecast(horizon=2, context=3, nonsense=1)
    with pytest.raises(ConfigError, match="latent"):
        wave.latentdyn.forecast(horizon=2, context=3, method="persistence", max_iters=3)
    with pytest.raises(ConfigError, match="method"):
        wave.latentdyn.forecast(horizon=2, context=3, method="magic")


def _check_like(out, series, horizon):
    step = series.time.values[1] - series.time.values[0]
    assert out.dims == series.dims
    assert out.sizes["time"] == horizon
    assert out.shape[1:] == series.shape[1:]
    np.testing.assert_array_equal(out.time.values, series.time.values[-1] + step * np.arange(1, horizon + 1))
    np.testing.assert_array_equal(out.lead_time.values, step * np.arange(1, horizon + 1))
    assert out.rio.crs == series.rio.crs
    assert out.encoding.get("grid_mapping") == "spatial_ref"
    np.testing.assert_array_equal(out.x.values, series.x.values)
    assert out.attrs["long_name"] == series.attrs["long_name"]
    assert out.attrs["history"].count("\n") == series.attrs.get("history", "x").count("\n") + ("history" in series.attrs)


@pytest.mark.parametrize("method", ["flow", "persistence"])
def test_baselines_shape_time_crs(wave, method):
    series = wave.assign_attrs(history="made by hand")
    out = series.latentdyn.forecast(horizon=5, context=3, method=method, progress=False)
    _check_like(out, series, 5)
    assert out.attrs["history"].startswith("made by hand\n")
    assert f"method='{method}'" in out.attrs["history"]
    if method == "persistence":
        np.testing.assert_array_equal(out.values, np.repeat(wave.values[-1:], 5, axis=0))
    assert series.attrs["history"] == "made by hand"  # the input is not touched


def test_flow_extrapolates_a_moving_blob():
    yy, xx = np.mgrid[0:32, 0:32].astype(float)
    frames = np.stack([np.exp(-((xx - 8 - 2 * k) ** 2 + (yy - 16) ** 2) / 18) for k in range(8)]).astype("float32")
    da = xr.DataArray(frames, dims=("time", "y", "x"),
                      coords={"time": np.datetime64("2024-01-01") + np.arange(8) * np.timedelta64(5, "m")})
    truth = np.stack([np.exp(-((xx - 8 - 2 * k) ** 2 + (yy - 16) ** 2) / 18) for k in range(6, 9)])
    flow = da.isel(time=slice(0, 6)).latentdyn.forecast(horizon=3, context=2, method="flow", progress=False)
    pers = da.isel(time=slice(0, 6)).latentdyn.forecast(horizon=3, context=2, method="persistence")
    err_flow = np.abs(flow.values - truth).mean(axis=(1, 2))
    err_pers = np.abs(pers.values - truth).mean(axis=(1, 2))
    assert np.all(err_flow < 0.3 * err_pers), (err_flow, err_pers)


def test_latent_shape_time_crs_and_channels(wave):
    out = wave.latentdyn.forecast(horizon=4, context=3, max_iters=2, seed=0, **TINY)
    _check_like(out, wave, 4)
    assert out.attrs["xlatent_method"] == "latent"
    assert out.attrs["xlatent_training"].startswith("2 steps in "), out.attrs["xlatent_training"]
    assert np.isfinite(out.values).all()
    both = xr.concat([wave, 2 * wave], dim="band").transpose("time", "band", "y", "x")
    out2 = both.latentdyn.forecast(horizon=2, context=3, max_iters=2, seed=0, **TINY)
    assert out2.dims == ("time", "band", "y", "x") and out2.sizes["band"] == 2


def test_seed_reproducible(wave, tiny):
    again = xlatent.fit_forecaster(wave, context=3, max_iters=4, seed=0, **TINY)
    window = wave.isel(time=slice(-3, None))
    np.testing.assert_array_equal(tiny.forecast(window, 3).values, again.forecast(window, 3).values)


def test_save_load_same_forecast(tiny, wave, tmp_path):
    path = tiny.save(tmp_path / "f.pt")
    back = xlatent.load_forecaster(path)
    window = wave.isel(time=slice(5, 9))
    a, b = tiny.forecast(window, 4), back.forecast(window, 4)
    # same weights; float32 sums may round differently by one ulp when another test has changed
    # torch's process-wide thread count (measured: 3e-8 on one cell of 1024 in a full run)
    np.testing.assert_allclose(a.values, b.values, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(a.time.values, b.time.values)
    assert back.config == tiny.config and back.context == tiny.context


def test_window_at_another_step_is_refused(tiny, wave):
    coarse = wave.isel(time=slice(0, 12, 2))
    with pytest.raises(IrregularTimeError, match="fitted at"):
        tiny.forecast(coarse, 2)


def test_load_rejects_foreign_file(tmp_path):
    import torch

    from xlatent.exceptions import ModelFileError

    torch.save({"meta": "{}", "state_dict": {}}, tmp_path / "x.pt")
    with pytest.raises(ModelFileError):
        xlatent.load_forecaster(tmp_path / "x.pt")


def _relative_change(a, b):
    return float(np.sum((a - b) ** 2) / np.sum(a**2 + b**2))


def test_static_code_nearly_invariant_within_a_sequence(one_thread):
    """After a short training, S moves much less than the frames between two distant windows of
    one sequence, and less than with the invariance loss switched off (lambda_s=0, same seed and
    steps). Measured on this setup: S 0.062, S without the loss 0.101, frames 0.161."""
    w = wave_equation(size=16, frames=50, seed=1)
    opts = dict(context=3, max_iters=30, seed=0, **TINY)
    with_s = xlatent.fit_forecaster(w.isel(time=slice(20, 50)), **opts)
    without = xlatent.fit_forecaster(w.isel(time=slice(20, 50)), lambda_s=0.0, **opts)
    a, b = w.isel(time=slice(30, 33)), w.isel(time=slice(44, 47))
    change_frames = _relative_change(a.values, b.values)
    change_s = _relative_change(with_s.codes(a)[0], with_s.codes(b)[0])
    change_free = _relative_change(without.codes(a)[0], without.codes(b)[0])
    assert change_s < 0.5 * change_frames, (change_s, change_frames)
    assert change_s < 0.75 * change_free, (change_s, change_free)


def test_no_static_ablation_has_no_code(wave):
    f = xlatent.fit_forecaster(wave, context=3, max_iters=2, static=False, **TINY)
    s, t = f.codes(wave)
    assert s is None and t.shape[0] == TINY["static_channels"] + TINY["dynamic_channels"]


def _t_plus_5(f, series, context):
    """MSE at t+5 of the latent forecast and of persistence, from windows spread over ``series``."""
    lat, per = [], []
    for t0 in range(context + 6, series.sizes["time"] - 5, 4):
        truth = series.isel(time=t0 + 4).values
        lat.append(np.mean((f.forecast(series.isel(time=slice(t0 - context, t0)), 5).values[4] - truth) ** 2))
        per.append(np.mean((series.isel(time=t0 - 1).values - truth) ** 2))
    return float(np.mean(lat)), float(np.mean(per))


WAVE_RUN = dict(width=8, static_channels=4, dynamic_channels=4, ode_hidden=16, train_horizon=6, batch_size=4,
                patch=16, stride=4, lr=2e-3, progress=False)


def test_wave_training_beats_persistence_at_t_plus_5(one_thread):
    """60 steps on three 16² sequences (waves cross ~3.5 cells in 5 frames: persistence is poor at
    t+5), scored on a held-out sequence. Measured: MSE ratio latent/persistence 0.38-0.48 over model
    seeds 0-2 and context 3-4, 0.50-0.55 after 40 steps, 0.61 at the paper's lr 4e-4, 3.0 untrained
    (lr ~0 or one step: the decoder gives the training mean); 1.3-8 s on the loaded 2-core machine.
    lr 2e-3 suits this small model only: the default-size model at 32² stalled with it (ratio 4.3
    after 150 steps, 0.56 at 4e-4). The benchmark's setting is in benchmarks/RESULTS.md 27 and 29."""
    train = [wave_equation(16, 40, seed=100 + i) for i in range(3)]
    test = wave_equation(16, 40, seed=900)
    f = xlatent.fit_forecaster(train, context=3, max_iters=60, seed=0, **WAVE_RUN)
    lat, per = _t_plus_5(f, test, 3)
    assert lat < 0.7 * per, (lat, per)


def test_wave_equation_without_rioxarray_imported():
    """The generator registers ``.rio`` itself (it raised AttributeError in a fresh process)."""
    import subprocess
    import sys

    code = "from xlatent.datasets import wave_equation; print(wave_equation(8, 2).rio.crs)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "3413" in done.stdout, done.stderr[-500:]


def test_validation_stops_and_keeps_the_best_weights(one_thread):
    """The last ``validation`` windows are held out, scored every ``val_every`` steps; training
    stops after ``val_patience`` evaluations without improvement and the best weights are put back:
    the model's error on the held-out windows is the best recorded one."""
    import torch

    from xlatent.model.forecast import prediction_error

    w = wave_equation(size=16, frames=20, seed=2)
    f = xlatent.fit_forecaster(w, context=3, max_iters=40, seed=0, validation=2, val_every=2, val_patience=2,
                               lr=5e-2, **TINY)  # a rate this high overshoots: the plateau comes early
    h = f.history
    assert len(h["validation"]) == len(h["validation_step"]) >= 2
    assert h["best_step"] == [h["validation_step"][int(np.argmin(h["validation"]))]]
    assert "validation plateau" in h["stopped"] or h["stopped"].startswith("max_iters")
    assert len(h["loss"]) == 40 or "validation plateau" in h["stopped"]
    # the restored weights give the best recorded error on the held-out windows
    values = ((w.values - f._mean[0]) / f._std[0]).astype(np.float32)
    length = 3 + 3  # context + train_horizon
    frames = torch.stack([torch.from_numpy(values[t : t + length, None]) for t in (len(values) - length - 1,
                                                                                    len(values) - length)])
    with torch.no_grad():
        err = float(prediction_error(f._model, frames, torch.ones_like(frames[:, :, :1])))
    assert err == pytest.approx(min(h["validation"]), rel=1e-4)


def test_validation_zero_trains_every_window_for_max_iters(wave):
    f = xlatent.fit_forecaster(wave, context=3, max_iters=3, validation=0, **TINY)
    assert "validation" not in f.history and f.history["stopped"] == "max_iters (3)"
