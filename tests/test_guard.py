"""Do no harm (issue 23): a field that warms in place is not bent into motion, a moving one is left alone."""

import numpy as np

import xlatent
from xlatent import datasets
from xlatent.motion.guard import transport_share


def _psnr(pred, truth):
    rng = float(truth.max() - truth.min())
    return 10 * np.log10(rng**2 / float(np.mean((pred - truth) ** 2)))


def test_in_place_warming_case_has_its_truth():
    case = datasets.load("diurnal_drift", size=16, steps=4)
    assert case.first.dims == ("latitude", "longitude") and case.first.rio.crs.to_epsg() == 4326
    assert float(case.flow.u.mean()) > 0 and case.frames.sizes["time"] == 5
    assert datasets.load("diurnal_projected", size=16).first.rio.crs.to_epsg() == 3035
    # a quarter into the window departs from the linear blend: the cycle is not linear in time
    quarter = case.frames.isel(time=1).values
    assert np.abs(quarter - 0.75 * case.first.values - 0.25 * case.last.values).max() > 0.5


def test_share_separates_a_source_from_transport():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((48, 48))
    warmed = a + np.where(np.arange(48)[None, :] < 24, 3.0, 0.0)  # the west half warms in place
    moved = np.roll(a, 2, axis=1)
    assert np.median(transport_share(a, warmed, 4.0)[:, 4:20]) < 0.1
    assert np.median(transport_share(a, moved, 4.0)) == 1.0


def test_flow_not_below_the_blend_on_in_place_warming():
    case = datasets.load("diurnal", size=32, steps=4)
    truth = case.frames.values[1:-1]
    linear, _ = xlatent.interpolate(case.first, case.last, steps=4, method="linear", progress=False)
    frames, flow = xlatent.interpolate(case.first, case.last, steps=4, method="flow", progress=False)
    assert _psnr(frames.values[1:-1], truth) >= _psnr(linear.values[1:-1], truth) - 0.1
    assert float(flow.confidence.mean()) < 0.5  # the motion is not trusted where it explains nothing


def test_guard_leaves_a_translation_alone():
    case = datasets.load("translation", size=32, steps=2)
    truth = case.frames.values[1:-1]
    on, flow_on = xlatent.interpolate(case.first, case.last, steps=2, method="flow", progress=False)
    off, flow_off = xlatent.interpolate(case.first, case.last, steps=2, method="flow", guard=False, progress=False)
    assert abs(_psnr(on.values[1:-1], truth) - _psnr(off.values[1:-1], truth)) <= 0.1
    np.testing.assert_allclose(flow_on.u.values, flow_off.u.values, atol=1e-3 * float(np.abs(flow_off.u).max()))
