"""The dask graph of the chunked path: chunks and their overlaps, one function per chunk, and the
fitted model as one task of the graph (one torch model per worker process).

Used by :mod:`xlatent.chunked.latent_model` and :mod:`xlatent.chunked.flow_method`; nothing
here knows a method.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np

from xlatent._dask import bands, torch_threads
from xlatent.engine import LatentCore

# --------------------------------------------------------------------------------------------
# Chunking and overlaps


def round_up(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple``."""
    return -(-int(n) // multiple) * multiple


def _axis_chunks(chunks: tuple[int, ...], size: int, depth: int, multiple: int) -> tuple[int, ...]:
    """Regular chunks near the given ones, multiples of ``multiple`` (the U-Nets' pooling grid
    stays aligned across chunks), no smaller than ``depth`` (dask's overlap needs it), and a last
    chunk no larger than the others (Zarr's rule, so the outputs store as they come)."""
    target = round_up(max(int(np.median(chunks)), depth, multiple), multiple)
    for side in range(target, size, multiple):
        full, rest = divmod(size, side)
        if rest == 0 or rest >= depth:
            return (side,) * full + ((rest,) if rest else ())
    return (size,)


def rechunked(x: da.Array, depth: int, multiple: int) -> da.Array:
    """``(C, H, W)`` ``x`` in regular spatial chunks that suit an overlap of ``depth`` cells and
    the model's pooling grid (:func:`_axis_chunks`), the channels in one chunk."""
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


def map_overlapping(fn, x: da.Array, depth: int, leading: tuple, *args, **kwargs) -> da.Array:
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


def chunk_edges(x: da.Array) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Chunk edges (scene cells) of ``x`` along rows and columns."""
    return tuple(tuple(np.concatenate(([0], np.cumsum(c))).astype(int).tolist()) for c in x.chunks[-2:])


def chunk_region(block_id, edges) -> tuple[tuple[int, int], tuple[int, int]]:
    """Rows and columns (scene cells) of a chunk's interior, from its ``block_id`` and the
    chunk ``edges`` per axis."""
    (rows, cols), i, j = edges, block_id[-2], block_id[-1]
    return (rows[i], rows[i + 1]), (cols[j], cols[j + 1])


def widen(span: tuple[int, int], size: int) -> tuple[int, int]:
    """``span`` widened symmetrically to ``size`` cells (a block: the chunk plus its overlap)."""
    extra = (size - (span[1] - span[0])) // 2
    return span[0] - extra, span[0] - extra + size


def describe_chunk(rows, cols) -> str:
    """A chunk's place in the scene, for warnings."""
    return f"chunk rows {rows[0]}:{rows[1]}, columns {cols[0]}:{cols[1]}"


def crop(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` less ``n`` cells each side along its last two axes (a block's overlap)."""
    return np.ascontiguousarray(x[..., n : x.shape[-2] - n, n : x.shape[-1] - n]) if n else x

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
def task_context(core, device=None):
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
