"""Every method behind the same contract; what each one is supposed to do, checked on known motion."""

import sys

import numpy as np
import pytest
import xarray as xr

import xlatent
from xlatent import methods, motion
from xlatent.exceptions import ConfigError, UnknownMethodError

OPTIONS = {"latent": {"max_iters": 8}, "advection": {"max_iters": 8}, "ot": {"ot_grid": 24}}


@pytest.mark.parametrize("method", ["linear", "flow", "ot", "advection", "latent"])
def test_every_method_keeps_the_contract(method, translation_case):
    first, last = translation_case.first, translation_case.last
    frames, flow = first.latentdyn.interpolate(last, steps=4, method=method, progress=False,
                                               **OPTIONS.get(method, {}))
    assert frames.dims == ("time", "y", "x") and frames.sizes["time"] == 5
    assert frames.rio.crs == first.rio.crs and frames.name == first.name
    np.testing.assert_allclose(frames[0], first, atol=1e-4)
    np.testing.assert_allclose(frames[-1], last, atol=1e-4)
    assert frames.attrs["xlatent_method"] == method
    if method == "linear":
        assert flow is None
    else:
        with_confidence = {"latent", "advection", "flow"}  # the stationary velocity's motion confidence
        assert set(flow.data_vars) == {"u", "v"} | ({"confidence"} if method in with_confidence else set())
        assert flow.u.attrs["units"] == "m s-1"
        assert flow.rio.crs == first.rio.crs


def test_registry_lists_all_methods():
    assert set(methods.available()) >= {"linear", "flow", "ot", "advection", "latent"}
    with pytest.raises(UnknownMethodError, match="Available: .*ot"):
        methods.spec("optical")


def test_options_must_belong_to_the_method(translation_case):
    a, b = translation_case.first, translation_case.last
    with pytest.raises(ConfigError, match="do not apply to method='flow'.*motion"):
        xlatent.interpolate(a, b, method="flow", max_iters=3, progress=False)
    with pytest.raises(ConfigError, match="ot_grid"):
        xlatent.interpolate(a, b, method="ot", ot_grid=0, progress=False)
    with pytest.raises(ConfigError, match="flow_prior"):
        xlatent.interpolate(a, b, method="latent", flow_prior="farneback", progress=False)
    with pytest.raises(ConfigError, match="motion"):
        xlatent.interpolate(a, b, method="flow", motion="farneback", progress=False)


def _blob_pair(shift=(0, 12), size=64):
    """A Gaussian rain cell that moves ``shift`` (rows, columns) cells, on a rain-like zero floor."""
    r, c = np.mgrid[0:size, 0:size].astype(float)

    def blob(r0, c0, peak):
        return peak * np.exp(-((r - r0) ** 2 + (c - c0) ** 2) / (2 * 4.0**2))

    coords = {"y": np.arange(size, dtype=float), "x": np.arange(size, dtype=float)}
    a = xr.DataArray(blob(32, 20, 10.0), dims=("y", "x"), coords=coords, name="rain")
    b = xr.DataArray(blob(32 + shift[0], 20 + shift[1], 10.0), dims=("y", "x"), coords=coords, name="rain")
    return a, b


def _centroid(img):
    img = np.where(img > 0.5, img, 0.0)
    r, c = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    return float((img * r).sum() / img.sum()), float((img * c).sum() / img.sum())


def _assert_one_full_peak_half_way(mid, peak=10.0, rel=0.85):
    """One blob of (nearly) full height at the half-way column, not two half-height ones."""
    assert mid.max() > rel * peak  # a fade of the two blobs peaks near peak / 2
    row, col = np.unravel_index(mid.argmax(), mid.shape)
    assert row == pytest.approx(32, abs=1) and col == pytest.approx(26, abs=1)
    assert mid[32, 20] < 0.4 * peak and mid[32, 32] < 0.4 * peak  # start and end positions left


def test_ot_moves_mass_and_conserves_it():
    a, b = _blob_pair()
    frames, flow = xlatent.interpolate(a, b, steps=2, method="ot", ot_grid=32, progress=False)
    mid = frames[1].values
    assert _centroid(mid)[1] == pytest.approx(26.0, abs=1.0)
    _assert_one_full_peak_half_way(mid)  # measured peak 9.39 at (32, 26); a fade gives 5.06
    assert mid.sum() == pytest.approx(a.values.sum(), rel=1e-2)  # bilinear upsampling: ~0.4%
    u = flow.u.isel(time=0).values  # grid cells per unit fraction (plain coords, no time)
    assert np.nanmedian(u[np.hypot(*np.mgrid[-32:32, -20:44]) < 4]) == pytest.approx(12.0, abs=1.5)
    assert np.isnan(u[0, -1])  # no mass there: no motion defined


def test_flow_moves_the_blob_half_way():
    a, b = _blob_pair()
    frames, _ = xlatent.interpolate(a, b, steps=2, method="flow", progress=False)
    assert _centroid(frames[1].values)[1] == pytest.approx(26.0, abs=1.0)
    _assert_one_full_peak_half_way(frames[1].values)  # measured peak 10.0 at (32, 26)


