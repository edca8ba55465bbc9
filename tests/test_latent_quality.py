"""The latent model as a stationary velocity: starts from the SVF, is not bent off a right motion,
and decides between its trained motion and its starting field from the two inputs only."""

import numpy as np
import pytest
import torch

import xlatent
from xlatent import datasets
from xlatent.config import LatentConfig
from xlatent.engine import LatentCore
from xlatent.model.integrate import exp_field, warp
from xlatent.model.latent_advection import LatentAdvection

N = 48
QUICK = {"max_iters": 12, "patch": 32, "stride": 16, "batch_size": 2, "progress": False}


def _rotation(n: int, radians: float) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(n, dtype=torch.float32), torch.arange(n, dtype=torch.float32), indexing="ij")
    c = (n - 1) / 2
    return torch.stack((-(rows - c) * radians, (cols - c) * radians))[None]


def test_stationary_paths_are_exp_and_inverse():
    """Frames follow exp(-t v) forward and exp((1 - t) v) carried back: carrying a quantity back
    over the whole interval and rolling it forward again gives it back (inverse maps)."""
    model = LatentAdvection(1, LatentConfig(codec="identity", latent_channels=0, stages=4))
    v = _rotation(N, np.deg2rad(30))
    fields = v[:, None].expand(1, 4, 2, N, N)
    x = torch.linspace(0, 1, N).view(1, 1, 1, N).expand(1, 1, N, N).contiguous()
    (ahead,) = model.roll(x, fields, (0.4,))
    torch.testing.assert_close(ahead, warp(x, exp_field(v, -0.4)))
    (back,) = model.carry_back(ahead, fields, (0.0,))
    (fwd,) = model.roll(back, fields, (1.0,))
    inner = (..., slice(12, -12), slice(12, -12))
    assert (fwd - ahead)[inner].abs().max() < 0.02


def test_f_starts_at_the_prior_and_outputs_one_field():
    cfg = LatentConfig(stages=4)
    assert cfg.stationary and cfg.flow_prior == "svf"
    model = LatentAdvection(1, cfg)
    prior = torch.randn(2, 2, 32, 32)
    fields = model.fields(torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32), prior)
    assert fields.shape == (2, 4, 2, 32, 32)
    torch.testing.assert_close(fields, prior[:, None].expand_as(fields))


def test_configs_saved_before_keep_per_stage_fields():
    old = LatentConfig().to_dict()
    del old["stationary"]
    assert LatentConfig.from_dict(old).stationary is False
    assert LatentConfig.from_dict(LatentConfig().to_dict()).stationary is True


def _core_and_pair(name: str, n: int = 64):
    case = datasets.load(name, size=n, steps=2)
    a, b = (np.asarray(x.values, np.float32)[None] for x in (case.first, case.last))
    mean, std = np.array([a.mean()], np.float32), np.array([a.std()], np.float32)
    core = LatentCore(1, LatentConfig(), "cpu", 0, mean, std)
    return core, (a - mean[0]) / std[0], (b - mean[0]) / std[0], case


def test_choice_keeps_the_starting_field_when_training_bends_it():
    """The SVF objective of the two inputs decides: a trained field bent off an exact prior
    loses; a trained field that fixes a wrong prior wins."""
    core, a, b, _ = _core_and_pair("rotation20")
    prior = core.prior(a, b)
    mask = np.ones(a.shape[-2:], np.float32)
    bent = prior + np.float32(1.5) * np.sin(np.arange(64, dtype=np.float32) / 4)[None, None, :]
    fields = np.broadcast_to(bent[None], (8, 2, 64, 64))
    chosen, info = core.choose(a, b, mask, prior, fields)
    assert info["motion_choice"] == "prior" and info["objective_prior"] < info["objective_trained"]
    np.testing.assert_array_equal(chosen[3], prior)
    chosen, info = core.choose(a, b, mask, bent, np.broadcast_to(prior[None], (8, 2, 64, 64)))
    assert info["motion_choice"] == "trained"
    np.testing.assert_array_equal(chosen[0], prior)


