"""Dask-backed inputs: never loaded whole, same results as in memory, lazy outputs, GPU paths."""

import json
import pickle
import re
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import torch
import xarray as xr
from conftest import LATENT, QUICK
from dask.callbacks import Callback

import xlatent
from xlatent import _dask, chunked, datasets
from xlatent.backends import prepare as _prepare
from xlatent.pair import Pair

# small nets: reach of F 24 cells, so a 128 x 128 scene splits into 3 x 3 chunks of 48
SMALL = {"unet_levels": 2, "flow_pool": 2, "stages": 2}


class ReadGuard:
    """An array that refuses reads larger than ``limit`` cells and counts the cells read:
    proof a scene is never loaded in one read."""

    def __init__(self, values: np.ndarray, limit: int):
        self.values, self.limit, self.largest, self.total = values, limit, 0, 0
        self.shape, self.dtype, self.ndim = values.shape, values.dtype, values.ndim

    def __getitem__(self, key):
        out = self.values[key]
        self.largest = max(self.largest, out.size)
        self.total += out.size
        if out.size > self.limit:
            raise AssertionError(f"read of {out.size} cells, more than {self.limit}")
        return out

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("the whole array was loaded")


class WholeScenes(Callback):
    """Task results (numpy) in the dask graphs computed that span a whole ``shape`` scene: an
    input loaded whole (``.compute()``, ``np.asarray``) shows as one task returning all of it,
    while chunks, their overlaps (edge-padded) and reductions never have that shape."""

    def __init__(self, shape):
        super().__init__()
        self.shape, self.seen = tuple(shape), []

    def _posttask(self, key, result, dsk, state, id):
        if isinstance(result, np.ndarray) and result.shape[-2:] == self.shape:
            self.seen.append(key)


def guarded(da_in: xr.DataArray, chunks: int, limit: int):
    guard = ReadGuard(da_in.values, limit)
    data = da.from_array(guard, chunks=chunks, asarray=False, meta=np.empty((0, 0), da_in.dtype))
    return da_in.copy(data=data), guard


@pytest.fixture(scope="module")
def case():
    return datasets.translation(size=128, steps=4)


@pytest.fixture(scope="module")
def perturbed_model(case):
    """A fitted model with non-trivial weights everywhere, so that fields are not ~0."""
    model = xlatent.fit(case.first, case.last, **SMALL, **QUICK, flow_prior=None, patch=32)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model._core.model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def test_lazy_equals_in_memory_same_model(case, perturbed_model):
    model = perturbed_model
    a, b = case.first.chunk(48), case.last.chunk(48)
    frames = model.frames(4, a, b, progress=False)
    flow = model.flow(a, b, progress=False)
    assert isinstance(frames.data, da.Array) and isinstance(flow.u.data, da.Array)
    # chunked (halos between chunks matter): input chunks of 48 widened to the 60-cell overlap,
    # and the outputs come back in the chunks the model ran on
    assert frames.data.numblocks[-2:] == (2, 2) and flow.u.data.chunks[-2:] == frames.data.chunks[-2:]
    ref_frames = model.frames(4, case.first, case.last, progress=False)
    ref_flow = model.flow(case.first, case.last, progress=False)
    got_frames, got_flow = dask.compute(frames, flow, scheduler="threads")
    assert float(np.abs(ref_flow.u).max()) > 1e-5  # m/s: 0.4 cell over 12 h, not a zero field
    # stated tolerance: float32 convolutions differ by window size (as tiled vs untiled); in
    # the scene's outermost cells, departure points beyond the scene meet fields that F computed
    # on edge-padded images in a chunk, on edge-padded fields in memory
    np.testing.assert_allclose(got_frames[..., 2:-2, 2:-2], ref_frames[..., 2:-2, 2:-2], atol=1e-4)
    np.testing.assert_allclose(got_frames, ref_frames, atol=1e-3)
    scale = float(np.abs(ref_flow.u).max())
    np.testing.assert_allclose(got_flow.u, ref_flow.u, atol=1e-4 * scale)
    np.testing.assert_allclose(got_flow.v, ref_flow.v, atol=1e-4 * scale)
    xr.testing.assert_identical(got_frames.coords.to_dataset(), ref_frames.coords.to_dataset())
    def same(a, b):  # the history line carries the second the call was made
        return {k: v for k, v in a.items() if k != "history"} == {k: v for k, v in b.items() if k != "history"}

    assert same(got_frames.attrs, ref_frames.attrs) and same(got_flow.u.attrs, ref_flow.u.attrs)
    assert got_frames.rio.crs == case.first.rio.crs and got_flow.u.rio.crs == case.first.rio.crs


