"""The latent model on dask arrays: training on windows sampled from the scene, and the stage
fields and frames computed in one task per chunk (the signatures of
:class:`xlatent.engine.LatentCore`'s methods); the ``latent`` and ``advection`` methods' chunked
counterparts."""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace

import dask
import dask.array as da
import numpy as np

from xlatent.chunked.coarse import CoarseMotion, checked_start, coarse_motion, coarse_task
from xlatent.chunked.graph import (
    ModelState,
    chunk_edges,
    chunk_region,
    core_for,
    crop,
    describe_chunk,
    largest,
    map_overlapping,
    model_task,
    rechunked,
    round_up,
    task_context,
    widen,
)
from xlatent.config import LatentConfig
from xlatent.engine import LatentCore
from xlatent.methods.base import MethodResult
from xlatent.motion import estimate
from xlatent.patches import patch_origins

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Block functions (run in dask tasks; numpy in, numpy out)


def _starting_field(a: np.ndarray, b: np.ndarray, motion: tuple) -> np.ndarray:
    """The configured starting field of normalised ``a`` -> ``b``; ``motion`` is
    ``(mean, std, estimator, transform, coarsen, device)`` (see :meth:`LatentCore.prior`)."""
    mean, std, estimator, transform, coarsen, device = motion
    with task_context(None, device):
        return estimate(a, b, estimator, transform, mean=mean, std=std, coarsen=coarsen, device=device)


def _motion(config: LatentConfig, mean, std, device: str = "cpu") -> tuple:
    return (mean, std, config.flow_prior, config.motion_transform, config.prior_coarsen or 1, device)


def _block_fields(core, block: np.ndarray, c: int, depth: int, margin: int, coarse=None, rows=None, cols=None,
                  report: bool = False) -> np.ndarray:
    """Stage fields ``(N, 2, h, w)`` of ``block`` less ``depth + margin`` cells each side:
    the starting field on the whole block (``margin`` cells of context beyond what F needs;
    the scene's ``coarse`` motion instead where it disagrees, see :func:`checked_start`),
    then F with ``depth`` cells of context. ``rows``, ``cols``: the chunk's interior in the
    scene; ``report``: warn when the starting field is replaced."""
    if coarse is None:
        prior = core.prior(block[:c], block[c : 2 * c])
    else:
        span = widen(rows, block.shape[-2]), widen(cols, block.shape[-1])
        prior = _prior_in_scene(core, block, c, span, coarse.shape)
        prior, _ = checked_start(prior, coarse, *span, describe_chunk(rows, cols) if report else None)
    prior = None if prior is None else crop(prior, margin)
    inner = crop(block[: 2 * c], margin)
    with task_context(core):
        return core.fields(inner[:c], inner[c:], prior=prior, halo=depth, context=True)


def _prior_in_scene(core, block: np.ndarray, c: int, span, shape) -> np.ndarray:
    """The starting field of ``block`` (scene cells ``span``: rows, columns) estimated on its
    part inside the scene and extended with edge values: the edge-padded images beyond the
    scene have no motion of their own, and their streaks can mislead the whole estimate."""
    inside = [slice(max(0, -lo), min(hi, n) - lo) for (lo, hi), n in zip(span, shape)]
    prior = core.prior(block[:c, inside[0], inside[1]], block[c : 2 * c, inside[0], inside[1]])
    pads = [(s.start, size - s.stop) for s, size in zip(inside, block.shape[-2:])]
    return np.pad(prior, [(0, 0)] + pads, mode="edge") if any(map(any, pads)) else prior


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


def _fields_block(block: np.ndarray, state: ModelState, channels: int, depth: int, margin: int, coarse, edges,
                  block_id=None) -> np.ndarray:
    rows, cols = chunk_region(block_id, edges)
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
    rows, cols = chunk_region(block_id, edges)
    fields = _block_fields(core, block, c, fields_depth, margin, coarse, rows, cols, report=True)
    if np.abs(fields).max() > bound:
        fields = _clamped(fields, bound, describe_chunk(rows, cols), source)
    pair = crop(block, fields_depth + margin)
    with task_context(core):
        frames = core.frames(pair[:c], pair[c:], fields, fractions, exact_endpoints, False, blend,
                             halo=depth, context=True)
    fields = crop(fields, depth)
    return np.concatenate((frames.reshape(-1, *frames.shape[-2:]), fields.reshape(-1, *fields.shape[-2:])))

# --------------------------------------------------------------------------------------------
# Training and inference on dask arrays (the signatures of LatentCore's methods)


def _training_window(window: np.ndarray, r: int, q: int, patch, channels: int, motion: tuple | None,
                     coarse: CoarseMotion | None = None, rows=None, cols=None) -> tuple[np.ndarray, bool]:
    """One training patch ``[first, last, mask(, prior)]`` cut from its window with context
    (scene cells ``rows``, ``cols``), and whether its starting field was replaced by the
    scene's ``coarse`` motion (see :func:`checked_start`)."""
    ph, pw = patch
    replaced = False
    if motion is not None:
        prior = _starting_field(window[:channels], window[channels : 2 * channels], motion)
        prior, replaced = checked_start(prior, coarse, rows, cols, None)
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
    tasks, reference = [], coarse_task(coarse)
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
    margin = round_up(core.config.prior_margin, multiple) if core.config.flow_prior else 0
    return round_up(core.fields_halo(), multiple), margin


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
    stack = rechunked(da.concatenate((first, last), axis=0), depth + margin, core.model.alignment)
    coarse = coarse_task(_core_coarse(core, first, last))
    out = map_overlapping(_fields_block, stack, depth + margin, (2 * cfg.stages,), model_task(core), first.shape[0],
                          depth, margin, coarse, chunk_edges(stack))
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
    field far from the scene's coarse motion is replaced by it (:func:`checked_start`).
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
    depth = round_up(core.frames_halo(np.array([bound], dtype=np.float32)), multiple)
    allowed = (depth - core.frames_halo(np.zeros(1, dtype=np.float32))) // 2  # >= ceil(bound)
    fields_depth, margin = _depths(core)
    total = depth + fields_depth + margin
    stack = rechunked(da.concatenate((first, last), axis=0), total, multiple)
    fractions = np.asarray(fractions, dtype=float)
    k, n = len(fractions), cfg.stages
    coarse = coarse_task(coarse)
    out = map_overlapping(_frames_block, stack, total, (k * c + 2 * n,), model_task(core), c, depth, fields_depth,
                          margin, fractions, exact_endpoints, blend, coarse, chunk_edges(stack), float(allowed), source)
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
