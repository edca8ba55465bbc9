"""Dask-backed inputs: scenes larger than memory, on threads, a cluster or a GPU.

Inputs opened with ``chunks=`` (NetCDF, Zarr, GeoTIFF through rioxarray) are never loaded
whole:

- **statistics** (per-channel mean, spread and value range, validity checks) come from one
  pass of dask reductions, in the one preparation of the pair both backends use
  (:func:`xlatent.pair.prepare`);
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

The package's modules, lowest first: ``graph`` (chunks, overlaps, one function per chunk, the
model as one task), ``coarse`` (the scene's coarse motion, :func:`coarse_motion`), then
``latent_model`` (training windows, stage fields and frames per chunk: ``latent``,
``advection``) and ``flow_method`` (``flow``). Every name callers use is imported here; a
method's registration names its counterpart as ``"xlatent.chunked:<name>"``.
"""

from xlatent.chunked.coarse import COARSE_SIDE, CoarseMotion, coarse_motion
from xlatent.chunked.flow_method import flow
from xlatent.chunked.graph import ModelState, core_for, largest, model_task, state_of
from xlatent.chunked.latent_model import advection, fields, fit_core, frames, latent, training_windows
from xlatent.pair import is_lazy, prepare

__all__ = [
    "COARSE_SIDE", "CoarseMotion", "ModelState", "advection", "coarse_motion", "core_for", "fields", "fit_core", "flow",
    "frames", "is_lazy", "largest", "latent", "model_task", "prepare", "state_of", "training_windows",
]
