"""Patches for training and tiles for inference (plain numpy/torch; no xarray).

Training draws batches of patches at the same locations in both images from a grid of origins
(patch size and stride per axis, xbatcher style). Inference runs the fully convolutional model
on large tiles with a halo wider than its reach, and blends the overlaps with linear ramps, so
a tiled run equals an untiled one and shows no seams.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def patch_origins(shape: tuple[int, int], patch: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Upper-left corners ``(n, 2)`` of the patches covering ``shape``; the last row/column of
    patches is flush with the far edge so that every cell is covered."""
    axes = []
    for size, p, s in zip(shape, patch, stride):
        starts = list(range(0, size - p + 1, max(s, 1)))
        if starts[-1] != size - p:
            starts.append(size - p)
        axes.append(starts)
    rows, cols = np.meshgrid(axes[0], axes[1], indexing="ij")
    return np.stack((rows.ravel(), cols.ravel()), axis=1)


def _ramp(n: int, core_lo: int, core_hi: int, feather: int) -> np.ndarray:
    """1-D blending weight: 1 on the core, linear ramps ``feather`` wide on each side, 0 beyond."""
    idx = np.arange(n, dtype=np.float64)
    w = np.ones(n)
    if feather > 0:
        w = np.minimum(w, np.clip((idx - (core_lo - feather) + 0.5) / (feather + 1), 0, 1))
        w = np.minimum(w, np.clip(((core_hi + feather) - idx - 0.5) / (feather + 1), 0, 1))
    else:
        w[(idx < core_lo) | (idx >= core_hi)] = 0
    return w


def tile_starts(size: int, core: int, multiple: int) -> list[int]:
    """Starts of tile cores along one axis (multiples of ``multiple``) covering ``size``."""
    core = max(multiple, core // multiple * multiple)
    return list(range(0, size, core))


def run_tiled(
    fn: Callable[[np.ndarray], list[np.ndarray]],
    image: np.ndarray,
    tile: int,
    halo: int,
    multiple: int = 1,
    feather: int = 8,
    progress: Callable[[int], None] | None = None,
    context: bool = False,
) -> list[np.ndarray]:
    """Apply ``fn`` tile by tile to ``image`` ``(C, H, W)`` and blend the results.

    ``fn`` takes a ``(C, h, w)`` window and returns arrays whose last two axes are ``(h, w)``.
    The image is first padded by ``halo`` cells (edge values) on every side, for the untiled
    case too, so tiling only changes what lies farther than ``halo`` from a core cell. Tile
    origins are multiples of ``multiple`` (the U-Nets' pooling factor), keeping the pooling grid
    aligned between tiles.

    With ``context=True`` the image already carries ``halo`` cells of real neighbouring data on
    every side (a dask block with its overlap): nothing is padded and only the interior
    ``(H - 2 halo, W - 2 halo)`` is returned. ``halo`` must then be a multiple of ``multiple``.
    """
    halo = -(-halo // multiple) * multiple
    if context:
        padded = image
        h, w = image.shape[1] - 2 * halo, image.shape[2] - 2 * halo
    else:
        h, w = image.shape[1:]
        padded = np.pad(image, ((0, 0), (halo, halo), (halo, halo)), mode="edge")
    feather = min(feather, halo)
    single = tile >= h and tile >= w
    row_starts = [0] if single else tile_starts(h, tile, multiple)
    col_starts = [0] if single else tile_starts(w, tile, multiple)
    core = max(multiple, tile // multiple * multiple)
    sums: list[np.ndarray] | None = None
    weight = np.zeros((h, w))
    for r0 in row_starts:
        r1 = h if single else min(r0 + core, h)
        for c0 in col_starts:
            c1 = w if single else min(c0 + core, w)
            # window in padded coordinates: the core plus the halo on each side
            window = padded[:, r0 : r1 + 2 * halo, c0 : c1 + 2 * halo]
            outs = fn(window)
            # keep the core and a feathered margin inside the halo
            lo_r, hi_r = max(r0 - feather, 0), min(r1 + feather, h)
            lo_c, hi_c = max(c0 - feather, 0), min(c1 + feather, w)
            wr = _ramp(hi_r - lo_r, r0 - lo_r, r1 - lo_r, feather if not single else 0)
            wc = _ramp(hi_c - lo_c, c0 - lo_c, c1 - lo_c, feather if not single else 0)
            wt = np.outer(wr, wc)
            if sums is None:
                sums = [np.zeros(o.shape[:-2] + (h, w)) for o in outs]
            for acc, o in zip(sums, outs):
                part = o[..., lo_r - r0 + halo : hi_r - r0 + halo, lo_c - c0 + halo : hi_c - c0 + halo]
                acc[..., lo_r:hi_r, lo_c:hi_c] += part * wt
            weight[lo_r:hi_r, lo_c:hi_c] += wt
            if progress is not None:
                progress(1)
    assert sums is not None
    return [(acc / weight).astype(np.float32) for acc in sums]


def count_tiles(shape: tuple[int, int], tile: int, multiple: int) -> int:
    """Number of tiles :func:`run_tiled` will use for an image of ``shape``."""
    h, w = shape
    if tile >= h and tile >= w:
        return 1
    return len(tile_starts(h, tile, multiple)) * len(tile_starts(w, tile, multiple))


def run_tiled_retrying(fn, image, tile, halo, multiple=1, feather=8, progress=None, context=False):
    """:func:`run_tiled` that halves the tile size and tries again on a torch out-of-memory
    error (CUDA or other accelerators), down to one pooling cell, instead of failing.

    Tiled runs equal untiled ones, so a retry with smaller tiles changes the cost, not the
    result.
    """
    import logging

    import torch

    smallest = max(multiple, 16)
    while True:
        try:
            return run_tiled(fn, image, tile, halo, multiple, feather, progress, context)
        except torch.OutOfMemoryError:
            if tile <= smallest:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            tile = max(smallest, (tile // 2) // multiple * multiple)
            logging.getLogger(__name__).warning("out of memory: retrying inference with tiles of %d cells", tile)
