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

The model travels in the graph once, as a single task holding its weights (numpy arrays and a
JSON-able config; :class:`ModelSpec`), which each worker turns into a torch model once and keeps
(:func:`core_for`). Every block sets torch's thread count from the dask worker's, and holds a
per-device lock around GPU work so that dask threads never share one GPU at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from xlatent import geo
from xlatent.config import LatentConfig
from xlatent.exceptions import InputError
from xlatent.methods import MethodResult

log = logging.getLogger(__name__)

# methods that run chunk by chunk; others load lazy inputs (with a warning)
SUPPORTED_METHODS = ("latent", "linear")
_MIN_SIZE = 16


def is_lazy(obj: Any) -> bool:
    """Whether ``obj`` is a dask-backed DataArray."""
    return isinstance(obj, xr.DataArray) and obj.chunks is not None


# --------------------------------------------------------------------------------------------
# The pair: validation and statistics in one pass of dask reductions


@dataclass
class LazyPair:
    """The dask counterpart of :class:`xlatent.api._Pair` (same attributes, dask arrays)."""

    source: xr.DataArray
    grid: geo.Grid
    t_last: Any
    first: da.Array
    last: da.Array
    valid_first: da.Array
    valid_last: da.Array
    mean: np.ndarray
    std: np.ndarray
    value_range: tuple[np.ndarray, np.ndarray]

    @property
    def mask(self) -> da.Array:
        return self.valid_first & self.valid_last


def _as_dask(obj: xr.DataArray, grid: geo.Grid, like: da.Array | None = None) -> da.Array:
    order = ([grid.channel_dim] if grid.channel_dim is not None else []) + [grid.y_dim, grid.x_dim]
    arr = obj.transpose(*order).data
    if not isinstance(arr, da.Array):  # one input lazy, the other in memory
        arr = da.from_array(np.asarray(arr), chunks=like.chunks if like is not None else "auto")
    arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    arr = arr.rechunk({0: -1})
    return arr if like is None else arr.rechunk(like.chunks)


def prepare(first: xr.DataArray, last: xr.DataArray, x_dim=None, y_dim=None, mean=None, std=None) -> LazyPair:
    """Validate a pair of which at least one is dask-backed; normalise it lazily.

    One pass over both inputs (dask reductions computed together) gives the per-channel mean
    and standard deviation (unless given), the value range for clipping and the validity checks.
    """
    geo.check_input(first, "first")
    geo.check_input(last, "last")
    grid = geo.describe(first, x_dim=x_dim, y_dim=y_dim)
    geo.check_pair(first, last, grid)
    a = _as_dask(first, grid) if is_lazy(first) else None
    b = _as_dask(last, grid, a)
    a = _as_dask(first, grid, b) if a is None else a
    if min(a.shape[-2:]) < _MIN_SIZE:
        raise InputError(
            f"Image of {a.shape[-2]} x {a.shape[-1]} cells is too small: xlatent needs at least "
            f"{_MIN_SIZE} x {_MIN_SIZE}. Select a larger area."
        )
    fa, fb = da.isfinite(a), da.isfinite(b)
    va, vb = fa.all(axis=0), fb.all(axis=0)
    wanted = {
        "any_a": fa.any(), "any_b": fb.any(), "common": (va & vb).any(),
        "lo_a": da.nanmin(da.where(va[None], a, np.nan), axis=(1, 2)),
        "hi_a": da.nanmax(da.where(va[None], a, np.nan), axis=(1, 2)),
        "lo_b": da.nanmin(da.where(vb[None], b, np.nan), axis=(1, 2)),
        "hi_b": da.nanmax(da.where(vb[None], b, np.nan), axis=(1, 2)),
    }
    if mean is None:
        both = da.concatenate((a, b), axis=2)
        both = da.where(da.isfinite(both), both, np.nan).astype(np.float64)
        wanted["mean"] = da.nanmean(both, axis=(1, 2))
        wanted["std"] = da.nanstd(both, axis=(1, 2))
    with warnings.catch_warnings():  # all-NaN slices: checked just below
        warnings.simplefilter("ignore", RuntimeWarning)
        stats = dict(zip(wanted, dask.compute(*wanted.values())))
    for label, key in (("first", "any_a"), ("last", "any_b")):
        if not stats[key]:
            raise InputError(
                f"{label} has no finite value (all NaN or inf): nothing to interpolate. "
                "Check the variable, the nodata value and the area you selected."
            )
    if not stats["common"]:
        raise InputError(
            "The two images have no valid cell in common (NaN where the other has data): "
            "nothing to learn the motion from. Check that they cover the same area."
        )
    if mean is None:
        mean, std = stats["mean"], stats["std"]
        std = np.where(std > 0, std, 1.0)
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    lo = np.fmin(stats["lo_a"], stats["lo_b"])
    hi = np.fmax(stats["hi_a"], stats["hi_b"])

    def norm(x, valid):
        return da.where(valid[None], (x - mean[:, None, None]) / std[:, None, None], 0.0).astype(np.float32)

    return LazyPair(first if is_lazy(first) else last, grid, geo.scalar_time(last), norm(a, va), norm(b, vb),
                    va, vb, mean, std, (lo, hi))


