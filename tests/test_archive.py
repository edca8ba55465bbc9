"""The archive model: fit once on series, save/load, gate, units and spacing checks, API and CLI."""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.ndimage import gaussian_filter

import xlatent
from xlatent import cli
from xlatent.exceptions import ArchiveMismatchWarning, ConfigError, SeriesError, UnitsMismatchError

# each window costs one SVF fit (~1-3 s at 32²): few windows, and the module's SVF cache shared
TINY = {"k_range": (2, 4), "windows_per_series": 5, "val_fraction": 0.34, "crop": 32, "batch_size": 4, "width": 8, "levels": 2,
        "latent": 4, "eval_every": 10, "progress": False}


def growing(seed: int, n: int = 12, size: int = 32, growth: float = 1.25, spacing: float = 1000.0) -> xr.DataArray:
    """Rain-like texture moving one column per 5-minute step while it grows by ``growth`` per
    step: flow blends the growth linearly, the truth is geometric."""
    rng = np.random.default_rng(seed)
    tex = gaussian_filter(rng.normal(size=(size, size + n)), 1.5)
    tex = np.exp(1.5 * tex / tex.std())
    frames = np.stack([tex[:, n - j : n - j + size] * growth**j for j in range(n)]).astype("f4")
    coords = {"time": pd.date_range("2026-01-01", periods=n, freq="5min"),
              "y": ("y", spacing * np.arange(size)[::-1], {"units": "m"}),
              "x": ("x", spacing * np.arange(size), {"units": "m"})}
    return xr.DataArray(frames, dims=("time", "y", "x"), coords=coords, name="rainfall_rate",
                        attrs={"units": "mm h-1"})


@pytest.fixture(scope="module")
def archive():
    return [growing(s) for s in range(2)]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("svf")


@pytest.fixture(scope="module")
def model(archive, cache):
    return xlatent.fit_interpolator(archive, max_iters=400, patience=100, cache=cache, seed=0, **TINY)


def test_fit_beats_flow_on_growth_and_records_what_it_learned(model):
    # measured against flow's own frames (bicubic, guarded): +1.0 dB on the held-out windows
    # after 400 steps (+0.5 at 200); K 3 gains, K 2 barely
    assert model.skill["windows"] > 0 and model.skill["db_over_flow"] > 0.5 and model.gate_open
    assert set(model.skill["db_over_flow_by_k"]) == {"2", "3"}
    assert model.skill["db_over_linear"] > model.skill["db_over_flow"]
    seen = model.trained_on
    assert (seen["variable"], seen["units"], seen["spacing_m"], seen["step_s"]) == ("rainfall_rate", "mm h-1",
                                                                                    1000.0, 300.0)
    assert seen["k_range"] == [2, 4] and "standardisation" in seen["transform"]
    assert len(model.history["loss"]) > 0 and model.history["validation"][0][0] == 0
    assert model.history["kept"] == "trained" and model.history["over_start"]["clearly_better"]


def test_the_start_is_kept_unless_training_is_clearly_better():
    from xlatent.archive.fit import _gain_over_start

    start = np.array([0.2, 0.4, 0.1, 0.3])
    clear = _gain_over_start(start + np.array([0.3, 0.2, 0.25, 0.35]), start)
    assert clear["clearly_better"] and clear["db"] == pytest.approx(0.275)
    noisy = _gain_over_start(start + np.array([0.9, -0.6, 0.4, -0.5]), start)  # +0.05 on the mean, se 0.35
    assert not noisy["clearly_better"] and noisy["se"] > noisy["db"] > 0
    assert not _gain_over_start(np.array([1.0]), np.array([0.0]))["clearly_better"]  # one window cannot tell
    assert _gain_over_start(np.zeros(0), np.zeros(0)) is None


