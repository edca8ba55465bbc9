"""The scene's coarse motion: the whole scene's motion estimated once on block means, the
reference that per-chunk motion is checked against (:func:`coarse_motion`, :func:`checked_start`)."""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np

from xlatent.chunked.graph import round_up
from xlatent.motion import estimate, motion_space
from xlatent.motion.guard import guarded
from xlatent.normalise import physical

log = logging.getLogger(__name__)

COARSE_SIDE = 512  # cells a side, at most, of the scene as the coarse motion estimate sees it


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

    def inside(self, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        """1 on the fine cells ``rows``, ``cols`` that lie in the scene, 0 on those beyond it (a
        chunk's edge-padded overlap at the scene's border) ``(r1 - r0, c1 - c0)``."""
        r, c = np.arange(*rows), np.arange(*cols)
        return np.outer((r >= 0) & (r < self.shape[0]), (c >= 0) & (c < self.shape[1])).astype(np.float32)

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
    """The motion of the whole scene estimated on block means of at most ``COARSE_SIDE``
    cells a side (one pass of dask reductions, then ``estimator`` in memory, ``"svf"`` with
    ``svf_weight`` on ``device``); kept per pair. A scene no larger than that is estimated at
    full resolution: exactly the in-memory estimate. With ``guard``, the do-no-harm guard
    (:func:`xlatent.motion.guard.guarded`) judges the whole scene there, as in memory."""
    h, w = first.shape[-2:]
    k = max(1, -(-max(h, w) // COARSE_SIDE))
    key = (first.name, last.name, estimator, transform, k, svf_weight, guard)
    if key in _COARSE_CACHE:
        return _COARSE_CACHE[key]
    pair = da.concatenate((first, last), axis=0)
    if k > 1:
        pair = da.pad(pair, ((0, 0), (0, -h % k), (0, -w % k)), mode="edge")
        pair = pair.rechunk({1: round_up(pair.chunksize[1], k), 2: round_up(pair.chunksize[2], k)})
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


def coarse_task(coarse: CoarseMotion | None):
    """The coarse field as one task (blocks refer to it by key, it is not copied into each)."""
    if coarse is None:
        return None
    token = hashlib.sha1(coarse.field.tobytes()).hexdigest()[:16]
    return dask.delayed(coarse, name=f"xlatent-coarse-{token}", traverse=False)


def checked_start(field: np.ndarray, coarse: CoarseMotion | None, rows, cols, what: str | None) -> tuple[np.ndarray, bool]:
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
