"""Dask-backed inputs: scenes larger than memory, on threads, a cluster or a GPU.

Inputs opened with ``chunks=`` (NetCDF, Zarr, GeoTIFF through rioxarray) are never loaded
whole:

- **statistics** (per-channel mean, spread and value range, validity checks) come from one
  pass of dask reductions;
- **training** cuts ``config.sample_patches`` windows at random (seeded) origins of the patch
  grid, each with ``config.prior_margin`` cells of context for its TV-L1 starting field, and
  computes only those (:func:`xlatent.train.train_windows`);
- **inference** runs one task per dask chunk, on the two images with an overlap that covers
  every layer: the starting field (``prior_margin``), F (its reach) and the rendering (the
  reach of E and D plus twice the largest displacement). Only the inputs cross chunk borders,
  and no intermediate layer is held for a neighbour; the overlaps are recomputed instead.
  Inside a chunk the model runs on tiles of ``config.tile`` cells, so the dask chunk size and
  the model's tile size are independent. ``frames`` and ``flow`` come back dask-backed (slices
  of the same tasks), one task per output chunk, in the chunks the model ran on;
  :func:`xlatent.io.to_zarr` writes them band by band (:func:`bands`): on one graph ending in
  one task, dask's ordering of overlapping chunks holds inputs and results across the scene.
- **the displacement bound** that sizes the rendering's overlap is set once, before the frames
  (measured, or ``config.max_displacement``); a chunk whose motion, computed again with the
  frames on other chunk borders, reaches farther is clamped to it with a warning naming the
  chunk: never an error after the work;
- **per-chunk starting fields** are checked against the scene's coarse motion
  (:func:`coarse_motion`, one pass of block means): one whose median displacement is more than
  two coarse cells away is ambiguous (repetitive texture) and replaced by the coarse motion.

``advection`` runs the same path (E and D the identity); ``flow`` runs
:func:`xlatent.methods.flow.flow` on each chunk with its overlap (:func:`flow`); ``linear``
runs as it is on dask arrays. ``ot`` is global (one transport plan over the scene): the inputs
are loaded, with a warning.

The model travels in the graph once, as a single task holding its weights (numpy arrays and a
JSON-able description; :class:`ModelState`, from :meth:`xlatent.engine.LatentCore.to_state`), which
each worker turns into a torch model once and keeps (:func:`core_for`, the latest few). Every
block sets torch's thread count from the dask worker's, and holds a per-device lock around GPU
work so that dask threads never share one GPU at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from xlatent import geo
from xlatent._dask import bands, torch_threads
from xlatent.config import LatentConfig
from xlatent.device import resolve_device
from xlatent.engine import LatentCore
from xlatent.exceptions import InputError
from xlatent.methods.base import MethodResult
from xlatent.methods.flow import check_sampling, render_guarded
from xlatent.motion import check_options, estimate, motion_space, svf
from xlatent.motion.guard import guarded
from xlatent.motion.svf import SVF_OPTIONS
from xlatent.normalise import physical
from xlatent.pair import Pair, check_common, check_size, usable_spread
from xlatent.patches import patch_origins

log = logging.getLogger(__name__)

_COARSE_SIDE = 512  # cells a side, at most, of the scene as the coarse motion estimate sees it


def is_lazy(obj: Any) -> bool:
    """Whether ``obj`` is a dask-backed DataArray."""
    return isinstance(obj, xr.DataArray) and obj.chunks is not None


# --------------------------------------------------------------------------------------------
# The pair: validation and statistics in one pass of dask reductions


def _as_dask(obj: xr.DataArray, grid: geo.Grid, like: da.Array | None = None) -> da.Array:
    order = ([grid.channel_dim] if grid.channel_dim is not None else []) + [grid.y_dim, grid.x_dim]
    obj = obj.transpose(*order)
    arr = obj.data
    if not isinstance(arr, da.Array):  # one input lazy, the other in memory
        arr = da.from_array(np.asarray(arr), chunks=like.chunks if like is not None else "auto")
    # packing and declared no-data undone as in memory (geo.decoded_values), lazily; float64:
    # finite values beyond float32's range stay finite, to be named
    arr = geo.decoded_data(obj, arr)
    if arr.ndim == 2:
        arr = arr[None]
    arr = arr.rechunk({0: -1})
    return arr if like is None else arr.rechunk(like.chunks)


_FILL_SAMPLE = 2**20  # cells sampled per input for the undeclared-fill-value check


def prepare(first: xr.DataArray, last: xr.DataArray, x_dim=None, y_dim=None, mean=None, std=None) -> Pair:
    """Validate a pair of which at least one is dask-backed; normalise it lazily.

    One pass over both inputs (dask reductions computed together) gives the per-channel mean
    and standard deviation (unless given), the value range for clipping and the validity checks
    (undeclared fill values judged on a regular sample of the cells).
    """
    geo.check_input(first, "first")
    geo.check_input(last, "last")
    grid = geo.describe(first, x_dim=x_dim, y_dim=y_dim)
    geo.check_pair(first, last, grid)
    a = _as_dask(first, grid) if is_lazy(first) else None
    b = _as_dask(last, grid, a)
    a = _as_dask(first, grid, b) if a is None else a
    check_size(a.shape)
    huge_a, huge_b = da.isfinite(a) & (abs(a) > geo.MAX_MAGNITUDE), da.isfinite(b) & (abs(b) > geo.MAX_MAGNITUDE)
    fa, fb = da.isfinite(a) & ~huge_a, da.isfinite(b) & ~huge_b
    va, vb = fa.all(axis=0), fb.all(axis=0)
    wanted = {
        "inf_a": da.isinf(a).sum(), "inf_b": da.isinf(b).sum(),
        "huge_a": huge_a.sum(), "huge_b": huge_b.sum(),
        "top_a": da.nanmax(da.where(huge_a, abs(a), np.nan)), "top_b": da.nanmax(da.where(huge_b, abs(b), np.nan)),
        "any_a": fa.any(), "any_b": fb.any(), "common": (va & vb).any(),
        "lo_a": da.nanmin(da.where(va[None], a, np.nan), axis=(1, 2)),
        "hi_a": da.nanmax(da.where(va[None], a, np.nan), axis=(1, 2)),
        "lo_b": da.nanmin(da.where(vb[None], b, np.nan), axis=(1, 2)),
        "hi_b": da.nanmax(da.where(vb[None], b, np.nan), axis=(1, 2)),
    }
    # undeclared fill values (input_checks.find_fill_value) on a regular sample of every other
    # cell or fewer (at most _FILL_SAMPLE cells: never a whole scene in one task): a sentinel
    # holds at least half a percent of the cells, in rims or blocks, so the sample has it
    step = max(2, int(np.ceil(np.sqrt(a.shape[-2] * a.shape[-1] / _FILL_SAMPLE))))
    wanted["sample_a"], wanted["sample_b"] = a[:, ::step, ::step], b[:, ::step, ::step]
    if mean is None:
        both = da.concatenate((a, b), axis=2)
        both = da.where(da.isfinite(both), both, np.nan).astype(np.float64)
        wanted["mean"] = da.nanmean(both, axis=(1, 2))
        wanted["std"] = da.nanstd(both, axis=(1, 2))
    with warnings.catch_warnings():  # all-NaN slices: checked just below
        warnings.simplefilter("ignore", RuntimeWarning)
        stats = dict(zip(wanted, dask.compute(*wanted.values())))
    for label, key, source in (("first", "a", first), ("last", "b", last)):
        geo.warn_infinite(label, int(stats[f"inf_{key}"]), stacklevel=4)
        geo.refuse_huge(label, int(stats[f"huge_{key}"]), [stats[f"top_{key}"]])
        geo.check_fills(np.where(np.isinf(stats[f"sample_{key}"]), np.nan, stats[f"sample_{key}"]), label, source)
        if not stats[f"any_{key}"]:
            raise InputError(
                f"{label} has no finite value (all NaN or inf): nothing to interpolate. "
                "Check the variable, the nodata value and the area you selected."
            )
    check_common(bool(stats["common"]))
    if mean is None:
        mean, std = stats["mean"], usable_spread(stats["std"])
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    lo = np.fmin(stats["lo_a"], stats["lo_b"])
    hi = np.fmax(stats["hi_a"], stats["hi_b"])

    def norm(x, valid):
        return da.where(valid[None], (x - mean[:, None, None]) / std[:, None, None], 0.0).astype(np.float32)

    return Pair(first if is_lazy(first) else last, grid, geo.scalar_time(last), norm(a, va), norm(b, vb),
                va, vb, mean, std, (lo, hi))


# --------------------------------------------------------------------------------------------
# The model in the graph: one task holding the weights, one torch model per worker process


@dataclass(frozen=True)
class ModelState:
    """What a worker needs to rebuild the model (:meth:`xlatent.engine.LatentCore.to_state`), the device
    it was asked for, and a token naming the weights: picklable, no torch objects."""

    meta: dict
    tensors: dict
    device: str
    token: str


_MAX_CORES = 4  # models kept per process: the latest ones (a notebook fits many)
_CORES: OrderedDict[str, Any] = OrderedDict()
_CORES_LOCK = threading.Lock()
_DEVICE_LOCKS: dict[str, threading.Lock] = {}
builds = 0  # models rebuilt from a ModelState in this process (tests check: once per worker)


def _keep(token: str, core) -> None:
    """Cache ``core`` under ``token`` (the caller holds the lock); the oldest beyond
    :data:`_MAX_CORES` are dropped (rebuilt from their state if a task needs them again)."""
    _CORES[token] = core
    _CORES.move_to_end(token)
    while len(_CORES) > _MAX_CORES:
        _CORES.popitem(last=False)


def state_of(core) -> ModelState:
    """The :class:`ModelState` of a fitted :class:`~xlatent.engine.LatentCore`; the core itself
    is kept so that tasks in this process use it without a copy."""
    meta, tensors = core.to_state()
    digest = hashlib.sha1()
    for key in sorted(tensors):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(tensors[key]).tobytes())
    digest.update(repr(sorted(core.config.to_dict().items())).encode())
    digest.update(np.concatenate((core.mean, core.std)).astype(np.float32).tobytes())
    token = digest.hexdigest()[:16]
    state = ModelState(meta, tensors, getattr(core, "requested_device", "auto"), token)
    with _CORES_LOCK:
        _keep(token, core)
    return state


def core_for(state: ModelState):
    """The torch model of ``state`` in this process, built once and kept."""
    global builds
    with _CORES_LOCK:
        core = _CORES.get(state.token)
        if core is None:
            core = LatentCore.from_state(state.meta, state.tensors, state.device)
            builds += 1
        _keep(state.token, core)
        return core


def model_task(core) -> dask.delayed:
    """The model as one dask task (its key names the weights' hash): blocks depend on it, so
    the weights travel to each worker once instead of being pickled into every task."""
    state = state_of(core)
    return dask.delayed(state, name=f"xlatent-model-{state.token}", traverse=False)


@contextlib.contextmanager
def _task_context(core, device=None):
    """Torch threads for this task, and the device's lock when it is a GPU: ``core``'s device, or
    ``device`` when ``core`` is None (both None: threads only)."""
    import torch

    n = torch_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    dev = core.device if core is not None else torch.device(device or "cpu")
    if dev.type == "cpu":
        yield
        return
    with _CORES_LOCK:
        lock = _DEVICE_LOCKS.setdefault(str(dev), threading.Lock())
    with lock:
        yield


# --------------------------------------------------------------------------------------------
# Chunking and overlaps


def _round_up(n: int, multiple: int) -> int:
    return -(-int(n) // multiple) * multiple


def _axis_chunks(chunks: tuple[int, ...], size: int, depth: int, multiple: int) -> tuple[int, ...]:
    """Regular chunks near the given ones, multiples of ``multiple`` (the U-Nets' pooling grid
    stays aligned across chunks), no smaller than ``depth`` (dask's overlap needs it), and a last
    chunk no larger than the others (Zarr's rule, so the outputs store as they come)."""
    target = _round_up(max(int(np.median(chunks)), depth, multiple), multiple)
    for side in range(target, size, multiple):
        full, rest = divmod(size, side)
        if rest == 0 or rest >= depth:
            return (side,) * full + ((rest,) if rest else ())
    return (size,)


def _normalise(x: da.Array, depth: int, multiple: int) -> da.Array:
    rows = _axis_chunks(x.chunks[1], x.shape[1], depth, multiple)
    cols = _axis_chunks(x.chunks[2], x.shape[2], depth, multiple)
    return x.rechunk(((x.shape[0],), rows, cols))


def _overlap(x: da.Array, depth: int) -> da.Array:
    """``x`` with ``depth`` cells of its neighbours (edge values at the scene's borders) around
    each chunk. An axis shorter than ``depth`` is one chunk, padded instead."""
    short = {ax: depth for ax in (1, 2) if x.shape[ax] < depth}
    if short:
        x = da.pad(x, [(0, 0)] + [(short.get(ax, 0),) * 2 for ax in (1, 2)], mode="edge")
        x = x.rechunk({ax: -1 for ax in short})
    deep = {0: 0, 1: 0 if 1 in short else depth, 2: 0 if 2 in short else depth}
    return da.overlap.overlap(x, depth=deep, boundary={0: "none", 1: "nearest", 2: "nearest"})


def _map(fn, x: da.Array, depth: int, leading: tuple, *args, **kwargs) -> da.Array:
    """``fn`` on every chunk of ``x`` with ``depth`` cells of context; ``fn`` returns the chunk's
    interior only, with leading axes ``leading`` (chunk sizes)."""
    x = x.rechunk({0: -1})
    ovl = _overlap(x, depth)
    meta = np.empty((0,) * (len(leading) + 2), dtype=np.float32)
    new_axis = list(range(len(leading) - 1))
    return da.map_blocks(fn, ovl, *args, chunks=tuple((n,) for n in leading) + x.chunks[1:],
                         new_axis=new_axis or None, dtype=np.float32, meta=meta, **kwargs)


def largest(x: da.Array) -> float:
    """``max |x|`` over a ``(..., row, column)`` dask array, one band of chunk rows at a time."""
    per_row = int(np.prod(x.numblocks)) // len(x.chunks[-2])
    return max(float(da.abs(x[..., lo:hi, :]).max().compute()) for lo, hi in bands(x.chunks[-2], per_row))


# --------------------------------------------------------------------------------------------
# The scene's coarse motion: the reference that per-chunk motion is checked against


@dataclass(frozen=True)
class CoarseMotion:
    """The whole scene's motion estimated on ``factor x factor`` block means: ``field``
    ``(2, h, w)`` on the coarse grid, in fine grid cells (column, row)."""

    field: np.ndarray
    factor: int
    shape: tuple[int, int]
    share: np.ndarray | None = None  # the guard's share of transport (coarse grid), None: transport everywhere

    @property
    def tolerance(self) -> float:
        """Two coarse cells (two cells at least): displacements closer than this cannot be told
        apart on the coarse grid; a per-chunk estimate farther away disagrees with the scene at
        a scale the coarse estimate resolves."""
        return 2.0 * self.factor

    @property
    def largest(self) -> float:
        """The longest displacement component of the coarse field, cells."""
        return float(np.abs(self.field).max())

    def over(self, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        """The field ``(2, r1 - r0, c1 - c0)`` on fine cells ``rows``, ``cols`` (bilinear between
        coarse cell centres; edge values beyond the scene, as the chunks' overlaps)."""
        return self._on(self.field, rows, cols)

    def share_over(self, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray | None:
        """The guard's share of transport ``(r1 - r0, c1 - c0)`` on fine cells ``rows``, ``cols``
        (:func:`xlatent.motion.guard.guarded`), None where the scene's change is transport."""
        return None if self.share is None else self._on(self.share[None], rows, cols)[0]

    def _on(self, maps: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        from scipy.ndimage import map_coordinates

        k = self.factor
        r = (np.arange(*rows) + 0.5) / k - 0.5
        c = (np.arange(*cols) + 0.5) / k - 0.5
        grid = np.meshgrid(r, c, indexing="ij")
        return np.stack([map_coordinates(f, grid, order=1, mode="nearest") for f in maps]).astype(np.float32)

    def gap(self, field: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> tuple[float, np.ndarray]:
        """Distance (cells) between the median displacement of ``field`` ``(2, h, w)`` on fine
        cells ``rows``, ``cols`` and that of the coarse field, over the cells inside the scene
        (beyond it, edge-padded images give no motion to compare); and the coarse field there."""
        ref = self.over(rows, cols)
        r = slice(max(0, -rows[0]), min(rows[1], self.shape[0]) - rows[0])
        c = slice(max(0, -cols[0]), min(cols[1], self.shape[1]) - cols[0])
        inside, expected = field[:, r, c].reshape(2, -1), ref[:, r, c].reshape(2, -1)
        mid = np.median(inside, axis=1) - np.median(expected, axis=1)
        return float(np.hypot(*mid)), ref


_COARSE_CACHE: dict[tuple, CoarseMotion] = {}


def coarse_motion(first: da.Array, last: da.Array, estimator: str, transform: str, mean, std,
                  svf_weight: float | None = None, device: Any = "cpu", guard: bool = False) -> CoarseMotion:
    """The motion of the whole scene estimated on block means of at most ``_COARSE_SIDE``
    cells a side (one pass of dask reductions, then ``estimator`` in memory, ``"svf"`` with
    ``svf_weight`` on ``device``); kept per pair. A scene no larger than that is estimated at
    full resolution: exactly the in-memory estimate. With ``guard``, the do-no-harm guard
    (:func:`xlatent.motion.guard.guarded`) judges the whole scene there, as in memory."""
    h, w = first.shape[-2:]
    k = max(1, -(-max(h, w) // _COARSE_SIDE))
    key = (first.name, last.name, estimator, transform, k, svf_weight, guard)
    if key in _COARSE_CACHE:
        return _COARSE_CACHE[key]
    pair = da.concatenate((first, last), axis=0)
    if k > 1:
        pair = da.pad(pair, ((0, 0), (0, -h % k), (0, -w % k)), mode="edge")
        pair = pair.rechunk({1: _round_up(pair.chunksize[1], k), 2: _round_up(pair.chunksize[2], k)})
        pair = da.coarsen(np.mean, pair, {1: k, 2: k})
    small = np.asarray(pair.compute(), dtype=np.float32)
    c = first.shape[0]

    def fit(a, b):
        return estimate(a, b, estimator, transform, mean=mean, std=std, svf_weight=svf_weight, device=device)

    field, share = fit(small[:c], small[c:]), None
    if guard:
        field, _, share = guarded(small[:c], small[c:], field, fit,
                                  lambda a, b: motion_space(physical(a, mean, std), physical(b, mean, std), transform))
    coarse = CoarseMotion(np.ascontiguousarray(k * field, dtype=np.float32), k, (int(h), int(w)), share)
    if len(_COARSE_CACHE) > 8:
        _COARSE_CACHE.clear()
    _COARSE_CACHE[key] = coarse
    log.info("coarse motion of the scene (%d x %d block means): largest %.1f cells", k, k, coarse.largest)
    return coarse


def _coarse_task(coarse: CoarseMotion | None):
    """The coarse field as one task (blocks refer to it by key, it is not copied into each)."""
    if coarse is None:
        return None
    token = hashlib.sha1(coarse.field.tobytes()).hexdigest()[:16]
    return dask.delayed(coarse, name=f"xlatent-coarse-{token}", traverse=False)


def _checked_start(field: np.ndarray, coarse: CoarseMotion | None, rows, cols, what: str | None) -> tuple[np.ndarray, bool]:
    """``field`` ``(2, h, w)`` on fine cells ``rows``, ``cols``, or the scene's coarse motion
    there when their median displacements differ by more than ``coarse.tolerance`` (an
    ambiguous estimate: repetitive texture, too little context). ``what`` names the piece in a
    warning (None: no warning)."""
    if coarse is None:
        return field, False
    gap, ref = coarse.gap(field, rows, cols)
    if gap <= coarse.tolerance:
        return field, False
    message = (
        f"xlatent: the starting field of {what} differs from the scene's coarse motion by {gap:.1f} cells "
        f"(median displacement; more than {coarse.tolerance:.0f}, two cells of the {coarse.factor}x"
        f"{coarse.factor} coarse grid): ambiguous motion there (repetitive texture?), so the coarse "
        "motion is used instead. To silence: warnings.filterwarnings('ignore', 'xlatent: the starting field')."
    )
    log.info(message)
    if what is not None:
        warnings.warn(message, UserWarning, stacklevel=2)
    return ref, True


def _region(block_id, edges) -> tuple[tuple[int, int], tuple[int, int]]:
    """Rows and columns (scene cells) of a chunk's interior, from its ``block_id`` and the
    chunk ``edges`` per axis."""
    (rows, cols), i, j = edges, block_id[-2], block_id[-1]
    return (rows[i], rows[i + 1]), (cols[j], cols[j + 1])


def _widen(span: tuple[int, int], size: int) -> tuple[int, int]:
    """``span`` widened symmetrically to ``size`` cells (a block: the chunk plus its overlap)."""
    extra = (size - (span[1] - span[0])) // 2
    return span[0] - extra, span[0] - extra + size


def _clamped(fields: np.ndarray, bound: float, where: str, source: str) -> np.ndarray:
    """``fields`` ``(N, 2, h, w)`` with every displacement longer than ``bound`` (largest
    component) scaled down to it, and a warning saying where and by how much."""
    reach = np.abs(fields).max(axis=1, keepdims=True)
    over = reach > bound
    if not over.any():
        return fields
    peak = float(reach.max())
    warnings.warn(
        f"xlatent: in {where} the motion reaches {peak:.1f} cells, more than the {bound:.1f} cells "
        f"that the overlap between chunks allows ({source}): clamped to {bound:.1f} cells in "
        f"{int(over.sum())} cell(s) of its {fields.shape[0]} stage field(s). Set max_displacement= "
        f"above {np.ceil(peak):.0f} (more overlap, more work) to keep it, or silence with "
        "warnings.filterwarnings('ignore', 'xlatent: in chunk').",
        UserWarning,
        stacklevel=2,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(over, bound / reach, 1.0)
    return (fields * scale).astype(fields.dtype)


def _describe(rows, cols) -> str:
    return f"chunk rows {rows[0]}:{rows[1]}, columns {cols[0]}:{cols[1]}"


# --------------------------------------------------------------------------------------------
# Block functions (run in dask tasks; numpy in, numpy out)


def _starting_field(a: np.ndarray, b: np.ndarray, motion: tuple) -> np.ndarray:
    """The configured starting field of normalised ``a`` -> ``b``; ``motion`` is
    ``(mean, std, estimator, transform, coarsen, device)`` (see :meth:`LatentCore.prior`)."""
    mean, std, estimator, transform, coarsen, device = motion
    with _task_context(None, device):
        return estimate(a, b, estimator, transform, mean=mean, std=std, coarsen=coarsen, device=device)


def _motion(config: LatentConfig, mean, std, device: str = "cpu") -> tuple:
    return (mean, std, config.flow_prior, config.motion_transform, config.prior_coarsen or 1, device)


def _block_fields(core, block: np.ndarray, c: int, depth: int, margin: int, coarse=None, rows=None, cols=None,
                  report: bool = False) -> np.ndarray:
    """Stage fields ``(N, 2, h, w)`` of ``block`` less ``depth + margin`` cells each side:
    the starting field on the whole block (``margin`` cells of context beyond what F needs;
    the scene's ``coarse`` motion instead where it disagrees, see :func:`_checked_start`),
    then F with ``depth`` cells of context. ``rows``, ``cols``: the chunk's interior in the
    scene; ``report``: warn when the starting field is replaced."""
    if coarse is None:
        prior = core.prior(block[:c], block[c : 2 * c])
    else:
        span = _widen(rows, block.shape[-2]), _widen(cols, block.shape[-1])
        prior = _prior_in_scene(core, block, c, span, coarse.shape)
        prior, _ = _checked_start(prior, coarse, *span, _describe(rows, cols) if report else None)
    prior = None if prior is None else _crop(prior, margin)
    inner = _crop(block[: 2 * c], margin)
    with _task_context(core):
        return core.fields(inner[:c], inner[c:], prior=prior, halo=depth, context=True)


def _prior_in_scene(core, block: np.ndarray, c: int, span, shape) -> np.ndarray:
    """The starting field of ``block`` (scene cells ``span``: rows, columns) estimated on its
    part inside the scene and extended with edge values: the edge-padded images beyond the
    scene have no motion of their own, and their streaks can mislead the whole estimate."""
    inside = [slice(max(0, -lo), min(hi, n) - lo) for (lo, hi), n in zip(span, shape)]
    prior = core.prior(block[:c, inside[0], inside[1]], block[c : 2 * c, inside[0], inside[1]])
    pads = [(s.start, size - s.stop) for s, size in zip(inside, block.shape[-2:])]
    return np.pad(prior, [(0, 0)] + pads, mode="edge") if any(map(any, pads)) else prior


def _crop(x: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(x[..., n : x.shape[-2] - n, n : x.shape[-1] - n]) if n else x


def _fields_block(block: np.ndarray, state: ModelState, channels: int, depth: int, margin: int, coarse, edges,
                  block_id=None) -> np.ndarray:
    rows, cols = _region(block_id, edges)
    fields = _block_fields(core_for(state), block, channels, depth, margin, coarse, rows, cols)
    return fields.reshape(-1, *fields.shape[-2:])


def _frames_block(block, state: ModelState, channels: int, depth: int, fields_depth: int, margin: int, fractions,
                  exact_endpoints, blend, coarse, edges, bound: float, source: str, block_id=None):
    """Frames ``(K * C)`` and stage fields ``(2 N)`` of the chunk, stacked, from the two images
    with ``depth + fields_depth + margin`` cells of context: every layer runs inside the task, so
    only the inputs cross chunk borders. ``depth`` allows displacements up to ``bound`` cells
    (``source`` says where that bound came from): longer ones are clamped to it, with a warning
    (never an error after the work)."""
    core = core_for(state)
    c = channels
    rows, cols = _region(block_id, edges)
    fields = _block_fields(core, block, c, fields_depth, margin, coarse, rows, cols, report=True)
    if np.abs(fields).max() > bound:
        fields = _clamped(fields, bound, _describe(rows, cols), source)
    pair = _crop(block, fields_depth + margin)
    with _task_context(core):
        frames = core.frames(pair[:c], pair[c:], fields, fractions, exact_endpoints, False, blend,
                             halo=depth, context=True)
    fields = _crop(fields, depth)
    return np.concatenate((frames.reshape(-1, *frames.shape[-2:]), fields.reshape(-1, *fields.shape[-2:])))


# --------------------------------------------------------------------------------------------
# Training and inference on dask arrays (the signatures of LatentCore's methods)


def _training_window(window: np.ndarray, r: int, q: int, patch, channels: int, motion: tuple | None,
                     coarse: CoarseMotion | None = None, rows=None, cols=None) -> tuple[np.ndarray, bool]:
    """One training patch ``[first, last, mask(, prior)]`` cut from its window with context
    (scene cells ``rows``, ``cols``), and whether its starting field was replaced by the
    scene's ``coarse`` motion (see :func:`_checked_start`)."""
    ph, pw = patch
    replaced = False
    if motion is not None:
        prior = _starting_field(window[:channels], window[channels : 2 * channels], motion)
        prior, replaced = _checked_start(prior, coarse, rows, cols, None)
        window = np.concatenate((window, prior), axis=0)
    return np.ascontiguousarray(window[:, r : r + ph, q : q + pw]), replaced


def training_windows(first: da.Array, last: da.Array, mask: da.Array, patch, stride, config: LatentConfig,
                     seed: int | None, mean=None, std=None, device: str = "cpu") -> np.ndarray:
    """``config.sample_patches`` training patches ``(P, L, h, w)``, computed from the dask arrays
    (their starting fields fitted on the torch ``device``).

    Origins are drawn without replacement (seeded) from the grid :func:`xlatent.train.train`
    uses; when the grid has no more origins than wanted, all of them are taken in order, so the
    training matches the in-memory one but for the starting field, computed per patch with
    ``config.prior_margin`` cells of context instead of on the whole scene.
    """
    h, w = first.shape[-2:]
    origins = patch_origins((h, w), patch, stride)
    if len(origins) > config.sample_patches:
        rng = np.random.default_rng(None if seed is None else [seed, 7])
        origins = origins[np.sort(rng.choice(len(origins), config.sample_patches, replace=False))]
    with_prior = bool(config.flow_prior)
    margin = config.prior_margin if with_prior else 0
    c = first.shape[0]
    motion = coarse = None
    if with_prior:
        mean = np.zeros(c, np.float32) if mean is None else mean
        std = np.ones(c, np.float32) if std is None else std
        motion = _motion(config, mean, std, device)
        coarse = coarse_motion(first, last, config.flow_prior, config.motion_transform, mean, std, device=device)
    layers = da.concatenate((first, last, mask[None].astype(np.float32)), axis=0)
    tasks, reference = [], _coarse_task(coarse)
    for r, q in origins:
        r0, q0 = max(r - margin, 0), max(q - margin, 0)
        r1, q1 = min(r + patch[0] + margin, h), min(q + patch[1] + margin, w)
        cut = dask.delayed(_training_window, pure=True)
        tasks.append(cut(layers[:, r0:r1, q0:q1], r - r0, q - q0, patch, c, motion, reference, (r0, r1), (q0, q1)))
    windows, replaced = zip(*dask.compute(*tasks))
    if any(replaced):
        warnings.warn(
            f"xlatent: the starting field of {sum(replaced)} of {len(replaced)} training windows differs from "
            f"the scene's coarse motion by more than {coarse.tolerance:.0f} cells (median displacement): "
            "ambiguous motion there (repetitive texture?), so those windows train on the coarse motion. "
            "To silence: warnings.filterwarnings('ignore', 'xlatent: the starting field').",
            UserWarning,
            stacklevel=3,
        )
    return np.stack(windows)


def fit_core(core, first: da.Array, last: da.Array, mask: da.Array, patch, stride, seed=0, progress=True):
    """Train ``core`` on windows sampled from the dask arrays; returns the history."""
    windows = training_windows(first, last, mask, patch, stride, core.config, seed, core.mean, core.std,
                               str(core.device))
    log.info("training on %d patches cut from a %s scene", len(windows), first.shape)
    return core.fit_windows(windows, seed=seed, progress=progress)


def _depths(core) -> tuple[int, int]:
    """Overlaps of the field layer: F's reach, and the starting field's extra context."""
    multiple = core.model.alignment
    margin = _round_up(core.config.prior_margin, multiple) if core.config.flow_prior else 0
    return _round_up(core.fields_halo(), multiple), margin


def _edges(x: da.Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Chunk edges (scene cells) of ``x`` along rows and columns."""
    return tuple(tuple(np.concatenate(([0], np.cumsum(c))).astype(int).tolist()) for c in x.chunks[-2:])


def _core_coarse(core, first: da.Array, last: da.Array) -> CoarseMotion | None:
    cfg = core.config
    if not cfg.flow_prior:
        return None
    return coarse_motion(first, last, cfg.flow_prior, cfg.motion_transform, core.mean, core.std,
                         device=str(core.device))


def fields(core, first: da.Array, last: da.Array) -> da.Array:
    """Stage fields ``(N, 2, H, W)`` of the fitted ``core``, lazily, chunk by chunk (starting
    field and F in one task per chunk)."""
    cfg = core.config
    depth, margin = _depths(core)
    stack = _normalise(da.concatenate((first, last), axis=0), depth + margin, core.model.alignment)
    coarse = _coarse_task(_core_coarse(core, first, last))
    out = _map(_fields_block, stack, depth + margin, (2 * cfg.stages,), model_task(core), first.shape[0], depth, margin,
               coarse, _edges(stack))
    return out.reshape(cfg.stages, 2, *out.shape[-2:])


def frames(core, first: da.Array, last: da.Array, fractions, exact_endpoints=True, blend="transport",
           flow: da.Array | None = None) -> tuple[da.Array, da.Array]:
    """Frames ``(K, C, H, W)`` at ``fractions`` and the stage fields ``(N, 2, H, W)``, lazily,
    from one task per chunk that runs the starting field, F and the rendering.

    Only the two images cross chunk borders (no intermediate layer is shared). Their
    overlap is the reach of E and D plus twice the largest displacement, plus what the fields
    need: ``config.max_displacement`` when set, else measured in one pass over ``flow`` (the
    fields of :func:`fields` when not given), computed then and again with the frames.

    The bound is set once, before the frames: a chunk whose motion, computed again with the
    frames (on other chunk borders), reaches farther than the overlap allows is clamped to it
    with a warning naming the chunk, never an error after the work. Per chunk, a starting
    field far from the scene's coarse motion is replaced by it (:func:`_checked_start`).
    """
    cfg, c = core.config, first.shape[0]
    multiple = core.model.alignment
    bound, source = cfg.max_displacement, f"config.max_displacement={cfg.max_displacement}"
    coarse = _core_coarse(core, first, last)
    if bound is None:
        flow = fields(core, first, last) if flow is None else flow
        bound = largest(flow)
        source = f"the largest displacement measured before the frames, {bound:.1f} cells"
        if coarse is not None:  # the frames' chunks see other windows: their starting fields differ
            bound += coarse.tolerance
            source += f", plus {coarse.tolerance:.0f} for starting fields estimated on other chunk borders"
    depth = _round_up(core.frames_halo(np.array([bound], dtype=np.float32)), multiple)
    allowed = (depth - core.frames_halo(np.zeros(1, dtype=np.float32))) // 2  # >= ceil(bound)
    fields_depth, margin = _depths(core)
    total = depth + fields_depth + margin
    stack = _normalise(da.concatenate((first, last), axis=0), total, multiple)
    fractions = np.asarray(fractions, dtype=float)
    k, n = len(fractions), cfg.stages
    coarse = _coarse_task(coarse)
    out = _map(_frames_block, stack, total, (k * c + 2 * n,), model_task(core), c, depth, fields_depth, margin,
               fractions, exact_endpoints, blend, coarse, _edges(stack), float(allowed), source)
    frames_out = out[: k * c].reshape(k, c, *out.shape[-2:])
    return frames_out, out[k * c :].reshape(n, 2, *out.shape[-2:])


def latent(first, last, mask, fractions, *, config: LatentConfig, patch, stride, device="auto", seed=0,
           progress=True, exact_endpoints=True, blend="transport", mean=None, std=None, **_) -> MethodResult:
    """The ``latent`` method on dask arrays (see :func:`xlatent.methods.latent.latent`)."""
    core = LatentCore(first.shape[0], config, device, seed, mean, std)
    history = fit_core(core, first, last, mask, patch, stride, seed=seed, progress=progress)
    out, flow = frames(core, first, last, fractions, exact_endpoints, blend)
    info = {"device": str(core.device), "train_seconds": history.seconds, "stopped": history.stopped}
    return MethodResult(frames=out, fields=flow, info=info, fitted=core)


def advection(first, last, mask, fractions, *, config: LatentConfig, **kwargs) -> MethodResult:
    """The ``advection`` method on dask arrays: the latent model with E and D the identity
    (see :func:`xlatent.methods.advection.advection`), chunk by chunk as :func:`latent`."""
    return latent(first, last, mask, fractions, config=replace(config, codec="identity", latent_channels=0), **kwargs)


# --------------------------------------------------------------------------------------------
# The ``flow`` method, chunk by chunk


def _flow_block(block: np.ndarray, channels: int, fractions, mean, std, motion: str, transform: str, depth: int,
                coarse: CoarseMotion, edges, svf_weight=None, device="cpu", sampling="auto",
                block_id=None) -> np.ndarray:
    """Frames ``(K * C)`` and the field ``(2)`` of the ``flow`` method on the chunk with ``depth``
    cells of context, stacked, interior only.

    The motion is the scene's (``coarse``, estimated once) over the block: as it is when the
    scene was estimated at full resolution (``coarse.factor`` 1), else refined on the block
    (``"svf"``: the stationary velocity fitted from the coarse one; other estimators: estimated
    on the block, warned about when it disagrees with the coarse one). Frames as the in-memory
    method renders them (:func:`xlatent.methods.flow.render`). Warns (says where) when the
    motion leaves the overlap."""
    c = channels
    rows, cols = _region(block_id, edges)
    span = _widen(rows, block.shape[-2]), _widen(cols, block.shape[-1])
    where = _describe(rows, cols)
    a, b = block[:c], block[c:]

    def seen(x, y):
        return motion_space(physical(x, mean, std), physical(y, mean, std), transform)

    with _task_context(None, device):
        field, share = coarse.over(*span), coarse.share_over(*span)
        # the scene's guard (coarse_motion): the source's share of the change is blended, not moved
        source = None if share is None else ((1.0 - share) * (b - a)).astype(np.float32)
        target = b if source is None else b - source
        if coarse.factor > 1 and motion == "svf":
            weight = SVF_OPTIONS["weight"] if svf_weight is None else float(svf_weight)
            field = svf.refine(*seen(a, target), field, weight=weight, device=device)
        elif coarse.factor > 1:
            field = estimate(a, target, motion, transform, mean=mean, std=std)
            gap, _ = coarse.gap(_crop(field, depth), rows, cols)
            if gap > coarse.tolerance:
                warnings.warn(
                    f"xlatent: in {where} the flow method's motion differs from the scene's coarse motion by "
                    f"{gap:.1f} cells (median displacement; more than {coarse.tolerance:.0f}): ambiguous motion there "
                    "(repetitive texture?), its frames may be wrong. Silence with "
                    "warnings.filterwarnings('ignore', 'xlatent: in chunk').",
                    UserWarning,
                    stacklevel=2,
                )
        if share is not None and coarse.factor > 1:  # refined without the source: shrunk as in memory
            field = (field * share).astype(np.float32)
        frames, _ = render_guarded(a, b, field, fractions, motion, device, seen=seen, sampling=sampling,
                                   source=source, share=share, with_confidence=False)
    field = _crop(field, depth)
    peak = float(np.abs(field).max())
    if peak > depth:
        warnings.warn(
            f"xlatent: in {where} the flow method's motion reaches {peak:.1f} cells, more than the {depth}-cell "
            "overlap between chunks: frames near the chunk's edges sample the overlap's edge instead. Use "
            "larger chunks, or silence with warnings.filterwarnings('ignore', 'xlatent: in chunk').",
            UserWarning,
            stacklevel=2,
        )
    frames = _crop(frames, depth)
    return np.concatenate((frames.reshape(-1, *frames.shape[-2:]), field)).astype(np.float32)


def flow(first, last, mask, fractions, *, mean, std, config: LatentConfig | None = None, motion: str = "svf",
         motion_transform: str = "auto", svf_weight: float | None = None, guard: bool = True, sampling: str = "auto",
         device: Any = "auto", **_) -> MethodResult:
    """The ``flow`` method on dask arrays, with its in-memory defaults and options
    (:func:`xlatent.methods.flow.flow`): the motion estimated once on the whole scene, coarsened
    to at most ``_COARSE_SIDE`` cells a side (:func:`coarse_motion`), refined on each chunk with
    ``config.prior_margin`` cells of context when the scene was coarsened, and the frames
    rendered per chunk with an overlap of the largest displacement the rendering can reach (set
    once, before the work, from the scene's motion plus its tolerance). ``guard`` judges the
    whole scene where its motion is estimated (:func:`coarse_motion`); ``sampling`` acts per
    chunk, with the confidence of the chunk's motion."""
    check_options(motion, motion_transform)
    check_sampling(sampling)
    config = config or LatentConfig()
    dev = str(resolve_device(device))
    c = first.shape[0]
    coarse = coarse_motion(first, last, motion, motion_transform, mean, std, svf_weight, dev, guard)
    margin = int(config.prior_margin) if coarse.factor > 1 else 0  # a full-resolution scene estimate needs no refit
    depth = margin + int(np.ceil(coarse.largest + coarse.tolerance)) + 1
    stack = _normalise(da.concatenate((first, last), axis=0), depth, 1)
    fractions = np.asarray(fractions, dtype=float)
    k = len(fractions)
    out = _map(_flow_block, stack, depth, (k * c + 2,), c, fractions, np.asarray(mean, np.float32),
               np.asarray(std, np.float32), motion, motion_transform, depth, _coarse_task(coarse), _edges(stack),
               svf_weight, dev, sampling)
    frames_out = out[: k * c].reshape(k, c, *out.shape[-2:])
    return MethodResult(frames=frames_out, fields=out[k * c :].reshape(1, 2, *out.shape[-2:]),
                        info={"motion": motion, "device": dev})

