"""Classical motion estimate used as the latent model's starting field (and by baselines).

Pyramidal TV-L1 optical flow from scikit-image: coarse to fine, so it finds displacements far
larger than the texture scale, which a field map trained from scratch by gradient descent on a
warping loss does not (measured: benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np


def tvl1(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Displacement from ``first`` to ``last`` ``(2, H, W)``: (column, row) in grid cells.

    Inputs are normalised ``(C, H, W)`` arrays; channels are averaged. Constant images give a
    zero field.
    """
    from skimage.registration import optical_flow_tvl1

    a, b = first.mean(axis=0), last.mean(axis=0)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return np.zeros((2,) + a.shape, dtype=np.float32)
    rows, cols = optical_flow_tvl1(a, b, prefilter=True)
    return np.stack((cols, rows)).astype(np.float32)