def test_linear_blend_fails_the_peak_check():
    """The check above tells motion from a fade: the fade has the same centroid."""
    a, b = _blob_pair()
    frames, _ = xlatent.interpolate(a, b, steps=2, method="linear", progress=False)
    assert _centroid(frames[1].values)[1] == pytest.approx(26.0, abs=1.0)
    with pytest.raises(AssertionError):
        _assert_one_full_peak_half_way(frames[1].values)


def test_motion_sees_log_of_non_negative_fields():
    rain = np.array([[[0.0, 1.0, 10.0, 100.0]]])
    a, _ = motion.motion_space(rain, rain)
    steps = np.diff(a[0])
    assert steps[1] == pytest.approx(steps[2])  # log: 1 -> 10 as far apart as 10 -> 100
    assert steps[0] > 0  # dry cells below the log floor, still ordered
    temperature = np.array([[[-5.0, 0.0, 5.0, 10.0]]])
    a, _ = motion.motion_space(temperature, temperature)
    np.testing.assert_allclose(a[0], [0, 1 / 3, 2 / 3, 1])  # linear, scaled to [0, 1]
    a, _ = motion.motion_space(rain, rain, transform="none")
    np.testing.assert_allclose(a[0], rain[0, 0] / 100)


def test_motion_registry(monkeypatch):
    """Estimators are chosen by name from one registry: a new one is accepted everywhere a name
    is checked (the config's ``flow_prior``, ``motion=``) and run by ``estimate``."""
    from xlatent import LatentConfig
    from xlatent.motion import base

    assert motion.available() == ("tvl1", "vet", "lk", "svf")
    assert motion.get_method("tvl1") is motion.estimators.tvl1
    with pytest.raises(ConfigError, match="'tvl1', 'vet', 'lk', 'svf'"):
        motion.get_method("magic")
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    motion.register("shift")(lambda a, b: np.stack((np.ones_like(a), -np.ones_like(a))).astype(np.float32))
    assert LatentConfig(flow_prior="shift").flow_prior == "shift"
    field = motion.estimate(np.zeros((1, 4, 5)), np.eye(4, 5)[None], "shift")
    np.testing.assert_array_equal(field[:, 0, 0], [1.0, -1.0])


def test_advection_method_has_no_codec(translation_case):
    from xlatent.config import LatentConfig
    from xlatent.model.latent_advection import LatentAdvection

    model = LatentAdvection(1, LatentConfig(codec="identity", latent_channels=0))
    assert model.encoder is None and model.decoder_net is None
    x = np.random.default_rng(0).normal(size=(1, 1, 8, 8)).astype("float32")
    import torch

    assert torch.equal(model.decode(model.encode(torch.from_numpy(x))), torch.from_numpy(x))


def test_missing_pot_names_the_extra(monkeypatch, translation_case):
    monkeypatch.setitem(sys.modules, "ot", None)
    with pytest.raises(ImportError, match=r"xlatent\[ot\]"):
        xlatent.interpolate(translation_case.first, translation_case.last, method="ot", progress=False)


def test_pysteps_motion_option(translation_case):
    pytest.importorskip("pysteps")
    a, b = translation_case.first, translation_case.last
    frames, flow = xlatent.interpolate(a, b, steps=2, method="flow", motion="vet", progress=False)
    assert frames.attrs["xlatent_motion"] == "vet"
    assert float(flow.v.mean()) > 0 and float(flow.u.mean()) > 0  # north-east, as the truth


def test_coarsened_starting_field_recovers_the_shift():
    """TV-L1 on 4 x 4 block means, upsampled: the same displacement on the full grid (a shape
    that is not a multiple of 4 included), for a smooth texture moved by (3, -2) cells."""
    y, x = np.mgrid[0:130, 0:150].astype(float)

    def texture(dx, dy):
        return np.sin((x - dx) / 7.0) * np.cos((y - dy) / 9.0) + 0.5 * np.sin((x - dx + y - dy) / 13.0)

    a, b = texture(0, 0)[None], texture(3, -2)[None]
    full = motion.estimate(a, b, "tvl1", "none")
    coarse = motion.estimate(a, b, "tvl1", "none", coarsen=4)
    assert coarse.shape == full.shape == (2, 130, 150)
    inner = (slice(None), slice(20, -20), slice(20, -20))
    np.testing.assert_allclose(coarse[inner].mean(axis=(1, 2)), [3.0, -2.0], atol=0.15)
    np.testing.assert_allclose(full[inner].mean(axis=(1, 2)), [3.0, -2.0], atol=0.15)
    with pytest.raises(ConfigError, match="coarsen"):
        motion.estimate(a, b, coarsen=0)


def test_prior_coarsen_default_depends_on_the_scene():
    from xlatent import LatentConfig

    assert LatentConfig().for_scene((2048, 2048)).prior_coarsen == 1
    assert LatentConfig().for_scene((4096, 2049)).prior_coarsen == LatentConfig().flow_pool
    assert LatentConfig(prior_coarsen=2).for_scene((8192, 8192)).prior_coarsen == 2
    with pytest.raises(ConfigError, match="prior_coarsen"):
        LatentConfig(prior_coarsen=0)