def test_save_load_round_trip_and_accessor(model, cache, tmp_path):
    series = growing(7)
    a, b = series.isel(time=2), series.isel(time=5)
    frames, flow = xlatent.interpolate(a, b, steps=3, model=model)  # no cache: the SVF as flow fits it
    assert frames.attrs["xlatent_method"] == "archive" and frames.attrs["xlatent_gate"] == "open"
    assert frames.sizes["time"] == 4 and set(flow.data_vars) >= {"u", "v", "confidence"}
    again = xlatent.load_interpolator(model.save(tmp_path / "m.pt"), device="cpu")
    assert again.skill == model.skill and again.trained_on == model.trained_on
    frames2, flow2 = a.latentdyn.interpolate(b, steps=3, model=again)
    np.testing.assert_array_equal(frames.values, again.interpolate(a, b, 3)[0].values)
    xr.testing.assert_equal(frames, frames2)  # values and coords (history differs by its time stamp)
    xr.testing.assert_equal(flow, flow2)
    # arbitrary fractions: the ends are the inputs
    some, _ = again.interpolate(a, b, fractions=[0.0, 0.4, 1.0])
    ends = np.stack([a.values, b.values])
    np.testing.assert_allclose(some.values[[0, -1]], ends, rtol=1e-5, atol=1e-5)  # normalisation round trip
    assert some.interp_fraction.values.tolist() == [0.0, 0.4, 1.0]


@pytest.mark.parametrize("version", [1, 2])
def test_model_files_of_earlier_formats_are_refused(model, tmp_path, version):
    """1 took other inputs; 2 read the weight on the second hypothesis through tanh, not sigmoid:
    its weights would load and render something else."""
    from xlatent import modelfile
    from xlatent.exceptions import ModelFileError

    meta = {"format": "xlatent-archive-model", "format_version": version, **model._meta}
    path = modelfile.write(tmp_path / "old.pt", meta, model._net.state_dict())
    with pytest.raises(ModelFileError, match="fit it again"):
        xlatent.load_interpolator(path, device="cpu")


def test_closed_gate_gives_exactly_flows_frames(archive, cache):
    shut = xlatent.fit_interpolator(archive, max_iters=2, cache=cache, min_skill=1e9, **TINY)
    assert not shut.gate_open
    a, b = archive[0].isel(time=1), archive[0].isel(time=4)
    frames, flow = xlatent.interpolate(a, b, steps=3, model=shut)
    ref, ref_flow = xlatent.interpolate(a, b, steps=3, method="flow", progress=False)
    np.testing.assert_array_equal(frames.values, ref.values)
    np.testing.assert_array_equal(flow.u.values, ref_flow.u.values)
    assert frames.attrs["xlatent_gate"].startswith("closed")


def test_units_error_spacing_warning_and_out_of_range_pairs(model):
    other = growing(5)
    with pytest.raises(UnitsMismatchError, match="mm h-1"):
        model.interpolate(other.isel(time=0).assign_attrs(units="dBZ"), other.isel(time=3).assign_attrs(units="dBZ"))
    coarse = growing(5, spacing=2000.0)
    with pytest.warns(ArchiveMismatchWarning, match="grid spacing"):
        frames, _ = model.interpolate(coarse.isel(time=0), coarse.isel(time=3), 3)
    # twice the spacing: no network; flow's frames and the second hypothesis's, weighed
    assert "grid spacing" in frames.attrs["xlatent_gate"] and "weighed" in frames.attrs["xlatent_gate"]
    with pytest.warns(ArchiveMismatchWarning, match="time steps"):
        frames, _ = model.interpolate(other.isel(time=0), other.isel(time=9), 3)
    assert frames.attrs["xlatent_gate"].startswith("closed")