def test_shear_stays_right_and_choice_is_recorded():
    """Issue 12: training bent a nearly exact shear (error 0.004 -> 0.28 cells per step). The
    default latent method now keeps flow's motion error on the shear and records its choice."""
    case = datasets.load("shear", size=64, steps=4)
    frames, flow = xlatent.interpolate(case.first, case.last, steps=4, method="latent", **QUICK)
    _, ref = xlatent.interpolate(case.first, case.last, steps=4, method="flow", progress=False)

    def epe(f):
        return float(np.nanmean(np.hypot(f.u.mean("time") - case.flow.u.mean("time"),
                                         f.v.mean("time") - case.flow.v.mean("time"))))

    assert epe(flow) <= epe(ref) * 1.2 + 1e-3
    assert frames.attrs["xlatent_motion_choice"] in ("prior", "trained")
    assert {"xlatent_objective_prior", "xlatent_objective_trained", "xlatent_svf_weight"} <= set(frames.attrs)


@pytest.mark.parametrize("name, size, relaxed", [("vortex", 128, True), ("translation", 64, False)])
def test_prior_relaxes_the_stiffness_only_when_the_match_gains(name, size, relaxed):
    """The vortex's stiff fit misses its turn (the data term falls by half at a 3x lower weight);
    a translation gains nothing and keeps the default weight."""
    core, a, b, _ = _core_and_pair(name, size)
    core.prior(a, b)
    assert (core.prior_weight < 1000.0) is relaxed
    assert len(core.prior_data) >= 2


def test_confidence_is_low_where_the_motion_is_not_pinned():
    """High on texture matched by the right motion; low where the images are flat (nothing
    pins the motion), where the motion is wrong, and zero where paths leave the grid."""
    from xlatent.motion.svf import confidence

    case = datasets.load("translation", size=64, steps=2)
    a, b = (np.asarray(x.values, np.float32) for x in (case.first, case.last))
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    a, b = (a - lo) / (hi - lo), (b - lo) / (hi - lo)
    shift = np.zeros((2, 64, 64), np.float32)
    shift[0], shift[1] = 5.0, -3.0  # the case's motion: 5 cells east, 3 north (rows grow southward)
    right = confidence(a, b, shift)
    assert right.shape == (64, 64) and right.min() >= 0 and right.max() <= 1
    assert np.median(right[10:-10, 10:-10]) > 0.7
    assert np.median(confidence(a, b, -shift)[10:-10, 10:-10]) < 0.3
    assert right[:, -2:].max() == 0  # paths leave the grid
    flat_a, flat_b = a.copy(), b.copy()
    flat_a[:, :32] = flat_b[:, :32] = 0.5
    flat = confidence(flat_a, flat_b, shift)
    assert np.median(flat[10:-10, 10:26]) < 0.1 < np.median(flat[10:-10, 40:54])


def test_svf_prior_ignores_edge_padding():
    """The lazy path pads the scene's borders by repeating the edge (chunks with context): the
    global SVF fit saw streaks there and returned up to 15-cell motions on a 5-cell translation.
    Repeated borders are now left out of the fit and the field extended over them."""
    core, a, b, _ = _core_and_pair("translation", 64)
    pad = ((0, 0), (24, 16), (8, 32))
    padded = core.prior(np.pad(a, pad, mode="edge"), np.pad(b, pad, mode="edge"))
    np.testing.assert_allclose(padded[:, 24:-16, 8:-32], core.prior(a, b), atol=1e-4)
    assert np.abs(padded).max() < 6.0


@pytest.mark.parametrize("method", ["latent", "flow"])
def test_flow_dataset_carries_the_confidence_and_it_ranks_the_error(method):
    """The per-cell confidence of the motion is a CF-described variable of the flow Dataset
    (units "1", valid_range [0, 1], on the grid with its CRS), and the motion's error is larger
    where it is low (rank correlation on a vortex with the true velocity)."""
    from scipy.stats import spearmanr

    case = datasets.analytic("vortex", size=64)
    options = {"max_iters": 5} if method == "latent" else {}
    _, flow = case.first.latentdyn.interpolate(case.last, steps=4, progress=False, method=method, **options)
    conf = flow.confidence
    assert conf.dims == ("y", "x") and conf.attrs["units"] == "1"
    assert list(conf.attrs["valid_range"]) == [0.0, 1.0] and "grid_mapping" in conf.encoding | conf.attrs
    values = conf.values
    assert np.nanmin(values) >= 0 and np.nanmax(values) <= 1
    err = np.hypot(flow.u.mean("time") - case.flow.u.mean("time"), flow.v.mean("time") - case.flow.v.mean("time")).values
    ok = np.isfinite(values) & np.isfinite(err)
    assert spearmanr(values[ok], err[ok]).statistic < -0.3