def load_unless_supported(method: str, first, last):
    """Inputs as given when ``method`` runs chunk by chunk, else loaded (with a warning)."""
    if method in SUPPORTED_METHODS or not (is_lazy(first) or is_lazy(last)):
        return first, last
    warnings.warn(
        f"method={method!r} has no chunked (dask) path: the inputs are loaded into memory. "
        f"Use method='latent' for scenes larger than memory.",
        UserWarning,
        stacklevel=3,
    )
    return first.compute(), last.compute()


# --------------------------------------------------------------------------------------------
# The model in the graph: one task holding the weights, one torch model per worker process


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to rebuild the model: picklable, no torch objects."""

    channels: int
    config: dict
    state: dict
    device: str
    token: str
    mean: tuple = ()
    std: tuple = ()


_CORES: dict[str, Any] = {}
_CORES_LOCK = threading.Lock()
_DEVICE_LOCKS: dict[str, threading.Lock] = {}
builds = 0  # models rebuilt from a ModelSpec in this process (tests check: once per worker)


def spec_of(core) -> ModelSpec:
    """The :class:`ModelSpec` of a fitted :class:`~xlatent.methods.latent.LatentCore`; the core
    itself is registered so that tasks in this process use it without a copy."""
    state = {k: v.detach().cpu().numpy() for k, v in core.model.state_dict().items()}
    digest = hashlib.sha1()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(state[key]).tobytes())
    digest.update(repr(sorted(core.config.to_dict().items())).encode())
    digest.update(np.concatenate((core.mean, core.std)).astype(np.float32).tobytes())
    token = digest.hexdigest()[:16]
    spec = ModelSpec(core.model.channels, core.config.to_dict(), state, getattr(core, "requested_device", "auto"), token,
                     tuple(map(float, core.mean)), tuple(map(float, core.std)))
    with _CORES_LOCK:
        _CORES[token] = core
    return spec


def core_for(spec: ModelSpec):
    """The torch model of ``spec`` in this process, built once and kept."""
    global builds
    with _CORES_LOCK:
        core = _CORES.get(spec.token)
        if core is None:
            import torch

            from xlatent.methods.latent import LatentCore

            core = LatentCore(spec.channels, LatentConfig.from_dict(spec.config), spec.device, None,
                              spec.mean or None, spec.std or None)
            core.model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in spec.state.items()})
            _CORES[spec.token] = core
            builds += 1
        return core


def model_task(core) -> dask.delayed:
    """The model as one dask task (its key names the weights' hash): blocks depend on it, so
    the weights travel to each worker once instead of being pickled into every task."""
    spec = spec_of(core)
    return dask.delayed(spec, name=f"xlatent-model-{spec.token}", traverse=False)


def torch_threads() -> int:
    """Threads torch should use inside a dask task: the ``xlatent.torch-threads`` dask config
    value; else ``OMP_NUM_THREADS`` (dask's nanny sets it to 1 on worker processes); else the
    CPUs divided by the dask threads sharing them (so 1 with the default threaded scheduler)."""
    configured = dask.config.get("xlatent.torch-threads", None)
    if configured:
        return int(configured)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        from distributed import get_worker

        dask_threads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        dask_threads = dask.config.get("num_workers", None) or cpus
    return max(1, cpus // max(1, int(dask_threads)))


@contextlib.contextmanager
def _task_context(core):
    """torch threads for this task, and the device's lock when it is a GPU."""
    import torch

    n = torch_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if core.device.type == "cpu":
        yield
        return
    with _CORES_LOCK:
        lock = _DEVICE_LOCKS.setdefault(str(core.device), threading.Lock())
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


def dask_threads() -> int:
    """Threads of the active dask scheduler: a distributed client's, else the local one's."""
    try:
        from distributed import default_client

        return max(1, sum(default_client().nthreads().values()))
    except (ImportError, ValueError):
        return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)


def bands(chunks: tuple[int, ...], per_row: int, rows: int | None = None) -> list[tuple[int, int]]:
    """``(start, stop)`` of bands of ``rows`` whole chunks along an axis with ``chunks``, where
    a row of chunks holds ``per_row`` tasks. Default: the fewest rows that give every dask
    thread four tasks, at least 8 tasks. Computing band after band bounds memory by one band:
    on one graph with a final task (a reduction, xarray's ``to_zarr``) dask's ordering of
    overlapping chunks keeps inputs and results across the whole scene."""
    rows = int(rows or max(1, -(-max(8, 4 * dask_threads()) // max(1, per_row))))
    edges = np.concatenate(([0], np.cumsum(chunks))).astype(int).tolist()
    starts = edges[:-1][::rows]
    return list(zip(starts, starts[1:] + [edges[-1]]))


def largest(x: da.Array) -> float:
    """``max |x|`` over a ``(..., row, column)`` dask array, one band of chunk rows at a time."""
    per_row = int(np.prod(x.numblocks)) // len(x.chunks[-2])
    return max(float(da.abs(x[..., lo:hi, :]).max().compute()) for lo, hi in bands(x.chunks[-2], per_row))


# --------------------------------------------------------------------------------------------
# Block functions (run in dask tasks; numpy in, numpy out)


def _starting_field(a: np.ndarray, b: np.ndarray, motion: tuple) -> np.ndarray:
    """The configured starting field of normalised ``a`` -> ``b``; ``motion`` is
    ``(mean, std, estimator, transform, coarsen)`` (see :meth:`LatentCore.prior`)."""
    from xlatent.methods.motion import estimate

    mean, std, estimator, transform, coarsen = motion
    return estimate(a, b, estimator, transform, mean=mean, std=std, coarsen=coarsen)


def _motion(config: LatentConfig, mean, std) -> tuple:
    return (mean, std, config.flow_prior, config.motion_transform, config.prior_coarsen or 1)


def _block_fields(core, block: np.ndarray, c: int, depth: int, margin: int) -> np.ndarray:
    """Stage fields ``(N, 2, h, w)`` of ``block`` less ``depth + margin`` cells each side:
    the starting field on the whole block (``margin`` cells of context beyond what F needs),
    then F with ``depth`` cells of context."""
    prior = core.prior(block[:c], block[c : 2 * c])
    prior = None if prior is None else _crop(prior, margin)
    inner = _crop(block[: 2 * c], margin)
    with _task_context(core):
        return core.fields(inner[:c], inner[c:], prior=prior, halo=depth, context=True)


def _crop(x: np.ndarray, n: int) -> np.ndarray:
    return np.ascontiguousarray(x[..., n : x.shape[-2] - n, n : x.shape[-1] - n]) if n else x


def _fields_block(block: np.ndarray, spec: ModelSpec, channels: int, depth: int, margin: int) -> np.ndarray:
    fields = _block_fields(core_for(spec), block, channels, depth, margin)
    return fields.reshape(-1, *fields.shape[-2:])


def _frames_block(block, spec: ModelSpec, channels: int, depth: int, fields_depth: int, margin: int, fractions,
                  exact_endpoints, blend):
    """Frames ``(K * C)`` and stage fields ``(2 N)`` of the chunk, stacked, from the two images
    with ``depth + fields_depth + margin`` cells of context: every layer runs inside the task, so
    only the inputs cross chunk borders."""
    core = core_for(spec)
    c = channels
    fields = _block_fields(core, block, c, fields_depth, margin)  # the chunk plus ``depth``
    needed = _round_up(core.frames_halo(fields), core.model.alignment)
    if needed > depth:
        raise InputError(
            f"A displacement of {np.abs(fields).max():.1f} cells needs an overlap of {needed} cells "
            f"between chunks, more than the {depth} that config.max_displacement allowed. Raise "
            "max_displacement or leave it None (measured in one pass over the flow)."
        )
    pair = _crop(block, fields_depth + margin)
    with _task_context(core):
        frames = core.frames(pair[:c], pair[c:], fields, fractions, exact_endpoints, False, blend,
                             halo=depth, context=True)
    fields = _crop(fields, depth)
    return np.concatenate((frames.reshape(-1, *frames.shape[-2:]), fields.reshape(-1, *fields.shape[-2:])))


# --------------------------------------------------------------------------------------------
# Training and inference on dask arrays (the signatures of LatentCore's methods)


def _training_window(window: np.ndarray, r: int, q: int, patch, channels: int, motion: tuple | None) -> np.ndarray:
    """One training patch ``[first, last, mask(, prior)]`` cut from its window with context."""
    ph, pw = patch
    if motion is not None:
        prior = _starting_field(window[:channels], window[channels : 2 * channels], motion)
        window = np.concatenate((window, prior), axis=0)
    return np.ascontiguousarray(window[:, r : r + ph, q : q + pw])


def training_windows(first: da.Array, last: da.Array, mask: da.Array, patch, stride, config: LatentConfig,
                     seed: int | None, mean=None, std=None) -> np.ndarray:
    """``config.sample_patches`` training patches ``(P, L, h, w)``, computed from the dask arrays.

    Origins are drawn without replacement (seeded) from the grid :func:`xlatent.train.train`
    uses; when the grid has no more origins than wanted, all of them are taken in order, so the
    training matches the in-memory one but for the starting field, computed per patch with
    ``config.prior_margin`` cells of context instead of on the whole scene.
    """
    from xlatent.patches import patch_origins

    h, w = first.shape[-2:]
    origins = patch_origins((h, w), patch, stride)
    if len(origins) > config.sample_patches:
        rng = np.random.default_rng(None if seed is None else [seed, 7])
        origins = origins[np.sort(rng.choice(len(origins), config.sample_patches, replace=False))]
    with_prior = bool(config.flow_prior)
    margin = config.prior_margin if with_prior else 0
    c = first.shape[0]
    motion = None
    if with_prior:
        mean = np.zeros(c, np.float32) if mean is None else mean
        std = np.ones(c, np.float32) if std is None else std
        motion = _motion(config, mean, std)
    layers = da.concatenate((first, last, mask[None].astype(np.float32)), axis=0)
    tasks = []
    for r, q in origins:
        r0, q0 = max(r - margin, 0), max(q - margin, 0)
        r1, q1 = min(r + patch[0] + margin, h), min(q + patch[1] + margin, w)
        cut = dask.delayed(_training_window, pure=True)
        tasks.append(cut(layers[:, r0:r1, q0:q1], r - r0, q - q0, patch, c, motion))
    return np.stack(dask.compute(*tasks))


def fit_core(core, first: da.Array, last: da.Array, mask: da.Array, patch, stride, seed=0, progress=True):
    """Train ``core`` on windows sampled from the dask arrays; returns the history."""
    from xlatent.train import train_windows

    windows = training_windows(first, last, mask, patch, stride, core.config, seed, core.mean, core.std)
    log.info("training on %d patches cut from a %s scene", len(windows), first.shape)
    core.history = train_windows(core.model, windows, first.shape[0], bool(core.config.flow_prior), core.config,
                                 core.device, seed=seed, progress=progress)
    return core.history


def _depths(core) -> tuple[int, int]:
    """Overlaps of the field layer: F's reach, and the starting field's extra context."""
    multiple = core.model.alignment
    margin = _round_up(core.config.prior_margin, multiple) if core.config.flow_prior else 0
    return _round_up(core.fields_halo(), multiple), margin


def fields(core, first: da.Array, last: da.Array) -> da.Array:
    """Stage fields ``(N, 2, H, W)`` of the fitted ``core``, lazily, chunk by chunk (starting
    field and F in one task per chunk)."""
    cfg = core.config
    depth, margin = _depths(core)
    stack = _normalise(da.concatenate((first, last), axis=0), depth + margin, core.model.alignment)
    out = _map(_fields_block, stack, depth + margin, (2 * cfg.stages,), model_task(core), first.shape[0], depth, margin)
    return out.reshape(cfg.stages, 2, *out.shape[-2:])


def frames(core, first: da.Array, last: da.Array, fractions, exact_endpoints=True, blend="transport",
           flow: da.Array | None = None) -> tuple[da.Array, da.Array]:
    """Frames ``(K, C, H, W)`` at ``fractions`` and the stage fields ``(N, 2, H, W)``, lazily,
    from one task per chunk that runs the starting field, F and the rendering.

    Only the two images cross chunk borders (no intermediate layer is shared). Their
    overlap is the reach of E and D plus twice the largest displacement, plus what the fields
    need: ``config.max_displacement`` when set, else measured in one pass over ``flow`` (the
    fields of :func:`fields` when not given), computed then and again with the frames.
    """
    cfg, c = core.config, first.shape[0]
    multiple = core.model.alignment
    bound = cfg.max_displacement
    if bound is None:
        flow = fields(core, first, last) if flow is None else flow
        bound = largest(flow)
    depth = _round_up(core.frames_halo(np.array([bound], dtype=np.float32)), multiple)
    fields_depth, margin = _depths(core)
    total = depth + fields_depth + margin
    stack = _normalise(da.concatenate((first, last), axis=0), total, multiple)
    fractions = np.asarray(fractions, dtype=float)
    k, n = len(fractions), cfg.stages
    out = _map(_frames_block, stack, total, (k * c + 2 * n,), model_task(core), c, depth, fields_depth, margin,
               fractions, exact_endpoints, blend)
    frames_out = out[: k * c].reshape(k, c, *out.shape[-2:])
    return frames_out, out[k * c :].reshape(n, 2, *out.shape[-2:])


def latent(first, last, mask, fractions, *, config: LatentConfig, patch, stride, device="auto", seed=0,
           progress=True, exact_endpoints=True, blend="transport", mean=None, std=None, **_) -> MethodResult:
    """The ``latent`` method on dask arrays (see :func:`xlatent.methods.latent.latent`)."""
    from xlatent.methods.latent import LatentCore

    core = LatentCore(first.shape[0], config, device, seed, mean, std)
    history = fit_core(core, first, last, mask, patch, stride, seed=seed, progress=progress)
    out, flow = frames(core, first, last, fractions, exact_endpoints, blend)
    info = {"device": str(core.device), "train_seconds": history.seconds, "stopped": history.stopped}
    return MethodResult(frames=out, fields=flow, info=info, fitted=core)