def test_outside_the_trained_range_the_two_hypotheses_are_weighed_by_what_each_motion_explains(model, monkeypatch):
    """Where neither motion explains the change the weight is the inverse-variance one (1/2 for
    two equal mismatches); it follows each hypothesis's own mismatch; where flow's motion is
    exact it vanishes (flow's frames)."""
    from xlatent.archive import windows
    from xlatent.backends import InMemory

    rng = np.random.default_rng(0)
    first, last = rng.normal(size=(2, 1, 16, 16)).astype("f4")
    base, alt = rng.normal(size=(2, 3, 1, 16, 16)).astype("f4")
    base[0], alt[0], base[2], alt[2] = first, first, last, last
    still, mask = np.zeros((2, 16, 16), "f4"), np.ones((16, 16), bool)
    hyp = {"v": still, "confidence": None, "base": base, "alt": alt, "alt_v": still}
    frames, gate = model._frames(first, last, mask, hyp, [0, 0.5, 1], 3.0, ["speed"])
    np.testing.assert_allclose(frames[1], 0.5 * (base[1] + alt[1]), atol=1e-5)
    np.testing.assert_array_equal(frames[[0, 2]], base[[0, 2]])
    assert gate.startswith("closed: speed") and "0.50 / 0.50" in gate
    assert windows.outside_weight(first, first, mask, still, still, "cpu") == 0  # no change: flow's frames
    # E_v = 1 (svf), E_alt = 4 (tvl1), D = 4: 1 / (1 + 4) * 1 / 4 = 0.05 (the roles swapped: 0.8)
    seen = {"svf": 1.0, "tvl1": 4.0}
    monkeypatch.setattr(windows, "halfway_mismatch", lambda a, b, f, m, motion, device: seen[motion])
    zero, two = np.zeros((1, 16, 16), "f4"), np.full((1, 16, 16), 2.0, "f4")
    assert windows.outside_weight(zero, two, mask, still, still, "cpu") == pytest.approx(0.05)
    monkeypatch.undo()

    moving = growing(3, growth=1.0)  # a translation: flow's motion is exact
    pair = InMemory().prepare(moving.isel(time=0), moving.isel(time=4), "x", "y")
    hyp = windows.hypotheses(pair, [0.5], "cpu")
    assert windows.outside_weight(pair.first, pair.last, pair.mask, hyp["v"], hyp["alt_v"], "cpu") < 0.05
    # the roles of the two motions swapped: flow's exact motion taken for the second's
    assert windows.outside_weight(pair.first, pair.last, pair.mask, 0 * hyp["v"], hyp["v"], "cpu") > 0.5

    # rain doubling in place: no motion explains it (the weight is about 1/2), but both guards blend
    # it in place, so the two hypotheses agree and the weighed frames are flow's
    grown = moving.isel(time=0)
    pair = InMemory().prepare(grown, (2 * grown).assign_coords(time=moving.time.values[4]), "x", "y")
    hyp = windows.hypotheses(pair, [0.5], "cpu")
    assert windows.outside_weight(pair.first, pair.last, pair.mask, hyp["v"], hyp["alt_v"], "cpu") > 0.4
    np.testing.assert_allclose(hyp["alt"], hyp["base"], atol=1e-3)


def test_an_out_of_range_pair_renders_the_weighed_hypotheses(model):
    from xlatent.archive import windows
    from xlatent.backends import InMemory

    # nine steps of motion (beyond the trained 2-4) and new rain that no motion explains
    series, other = growing(6, growth=1.0), growing(7, growth=1.0)
    a, b = series.isel(time=0), (series.isel(time=9) + other.isel(time=0).values).assign_attrs(units="mm h-1")
    with pytest.warns(ArchiveMismatchWarning, match="network stays off"):
        frames, _ = model.interpolate(a, b, 3, clip=False)
    pair = InMemory().prepare(a, b, "x", "y")
    fractions = np.array([0, 1 / 3, 2 / 3, 1])
    hyp = windows.hypotheses(pair, fractions, "cpu")
    weight = windows.outside_weight(pair.first, pair.last, pair.mask, hyp["v"], hyp["alt_v"], "cpu")
    expected = hyp["base"] + weight * (hyp["alt"] - hyp["base"])
    assert 0.01 < weight < 1 and f"{weight:.2f}" in frames.attrs["xlatent_gate"]
    np.testing.assert_allclose(frames.values[1:3], expected[1:3, 0] * pair.std[0] + pair.mean[0], rtol=1e-4, atol=1e-4)


def test_options_are_checked(model, archive):
    a, b = archive[0].isel(time=0), archive[0].isel(time=3)
    with pytest.raises(ConfigError, match="method"):
        xlatent.interpolate(a, b, model=model, method="latent")
    with pytest.raises(ConfigError, match="max_iters"):
        xlatent.interpolate(a, b, model=model, max_iters=3)
    with pytest.raises(ConfigError, match="k_range"):
        xlatent.fit_interpolator(archive, k_range=(1, 3))


def test_archive_series_are_checked_as_series(archive):
    # read through xlatent.stack.Series, as interp and accumulate read theirs: named before any fit
    undated = archive[0].assign_coords(time=np.arange(archive[0].sizes["time"]))
    with pytest.raises(SeriesError, match=r"archive\[1\] time coord"):
        xlatent.fit_interpolator([archive[0], undated], **TINY)
    with pytest.raises(SeriesError, match="strictly increase"):
        xlatent.fit_interpolator(archive[0].isel(time=[0, 2, 1, 3, 4, 5]), **TINY)
    empty = archive[0].copy()
    empty[4] = np.nan
    with pytest.raises(SeriesError, match="without any finite value"):
        xlatent.fit_interpolator(empty, **TINY)
    assert np.isfinite(archive[0].values).all()  # the user's data untouched


