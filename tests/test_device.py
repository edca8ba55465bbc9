"""Tensors stay on the device they are given (checked without a GPU: see ``strict_device``).

Inside ``strict_device`` torch's default device is ``meta``: a tensor made without ``device=``
is a meta tensor, and mixing it with the real ones raises. Every torch path runs here on the
CPU, on tiny inputs: a GPU run would meet the same stray tensor on the wrong device.
"""

import numpy as np
import pytest
import torch
from conftest import strict_device

import xlatent
from xlatent import datasets, methods
from xlatent.config import LatentConfig
from xlatent.engine import LatentCore

TINY_LATENT = {"max_iters": 2, "progress": False, "device": "cpu", "prior_relax": 0.0, "tile": 16}


@pytest.fixture(scope="module")
def pair():
    case = datasets.rotation(size=32, steps=2)
    return case.first, case.last


def test_strict_device_catches_a_factory_call_without_device():
    x = torch.ones(1, 2, 3, 3)
    with strict_device(), pytest.raises(RuntimeError, match="device"):
        _ = torch.tensor([0.5]).view(-1, 1, 1, 1) * x


def test_latent_frames_build_every_tensor_on_the_model_device():
    # the fractions tensor of LatentCore._run was made on the CPU: "found at least two devices,
    # cuda:0 and cpu" on the first GPU it met
    rng = np.random.default_rng(0)
    first, last = rng.normal(size=(2, 1, 16, 16)).astype(np.float32)
    core = LatentCore(1, LatentConfig(), device="cpu", seed=0)
    fields = np.zeros((core.config.stages, 2, 16, 16), np.float32)
    with strict_device():
        frames = core.frames(first, last, fields, np.array([0.0, 0.5, 1.0]))
    assert frames.shape == (3, 1, 16, 16) and np.isfinite(frames).all()


def test_svf_fit_and_its_affine_search_run_on_the_given_device():
    rng = np.random.default_rng(1)
    a = rng.random((24, 24)).astype(np.float32)
    with strict_device():
        v = xlatent.motion.svf.fit(a, np.roll(a, 1, axis=1), iters=2, device="cpu")
        c = xlatent.motion.svf.confidence(a, np.roll(a, 1, axis=1), v, device="cpu")
    assert v.shape == (2, 24, 24) and np.isfinite(v).all() and np.isfinite(c).all()


def test_flow_runs_on_the_device_it_is_given(pair):
    assert methods.spec("flow").uses_device  # device="auto" takes a GPU when there is one
    with strict_device():
        frames, flow = xlatent.interpolate(*pair, steps=2, method="flow", device="cpu", progress=False)
    assert np.isfinite(frames.values).all() and flow.attrs["xlatent_device"] == "cpu"


@pytest.mark.parametrize("method", ["latent"])
def test_model_is_built_trained_tiled_and_rendered_on_its_device(pair, method):
    # the model was built on torch's default device and then moved: under a default device of
    # meta (or a GPU run's stray tensors) its weights were never real
    with strict_device():
        frames, _ = xlatent.interpolate(*pair, steps=2, method=method, **TINY_LATENT)
    assert np.isfinite(frames.values).all()


def test_ot_autoencoder_runs_on_its_device(pair):
    with strict_device():
        frames, _ = xlatent.interpolate(*pair, steps=2, method="ot-autoencoder", device="cpu", progress=False,
                                        ae_iters=2, ae_width=4, ae_path=3)
    assert np.isfinite(frames.values).all()


def test_forecaster_is_built_and_trained_on_its_device():
    wave = datasets.wave_equation(size=16, frames=10, seed=3)
    tiny = dict(width=4, static_channels=2, dynamic_channels=2, ode_hidden=4, train_horizon=2, batch_size=2, patch=16)
    with strict_device():
        out = wave.latentdyn.forecast(horizon=2, context=3, method="latent", device="cpu", max_iters=2,
                                      val_every=1, progress=False, **tiny)  # the validation on held-out windows too
    assert np.isfinite(out.values).all()


def test_lazy_flow_and_latent_run_on_their_device(pair):
    # dask inputs: flow's scene motion and rendering per chunk; the latent model's training on
    # windows and its rendering per chunk (its starting field: the in-memory test above)
    a, b = pair[0].chunk(16), pair[1].chunk(16)
    with strict_device():
        frames, _ = xlatent.interpolate(a, b, steps=2, method="flow", device="cpu", progress=False)
        lazy, _ = xlatent.interpolate(a, b, steps=2, method="latent", sample_patches=2, patch=16, unet_levels=2,
                                      flow_pool=2, stages=2, flow_prior=None, **TINY_LATENT)
        got = [x.compute(scheduler="synchronous") for x in (frames, lazy)]
    assert all(np.isfinite(x.values).all() for x in got)


def test_archive_model_is_fitted_and_rendered_on_its_device():
    # the windows' hypotheses (SVF and TV-L1 flow), the maps, training with its augmentation, the
    # validation against flow, and the forward pass of a pair
    from test_archive import TINY, growing

    archive = [growing(s, n=8) for s in range(2)]
    with strict_device():
        model = xlatent.fit_interpolator(archive, max_iters=2, device="cpu", seed=0,
                                         **{**TINY, "windows_per_series": 3, "eval_every": 1})
        frames, _ = xlatent.interpolate(archive[0].isel(time=1), archive[0].isel(time=4), steps=3, model=model)
    assert len(model.history["validation"]) >= 2 and np.isfinite(frames.values).all()


def test_the_weight_outside_the_trained_range_runs_on_its_device():
    # the two half-way mismatches (SVF exp maps, TV-L1 sub-steps) of an out-of-range pair
    from test_archive import growing

    from xlatent.archive import windows
    from xlatent.backends import InMemory

    series = growing(0, n=8)
    pair = InMemory().prepare(series.isel(time=0), series.isel(time=5), "x", "y")
    hyp = windows.hypotheses(pair, [0.5], "cpu")
    with strict_device():
        weight = windows.outside_weight(pair.first, pair.last, pair.mask, hyp["v"], hyp["alt_v"], "cpu")
    assert np.isfinite(weight) and 0 <= weight <= 1
