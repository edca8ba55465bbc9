"""The per-channel normalisation of the inputs, undone: shared by the methods and the motion
estimators (both see normalised ``(C, H, W)`` arrays and need the physical values)."""

from __future__ import annotations

import numpy as np


def physical(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Undo the per-channel normalisation of ``(C, H, W)`` arrays (back to the inputs' units)."""
    return x * np.asarray(std)[:, None, None] + np.asarray(mean)[:, None, None]