def test_default_method_is_flow(archive):
    a, b = archive[0].isel(time=0), archive[0].isel(time=3)
    frames, flow = xlatent.interpolate(a, b, steps=2, progress=False)
    assert frames.attrs["xlatent_method"] == "flow" and flow.sizes["time"] == 1


def test_cli_fit_interpolator_and_model_option(archive, tmp_path, capsys):
    paths = []
    for i, series in enumerate(archive[:1]):
        paths.append(tmp_path / f"s{i}.nc")
        series.to_netcdf(paths[-1])
    out = tmp_path / "model.pt"
    assert cli.main(["fit-interpolator", *map(str, paths), "--out", str(out), "--k-min", "2", "--k-max", "4",
                     "--windows", "2", "--max-iters", "2"]) == 0
    assert "held-out windows" in capsys.readouterr().out and out.is_file()
    result = tmp_path / "r.nc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = cli.main(["interpolate", str(paths[0]), "--first-index", "0", "--last-index", "3", "--steps", "3",
                         "--model", str(out), "--out", str(result), "--quiet"])
    assert code == 0
    frames, _ = xlatent.open_result(result)
    assert frames.attrs["xlatent_method"] == "archive" and frames.sizes["time"] == 4
    tuned = tmp_path / "tuned.pt"
    assert cli.main(["fit-interpolator", *map(str, paths), "--out", str(tuned), "--k-min", "2", "--k-max", "4",
                     "--windows", "2", "--max-iters", "2", "--init", str(out), "--quiet"]) == 0
    assert xlatent.load_interpolator(tuned, device="cpu")._meta["init"]["trained_on"]["units"] == "mm h-1"


