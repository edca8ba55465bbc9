"""The two validated images a method runs on (:class:`Pair`), and the checks both backends apply
to them: the minimum size and a valid cell in common."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xlatent import geo
from xlatent.exceptions import InputError

MIN_SIZE = 16  # cells a side, at least: the U-Nets' pooling needs them


@dataclass
class Pair:
    """Two validated images, normalised, with their masks and geo context.

    ``first``/``last`` are ``(C, H, W)`` float32 and ``valid_first``/``valid_last`` ``(H, W)``
    bool, numpy arrays in memory or dask arrays (:mod:`xlatent.chunked`); ``source`` is the input
    whose coords and attrs the outputs take. ``value_range`` (per channel, original units) is
    given by the dask backend, which measures it in its one statistics pass, and computed on
    first use otherwise.
    """

    source: xr.DataArray
    grid: geo.Grid
    t_last: Any
    first: Any
    last: Any
    valid_first: Any
    valid_last: Any
    mean: np.ndarray
    std: np.ndarray
    measured_range: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def mask(self) -> Any:
        """Cells valid in both images."""
        return self.valid_first & self.valid_last

    @property
    def value_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel min and max over the valid cells of both inputs (original units)."""
        if self.measured_range is not None:
            return self.measured_range
        c = self.first.shape[0]
        vals = [np.concatenate((self.first[k][self.valid_first], self.last[k][self.valid_last])) for k in range(c)]
        kind = np.float64 if self.source.dtype == np.float64 else np.float32  # as the frames are scaled back
        std, mean = np.asarray(self.std, kind), np.asarray(self.mean, kind)
        lo = np.array([v.min() for v in vals], dtype=kind) * std + mean
        hi = np.array([v.max() for v in vals], dtype=kind) * std + mean
        return lo, hi


def check_size(shape: tuple[int, ...]) -> None:
    """Refuse an image smaller than :data:`MIN_SIZE` cells a side (``shape``: ``(..., H, W)``)."""
    if min(shape[-2:]) < MIN_SIZE:
        raise InputError(
            f"Image of {shape[-2]} x {shape[-1]} cells is too small: xlatent needs at least "
            f"{MIN_SIZE} x {MIN_SIZE}. Select a larger area."
        )


def check_common(any_common: bool) -> None:
    """Refuse a pair with no cell valid in both images."""
    if not any_common:
        raise InputError(
            "The two images have no valid cell in common (NaN where the other has data): "
            "nothing to learn the motion from. Check that they cover the same area."
        )


def usable_spread(std: np.ndarray) -> np.ndarray:
    """The per-channel spread to normalise by, on both backends: 1 where it is zero, not finite or
    too small for float32 (a constant channel keeps its values, shifted by the mean)."""
    std = np.asarray(std, dtype=np.float64)
    ok = np.isfinite(std) & (std > np.finfo(np.float32).tiny)
    return np.where(ok, std, 1.0)