@pytest.fixture(scope="module")
def big():
    """A scene of 2 x 2 chunks of 128 cells (bigger than the overlap of a TV-L1 starting field,
    100+ cells, so that the model graph keeps several chunks per axis)."""
    return datasets.translation(size=256, steps=2)


@pytest.fixture(scope="module")
def tvl1_model(big):
    """Fitted with a TV-L1 starting field, in memory (the default stationary-velocity starting
    field per chunk is covered by tests/test_distributed.py; TV-L1 is seconds cheaper a chunk)."""
    return xlatent.fit(big.first, big.last, **SMALL, **QUICK, flow_prior="tvl1")


@pytest.fixture(scope="module")
def tvl1_ref(big, tvl1_model):
    """The in-memory frames of ``tvl1_model``."""
    return tvl1_model.frames(2, big.first, big.last, progress=False)


def _chunk_warnings(record, start="xlatent: in chunk"):
    return [str(w.message) for w in record if str(w.message).startswith(start)]


def test_tvl1_prior_per_chunk_is_close(big, tvl1_model, tvl1_ref):
    """With the TV-L1 starting field computed per chunk (not on the whole scene) the frames stay
    close to the in-memory ones of the same model: mean difference under 2 % of the spread."""
    a, b = big.first.chunk(128), big.last.chunk(128)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        frames = tvl1_model.frames(2, a, b, progress=False)
        assert min(frames.data.numblocks[-2:]) >= 2  # the model graph has several chunks per axis
        got = frames.compute(scheduler="threads")
    assert _chunk_warnings(record) == [] and _chunk_warnings(record, "xlatent: the starting") == []
    diff = np.abs(got - tvl1_ref)
    assert float(diff.mean()) < 0.02 * float(tvl1_ref.std())


def test_motion_beyond_the_bound_is_clamped_with_a_warning(big, tvl1_model):
    """A chunk whose motion, computed with the frames, exceeds the bound the overlap was built for
    (here a bound of 1 cell for a 6-cell motion) ends with a result and a warning naming the
    chunk and the size, never with an error after the work."""
    a, b = big.first.chunk(128), big.last.chunk(128)
    tvl1_model._core.config.max_displacement = 1.0
    try:
        frames, flow = tvl1_model.frames(2, a, b, progress=False), tvl1_model.flow(a, b, progress=False)
        with pytest.warns(UserWarning, match=r"xlatent: in chunk rows \d+:\d+, columns \d+:\d+ the motion reaches"):
            got, flow = dask.compute(frames, flow, scheduler="threads")
    finally:
        tvl1_model._core.config.max_displacement = None
    assert min(frames.data.numblocks[-2:]) >= 2 and np.isfinite(got).all()
    np.testing.assert_allclose(got.isel(time=0), big.first, atol=1e-5)  # exact end points
    # the fields were clamped to what the overlap allows (a few cells), in m/s: cells of 1 km in 12 h
    cells = np.hypot(flow.u, flow.v) * 12 * 3600 / 1000
    assert float(cells.max()) < 4.0


def test_outlier_starting_field_falls_back_to_the_coarse_motion(monkeypatch, big, tvl1_model, tvl1_ref):
    """A per-chunk starting field far from the scene's coarse motion (as on a repetitive texture,
    where TV-L1 found 100+ cells for a 5-cell shift) is replaced by the coarse motion there,
    with a warning per chunk; the frames stay close to the in-memory ones."""
    from xlatent.engine import LatentCore

    real = LatentCore.prior
    east = np.array([120.0, 0.0], np.float32)[:, None, None]  # 120 cells more toward +column
    monkeypatch.setattr(LatentCore, "prior", lambda self, a, b: real(self, a, b) + east)
    a, b = big.first.chunk(128), big.last.chunk(128)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        frames = tvl1_model.frames(2, a, b, progress=False)
        got = frames.compute(scheduler="threads")
    replaced = _chunk_warnings(record, "xlatent: the starting field of chunk rows")
    assert len(replaced) == int(np.prod(frames.data.numblocks[-2:]))  # each chunk, named once
    assert re.search(r"coarse motion by 1[12]\d\.\d cells", replaced[0])
    assert float(np.abs(got - tvl1_ref).mean()) < 0.02 * float(tvl1_ref.std())