def test_shipped_model_loads_and_renders_rain_on_its_grid(tmp_path):
    # a stale shipped file (a FORMAT_VERSION bump without a refit) fails here, not at a user's
    model = xlatent.pretrained_interpolator(device="cpu")
    seen = model.trained_on
    assert (seen["variable"], seen["units"], seen["step_s"]) == ("rainfall_rate", "mm h-1", 300.0)
    assert abs(seen["spacing_m"] - 2000.0) < 20 and model.gate_open and model.skill["db_over_flow"] > 0
    series = growing(5, n=5, size=48, growth=1.0, spacing=2000.0)
    a, b = series.isel(time=0), series.isel(time=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames, flow = xlatent.interpolate(a, b, steps=4, model=model, progress=False)
        ref, _ = xlatent.interpolate(a, b, steps=4, method="flow", progress=False)
    assert frames.attrs["xlatent_gate"] == "open" and np.isfinite(frames.values).all()
    assert not np.allclose(frames.values[1:-1], ref.values[1:-1])
    np.testing.assert_allclose(frames.values[[0, -1]], ref.values[[0, -1]])
    assert flow.u.attrs["units"] == "m s-1"
    with pytest.raises(ConfigError, match="radar-rain-2km"):
        xlatent.pretrained_interpolator("radar-rain-1km")
    path = tmp_path / "s.nc"
    series.to_netcdf(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = cli.main(["interpolate", str(path), "--first-index", "0", "--last-index", "4", "--steps", "4",
                         "--model", "radar-rain-2km", "--out", str(tmp_path / "r.nc"), "--quiet"])
    assert code == 0 and xlatent.open_result(tmp_path / "r.nc")[0].attrs["xlatent_method"] == "archive"


def test_same_seed_same_model(archive, cache):
    fits = [xlatent.fit_interpolator(archive, max_iters=4, cache=cache, seed=3, **TINY) for _ in range(2)]
    assert fits[0].history["loss"] == fits[1].history["loss"] and fits[0].skill == fits[1].skill


def test_series_interp_and_accumulate_with_a_model(model, archive):
    """``model=`` on a whole series: each interval is the model's forward pass (a user's first
    call: it raised a ConfigError when interp's method defaulted to "flow")."""
    series = archive[0].isel(time=slice(0, None, 3))  # 15-minute steps: 3 archive steps a window
    wanted = archive[0].time.values[:10]
    frames, flow = series.latentdyn.interp(time=wanted, model=model, progress=False)
    assert frames.sizes["time"] == 10 and flow is not None
    np.testing.assert_array_equal(frames.values[0], series.values[0])  # input times: the input frames
    pair, _ = model.interpolate(series.isel(time=0), series.isel(time=1), fractions=[1 / 3, 2 / 3])
    np.testing.assert_allclose(frames.values[1:3], pair.values, rtol=1e-5, atol=1e-5)
    totals = series.latentdyn.accumulate(freq="15min", model=model, progress=False)
    assert totals.attrs["units"] == "mm" and np.isfinite(totals.values).any()
    assert np.all(totals.values[np.isfinite(totals.values)] >= 0)
    with pytest.raises(ConfigError, match="does not apply"):
        series.latentdyn.interp(time=wanted, model=model, method="flow", progress=False)


def test_fine_tuning_starts_from_the_given_model_and_keeps_it_unless_it_does_better(model, archive, cache):
    opts = {**TINY, "width": 16, "levels": 3, "latent": 8}  # ignored: the network is init's
    start = xlatent.fit_interpolator(archive, max_iters=0, cache=cache, init=model, **opts)
    assert start._meta["network"] == model._meta["network"]
    for name, weights in model._net.state_dict().items():
        assert np.array_equal(start._net.state_dict()[name].numpy(), weights.numpy()), name
    assert start.skill["db_over_flow"] == pytest.approx(model.skill["db_over_flow"], abs=1e-6)
    assert start._meta["init"]["trained_on"] == model.trained_on
    tuned = xlatent.fit_interpolator(archive, max_iters=30, cache=cache, init=model, seed=1, **TINY)
    assert tuned.history["validation"][0][1] == pytest.approx(model.skill["db_over_flow"], abs=1e-6)
    assert tuned.skill["db_over_flow"] >= model.skill["db_over_flow"] - 1e-6  # the best weights are kept


def test_fine_tuning_from_a_shipped_name_and_a_units_mismatch(archive, cache):
    start = xlatent.fit_interpolator(archive, max_iters=0, cache=cache, init="radar-rain-2km", **TINY)
    assert start._meta["network"] == xlatent.pretrained_interpolator(device="cpu")._meta["network"]
    dbz = [a.assign_attrs(units="dBZ") for a in archive]
    with pytest.raises(UnitsMismatchError, match="init was trained on .* in 'mm h-1'; the archive is in 'dBZ'"):
        xlatent.fit_interpolator(dbz, max_iters=0, cache=cache, init="radar-rain-2km", **TINY)


def test_the_window_cache_is_not_read_across_versions(archive, tmp_path, monkeypatch):
    """A cached window is read back by the same version only: another version may fit other fields."""
    from xlatent.archive import windows
    from xlatent.backends import InMemory
    from xlatent.stack import Series

    series = Series.from_dataarray(archive[0])
    pair = InMemory().prepare(series.frame(0), series.frame(3), series.grid.x_dim, series.grid.y_dim)
    fractions = np.array([1 / 3, 2 / 3])
    windows.hypotheses(pair, fractions, "cpu", tmp_path)
    assert len(list(tmp_path.glob("hyp-*.npz"))) == 1
    windows.hypotheses(pair, fractions, "cpu", tmp_path)  # the same version: read back, nothing new
    assert len(list(tmp_path.glob("hyp-*.npz"))) == 1
    monkeypatch.setattr(windows, "__version__", "0.0.0-other")
    windows.hypotheses(pair, fractions, "cpu", tmp_path)
    assert len(list(tmp_path.glob("hyp-*.npz"))) == 2


def test_units_in_another_spelling_are_the_models(model):
    """'mm/h' is the 'mm h-1' the model was trained on; 'mm s-1' is another unit."""
    from xlatent import geo

    assert geo.same_units("mm h-1", "mm/h") and geo.same_units("mm h-1", "mm.h^-1") and geo.same_units("K", "K ")
    assert not geo.same_units("mm h-1", "mm s-1") and not geo.same_units("mm h-1", "dBZ")
    other = growing(5)
    a, b = (other.isel(time=i).assign_attrs(units="mm/h") for i in (0, 3))
    frames, _ = model.interpolate(a, b, 3)
    assert np.isfinite(frames.values).all()
    with pytest.raises(UnitsMismatchError, match="mm s-1"):
        model.interpolate(a.assign_attrs(units="mm s-1"), b.assign_attrs(units="mm s-1"))
    # an archive whose series spell the unit differently is one archive
    from xlatent.archive.windows import archive_series

    assert len(archive_series([other, other.assign_attrs(units="mm/h")])) == 2
    with pytest.raises(UnitsMismatchError, match="different units"):
        archive_series([other, other.assign_attrs(units="mm s-1")])
