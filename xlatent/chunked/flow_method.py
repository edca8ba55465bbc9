"""The ``flow`` method chunk by chunk: the scene's motion estimated once (coarsened), refined and
rendered per chunk with its overlap."""

from __future__ import annotations

import warnings
from typing import Any

import dask.array as da
import numpy as np

from xlatent.chunked.coarse import CoarseMotion, coarse_motion, coarse_task
from xlatent.chunked.graph import chunk_edges, chunk_region, crop, describe_chunk, map_overlapping, rechunked, task_context, widen
from xlatent.config import LatentConfig
from xlatent.device import resolve_device
from xlatent.methods.base import MethodResult
from xlatent.methods.flow import check_sampling, render_guarded
from xlatent.motion import check_options, estimate, motion_space, svf
from xlatent.motion.svf import SVF_OPTIONS
from xlatent.normalise import physical


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
    rows, cols = chunk_region(block_id, edges)
    span = widen(rows, block.shape[-2]), widen(cols, block.shape[-1])
    where = describe_chunk(rows, cols)
    a, b = block[:c], block[c:]

    def seen(x, y):
        return motion_space(physical(x, mean, std), physical(y, mean, std), transform)

    with task_context(None, device):
        field, share = coarse.over(*span), coarse.share_over(*span)
        # the scene's guard (coarse_motion): the source's share of the change is blended, not moved
        source = None if share is None else ((1.0 - share) * (b - a)).astype(np.float32)
        target = b if source is None else b - source
        if coarse.factor > 1 and motion == "svf":
            weight = SVF_OPTIONS["weight"] if svf_weight is None else float(svf_weight)
            field = svf.refine(*seen(a, target), field, region=coarse.inside(*span), weight=weight, device=device)
        elif coarse.factor > 1:
            field = estimate(a, target, motion, transform, mean=mean, std=std)
            gap, _ = coarse.gap(crop(field, depth), rows, cols)
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
    field = crop(field, depth)
    peak = float(np.abs(field).max())
    if peak > depth:
        warnings.warn(
            f"xlatent: in {where} the flow method's motion reaches {peak:.1f} cells, more than the {depth}-cell "
            "overlap between chunks: frames near the chunk's edges sample the overlap's edge instead. Use "
            "larger chunks, or silence with warnings.filterwarnings('ignore', 'xlatent: in chunk').",
            UserWarning,
            stacklevel=2,
        )
    frames = crop(frames, depth)
    return np.concatenate((frames.reshape(-1, *frames.shape[-2:]), field)).astype(np.float32)


def flow(first, last, mask, fractions, *, mean, std, config: LatentConfig | None = None, motion: str = "svf",
         motion_transform: str = "auto", svf_weight: float | None = None, guard: bool = True, sampling: str = "auto",
         device: Any = "auto", **_) -> MethodResult:
    """The ``flow`` method on dask arrays, with its in-memory defaults and options
    (:func:`xlatent.methods.flow.flow`): the motion estimated once on the whole scene, coarsened
    to at most :data:`~xlatent.chunked.coarse.COARSE_SIDE` cells a side (:func:`coarse_motion`), refined on
    each chunk with ``config.prior_margin`` cells of context when the scene was coarsened, and the frames
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
    stack = rechunked(da.concatenate((first, last), axis=0), depth, 1)
    fractions = np.asarray(fractions, dtype=float)
    k = len(fractions)
    out = map_overlapping(_flow_block, stack, depth, (k * c + 2,), c, fractions, np.asarray(mean, np.float32),
                          np.asarray(std, np.float32), motion, motion_transform, depth, coarse_task(coarse),
                          chunk_edges(stack), svf_weight, dev, sampling)
    frames_out = out[: k * c].reshape(k, c, *out.shape[-2:])
    return MethodResult(frames=frames_out, fields=out[k * c :].reshape(1, 2, *out.shape[-2:]),
                        info={"motion": motion, "device": dev})