def _psnr(x, truth) -> float:
    x, truth = np.asarray(x, np.float64), np.asarray(truth, np.float64)
    return float(10 * np.log10(np.ptp(truth) ** 2 / np.mean((x - truth) ** 2)))


def test_flow_lazy_is_the_in_memory_answer_with_the_same_defaults_and_options():
    """Issue 22 item 3, issue 23 item 12: on dask inputs ``flow`` uses the in-memory default (the
    stationary velocity, estimated once on the whole scene) and honours ``svf_weight``; a 256²
    rotation in 64-cell chunks gives the in-memory frames within 0.1 dB PSNR against the truth,
    the same motion, and no seam at the chunk borders."""
    case = datasets.rotation(size=256, steps=2)
    a, b = case.first.chunk(64), case.last.chunk(64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # neither "loaded into memory" nor a chunk warning
        frames, flow = xlatent.interpolate(a, b, steps=2, method="flow", svf_weight=30.0, progress=False)
        assert isinstance(frames.data, da.Array) and frames.data.numblocks[-2:] == (4, 4)
        got, got_flow = dask.compute(frames, flow, scheduler="threads")
    ref, ref_flow = xlatent.interpolate(case.first, case.last, steps=2, method="flow", svf_weight=30.0,
                                        progress=False)
    assert got.attrs["xlatent_motion"] == ref.attrs["xlatent_motion"] == "svf"
    truth = case.frames.isel(time=1)
    assert abs(_psnr(got.isel(time=1), truth) - _psnr(ref.isel(time=1), truth)) < 0.1
    scale = float(np.abs(ref_flow.u).max())  # the same field: svf_weight reached the lazy path too
    np.testing.assert_allclose(got_flow.u, ref_flow.u, atol=1e-3 * scale)
    np.testing.assert_allclose(got_flow.v, ref_flow.v, atol=1e-3 * scale)
    border = np.zeros(got.shape[-2:], bool)  # cells within 4 of an inner chunk border
    for edge in (64, 128, 192):
        border[edge - 4 : edge + 4] = border[:, edge - 4 : edge + 4] = True
    diff = np.abs(got.isel(time=1).values - ref.isel(time=1).values) / float(np.ptp(truth.values))
    assert float(diff[border].mean()) < 1e-3 and float(diff[border].max()) < 1e-2  # measured: 9e-5, 2e-3


def test_flow_lazy_on_block_means_refined_per_chunk_is_the_in_memory_answer(monkeypatch):
    """A scene larger than ``COARSE_SIDE`` (forced down to 64 cells here) is estimated on block
    means and refined per chunk (``svf.refine``). The edge-padded overlap at the scene's border is
    not data: with it in the data term a 128² shear in 32-cell chunks (64-cell once rechunked
    to suit the overlap) lost 4.0 dB against the
    in-memory frames (benchmarks/RESULTS.md entry 47); without, 0.1 dB."""
    from xlatent.chunked import coarse, flow_method

    monkeypatch.setattr(coarse, "COARSE_SIDE", 64)
    coarse._COARSE_CACHE.clear()
    regions = []
    refine = flow_method.svf.refine

    def spy(*args, region=None, **kwargs):
        regions.append(region)
        return refine(*args, region=region, **kwargs)

    monkeypatch.setattr(flow_method.svf, "refine", spy)
    case = datasets.analytic("shear", size=128, steps=2)
    frames, _ = xlatent.interpolate(case.first.chunk(32), case.last.chunk(32), steps=2, method="flow", progress=False)
    got = frames.compute(scheduler="threads")
    ref, _ = xlatent.interpolate(case.first, case.last, steps=2, method="flow", progress=False)
    assert regions and all(float(r.min()) == 0.0 for r in regions)  # refined per chunk; each touches the border
    truth = case.frames.isel(time=1)
    assert abs(_psnr(got.isel(time=1), truth) - _psnr(ref.isel(time=1), truth)) < 0.25


def test_advection_runs_chunk_by_chunk(case):
    """``advection`` stays lazy on dask inputs: one task per chunk (several per axis), the
    model with E and D the identity."""
    a, b = case.first.chunk(64), case.last.chunk(64)
    kw = dict(**SMALL, **QUICK, sample_patches=8, flow_prior=None, patch=32)
    frames, flow = xlatent.interpolate(a, b, steps=2, method="advection", **kw)
    assert isinstance(frames.data, da.Array) and min(frames.data.numblocks[-2:]) >= 2
    got = frames.compute(scheduler="threads")
    np.testing.assert_allclose(got.isel(time=-1), case.last, atol=1e-5)
    assert np.isfinite(got).all() and np.isfinite(flow.u.compute(scheduler="threads")).all()
    config = json.loads(frames.attrs["xlatent_config"])  # the model that ran: E and D the identity
    assert config["codec"] == "identity" and frames.attrs["xlatent_method"] == "advection"
    in_memory, _ = xlatent.interpolate(case.first, case.last, steps=2, method="advection", **kw)
    assert json.loads(in_memory.attrs["xlatent_config"])["codec"] == "identity"


def test_never_loaded_whole_and_streams_to_zarr(tmp_path, case):
    a, guard_a = guarded(case.first, 48, limit=64 * 64)
    b, guard_b = guarded(case.last, 48, limit=64 * 64)
    with dask.config.set(scheduler="threads"), WholeScenes(case.first.shape) as whole:
        frames, flow = xlatent.interpolate(a, b, steps=2, **SMALL, **LATENT, sample_patches=8, flow_prior=None,
                                           patch=32)
        assert isinstance(frames.data, da.Array) and isinstance(flow.v.data, da.Array)
        frames.to_dataset(name="frames").to_zarr(tmp_path / "frames.zarr")
        flow.to_zarr(tmp_path / "flow.zarr")
    assert 0 < guard_a.largest <= 64 * 64 and 0 < guard_b.largest <= 64 * 64
    assert whole.seen == []  # no task ever held a whole input (a `.compute()` of one fails here)
    # in all, each input is read at most 8 times over (measured: 5.8): statistics, the pass that
    # measures the largest displacement, then the frames and the flow written by two graphs,
    # each reading the chunk rows around its own
    assert guard_a.total <= 8 * case.first.size and guard_b.total <= 8 * case.last.size
    back = xr.open_zarr(tmp_path / "frames.zarr").frames
    np.testing.assert_allclose(back.isel(time=0), case.first, atol=1e-5)  # exact end points
    assert np.isfinite(xr.open_zarr(tmp_path / "flow.zarr").u).all()


def test_statistics_lazy_equal_in_memory(case):
    first = case.first.where(case.first.x > case.first.x[5])  # some NaN
    lazy = _prepare(first.chunk(40), case.last.chunk(40))
    ref = _prepare(first, case.last)
    assert isinstance(lazy, Pair) and isinstance(lazy.first, da.Array)
    np.testing.assert_allclose(lazy.mean, ref.mean, rtol=1e-5)
    np.testing.assert_allclose(lazy.std, ref.std, rtol=1e-5)
    for got, want in zip(lazy.value_range, ref.value_range):
        np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(lazy.first.compute(), ref.first, atol=1e-5)
    np.testing.assert_array_equal(lazy.mask.compute(), ref.mask)


def test_lazy_inf_and_undeclared_fill_values_as_in_memory(case):
    """The lazy statistics pass treats inf as missing (with the warning) and names undeclared fill
    values (> 1e30, beyond float32's range too) as the in-memory path does, instead of casting to
    float32 first (inf dropped silently, 9.97e36 taken as data)."""
    from xlatent.exceptions import InputError, NonFiniteWarning

    first = case.first.astype("float64").copy()
    first[3, 4] = np.inf
    with pytest.warns(NonFiniteWarning, match="1 infinite"):
        lazy = _prepare(first.chunk(40), case.last.chunk(40))
    with pytest.warns(NonFiniteWarning):
        ref = _prepare(first, case.last)
    np.testing.assert_allclose(lazy.mean, ref.mean, rtol=1e-5)
    np.testing.assert_allclose(lazy.std, ref.std, rtol=1e-5)
    assert not lazy.mask[3, 4].compute() and np.isfinite(lazy.first.compute()).all()
    for fill in (9.97e36, -3.4e38, 1e300):
        bad = case.first.astype("float64").copy()
        bad[5, 6] = fill
        with pytest.raises(InputError, match="undeclared"):
            _prepare(bad.chunk(40), case.last.chunk(40))


def test_one_preparation_same_rules_in_memory_and_lazily(case):
    """One prepare serves both backends: the same normalised values, masks and moments (bitwise),
    the same message for an undeclared fill value, and with a model's moments the same refusal of
    values too far from them (the lazy path checks it in its one pass; it used to pass them on)."""
    from xlatent.exceptions import InputError

    first = case.first.where(case.first.x > case.first.x[5])  # some NaN
    lazy, ref = _prepare(first.chunk(40), case.last.chunk(40)), _prepare(first, case.last)
    np.testing.assert_array_equal(lazy.first.compute(), ref.first)
    np.testing.assert_array_equal(lazy.mask.compute(), ref.mask)
    np.testing.assert_array_equal(lazy.mean, ref.mean)
    np.testing.assert_array_equal(lazy.std, ref.std)
    bad = case.first.astype("float64").copy()
    bad[:8, :8] = -3.4e38
    said = []
    for a, b in ((bad.chunk(40), case.last.chunk(40)), (bad, case.last)):
        with pytest.raises(InputError, match="magnitude above") as err:
            _prepare(a, b)
        said.append(str(err.value))
    assert said[0] == said[1] and "-3.4e+38" in said[0]
    for a, b in ((case.first.chunk(40), case.last.chunk(40)), (case.first, case.last)):
        with pytest.raises(InputError, match="too far from the model's mean"):
            _prepare(a, b, mean=[0.0], std=[1e-39])


def test_training_windows_fixed_count_seeded(case):
    pair = _prepare(case.first.chunk(48), case.last.chunk(48))
    cfg = xlatent.LatentConfig(sample_patches=6, prior_margin=8)
    cut = lambda seed: chunked.training_windows(pair.first, pair.last, pair.mask, (32, 32), (8, 8), cfg, seed)
    w0, w0b, w1 = cut(0), cut(0), cut(1)
    assert w0.shape == (6, 1 + 1 + 1 + 2, 32, 32)  # first, last, mask, prior (2)
    np.testing.assert_array_equal(w0, w0b)
    assert not np.array_equal(w0, w1)


def test_model_weights_are_one_task_in_the_graph(case, perturbed_model):
    frames = perturbed_model.frames(2, case.first.chunk(48), case.last.chunk(48), progress=False)
    graph = dict(frames.__dask_graph__())
    model_keys = [k for k in graph if "xlatent-model" in str(k)]
    assert len(model_keys) == 1  # fields and frames layers share it (same weights, same key)
    weights = len(pickle.dumps(graph[model_keys[0]]))
    assert weights > 50_000 and frames.data.npartitions >= 4
    # every other task (4 blocks, overlaps...) refers to the model by key only
    heavy = [k for k, v in graph.items() if len(pickle.dumps(v)) > weights // 2]
    assert heavy == model_keys


def test_ot_loads_with_a_warning(case):
    pytest.importorskip("ot")
    with pytest.warns(UserWarning, match="whole scene.*loaded into memory"):
        frames, flow = xlatent.interpolate(case.first.chunk(64), case.last.chunk(64), steps=2, method="ot", ot_grid=8)
    assert not isinstance(frames.data, da.Array)
    frames, flow = xlatent.interpolate(case.first.chunk(64), case.last.chunk(64), steps=2, method="linear")
    assert isinstance(frames.data, da.Array) and flow is None


def test_oom_retries_with_smaller_tiles(monkeypatch, case, perturbed_model):
    from xlatent import patches

    core = perturbed_model._core
    pair = _prepare(case.first, case.last)
    core.config.tile = 64
    try:
        ref = core.frames(pair.first, pair.last, core.fields(pair.first, pair.last), [0.0, 0.5, 1.0])
        real, calls = patches.run_tiled, []

        def flaky(fn, image, tile, *args, **kwargs):
            calls.append(tile)
            if len(calls) == 1:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return real(fn, image, tile, *args, **kwargs)

        monkeypatch.setattr(patches, "run_tiled", flaky)
        got = core.frames(pair.first, pair.last, core.fields(pair.first, pair.last), [0.0, 0.5, 1.0])
    finally:
        core.config.tile = 512
    assert calls[:2] == [64, 32]  # retried with half the tile
    np.testing.assert_allclose(got, ref, atol=1e-3)
    assert np.abs(got - ref).mean() < 1e-5


def test_bfloat16_autocast_close_to_float32(case, perturbed_model):
    core = perturbed_model._core
    pair = _prepare(case.first, case.last)
    ref = core.fields(pair.first, pair.last)
    core.config.inference_dtype = "bfloat16"
    try:
        got = core.fields(pair.first, pair.last)
    finally:
        core.config.inference_dtype = "float32"
    assert got.dtype == np.float32
    assert np.abs(got - ref).mean() < 0.05 * np.abs(ref).mean() + 1e-3
    assert not np.array_equal(got, ref)  # autocast did run


def test_torch_threads_from_dask_config(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with dask.config.set({"xlatent.torch-threads": 3}):
        assert _dask.torch_threads() == 3
    with dask.config.set(num_workers=64):
        assert _dask.torch_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert _dask.torch_threads() == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_lazy_frames_match_cpu(case, perturbed_model, tmp_path):
    path = perturbed_model.save(tmp_path / "m.pt")
    gpu = xlatent.load(path, device="cuda")
    assert gpu._core.device.type == "cuda"
    a, b = case.first.chunk(48), case.last.chunk(48)
    got = gpu.frames(2, a, b, progress=False).compute(scheduler="threads")
    ref = perturbed_model.frames(2, case.first, case.last, progress=False)
    np.testing.assert_allclose(got, ref, atol=1e-3)


def _is_block(key) -> bool:
    return str(key[0] if isinstance(key, tuple) else key).startswith("_frames_block")


class BlocksHeld(Callback):
    """Model blocks (``_frames_block`` tasks) in each dask graph computed, and the most
    of their results the scheduler held at once."""

    def __init__(self):
        super().__init__()
        self.most, self.per_graph = 0, []

    def _start(self, dsk):
        self.per_graph.append(sum(map(_is_block, dsk)))

    def _posttask(self, key, result, dsk, state, id):
        self.most = max(self.most, sum(map(_is_block, state["cache"])))


def test_result_store_written_in_bands_of_bounded_memory(tmp_path, perturbed_model):
    """save_result to Zarr computes one band of chunk rows at a time: at most one band's model
    blocks are ever held, and the store equals the in-memory result."""
    case = datasets.translation(size=256, steps=2)
    a, b = case.first.chunk(64), case.last.chunk(64)
    frames, flow = perturbed_model.frames(2, a, b, progress=False), perturbed_model.flow(a, b, progress=False)
    assert frames.data.numblocks[-2:] == (4, 4)
    with dask.config.set(scheduler="threads", num_workers=2), BlocksHeld() as held:
        xlatent.save_result(frames, flow, tmp_path / "result.zarr", band=1, progress=False)
    assert [n for n in held.per_graph if n] == [4, 4, 4, 4]  # one band of 4 blocks per compute
    assert 1 <= held.most <= 4
    got_frames, got_flow = xlatent.open_result(tmp_path / "result.zarr")
    ref_frames = perturbed_model.frames(2, case.first, case.last, progress=False)
    ref_flow = perturbed_model.flow(case.first, case.last, progress=False)
    np.testing.assert_allclose(got_frames[..., 2:-2, 2:-2], ref_frames[..., 2:-2, 2:-2], atol=1e-4)
    scale = float(np.abs(ref_flow.u).max())
    np.testing.assert_allclose(got_flow.u[..., 2:-2, 2:-2], ref_flow.u[..., 2:-2, 2:-2], atol=1e-4 * scale)
    assert got_frames.rio.crs == case.first.rio.crs and got_flow.v.rio.crs == case.first.rio.crs


def test_flow_lazy_guard_is_the_in_memory_guard():
    """The do-no-harm guard (a field warming in place) judges the whole lazy scene as it judges the
    in-memory one: the same frames, not motion invented per chunk."""
    case = datasets.diurnal(size=64, steps=2)
    eager, _ = xlatent.interpolate(case.first, case.last, steps=2, method="flow", progress=False)
    lazy, _ = xlatent.interpolate(case.first.chunk(32), case.last.chunk(32), steps=2, method="flow", progress=False)
    got = lazy.compute(scheduler="threads")
    spread = float(eager.max() - eager.min())
    assert float(np.abs(got - eager).max()) < 0.01 * spread
