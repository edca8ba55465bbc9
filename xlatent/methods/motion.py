"""Classical motion estimates: the ``flow`` baseline and the latent model's starting field.

Two choices matter more than the estimator (measured: benchmarks/RESULTS.md, entry 15):

- **What the estimator sees.** Non-negative, intermittent quantities (rain rate, concentration,
  backscatter intensity) are log-transformed first, as pysteps does with dB rain: otherwise the
  few strongest cells dominate the brightness constancy term. The images are then scaled
  together to [0, 1], the range TV-L1's default weights assume.
- **Convergence.** TV-L1 with 20 warps and 30 iterations per pyramid level (scikit-image
  defaults: 5 and 10) and a data weight of 5: the defaults stop before large displacements
  converge (256² rotation: 18 dB with them, 32 dB with these).

Estimators: ``"tvl1"`` (scikit-image, always available), ``"vet"`` and ``"lk"`` (pysteps
variational echo tracking and Lucas-Kanade, the ``pysteps`` extra; ``"lk"`` also needs OpenCV),
and ``"svf"``, a stationary velocity fitted so that its flow over the interval maps ``first``
onto ``last`` along curved paths (:mod:`xlatent.methods.svf`). All return ``(2, H, W)`` in grid
cells (column, row): the first three the straight displacement from ``first`` to ``last``,
``"svf"`` the steady velocity whose exponential is the map (equal for a translation).

``coarsen=k`` estimates on the images block-averaged ``k x k`` and upsamples the field
(bilinear, times ``k``): about ``k**2`` times less work, for large scenes whose motion is smooth
on the scale of ``k`` cells (benchmarks/RESULTS.md, entry 22).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlatent.exceptions import ConfigError
from xlatent.methods import svf
from xlatent.methods.base import physical
from xlatent.options import ESTIMATORS, TRANSFORMS, check_options  # noqa: F401  (also read from here)
from xlatent.resample import block_mean, upsample_field

TVL1_OPTIONS = {"attachment": 5.0, "tightness": 0.3, "num_warp": 20, "num_iter": 30}
_LOG_FLOOR = 1e-3  # log floor, relative to the 99th percentile of the positive values
_MIN_COARSE = 16  # cells a side that a coarsened image keeps at least
_LOG_BELOW = 5.0  # dB between the floor and the value given to cells below it (pysteps: -15 dB at 0.1 mm/h)


def to_db(x: np.ndarray, floor: float) -> np.ndarray:
    """``10 log10(x)`` for ``x >= floor``; ``_LOG_BELOW`` dB under the floor's value elsewhere."""
    below = 10.0 * np.log10(floor) - _LOG_BELOW
    return np.where(x >= floor, 10.0 * np.log10(np.maximum(x, floor)), below)


def motion_space(first: np.ndarray, last: np.ndarray, transform: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """The two images as the estimator sees them: one channel each, scaled together to [0, 1].

    ``first``/``last`` are ``(C, H, W)`` in physical units. Each channel is log-transformed when
    ``transform="log"``, or ``"auto"`` and the channel has no negative value; then scaled to
    [0, 1] over both images; channels are averaged.
    """
    outs_a, outs_b = [], []
    for a, b in zip(first, last):
        a, b = a.astype(np.float64), b.astype(np.float64)
        positive = np.concatenate((a[a > 0], b[b > 0]))
        use_log = transform == "log" or (transform == "auto" and min(a.min(), b.min()) >= 0)
        if use_log and positive.size:
            floor = _LOG_FLOOR * float(np.percentile(positive, 99))
            a, b = to_db(a, floor), to_db(b, floor)
        lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
        scale = hi - lo if hi > lo else 1.0
        outs_a.append((a - lo) / scale)
        outs_b.append((b - lo) / scale)
    return np.mean(outs_a, axis=0), np.mean(outs_b, axis=0)


def estimate(first: np.ndarray, last: np.ndarray, estimator: str = "tvl1", transform: str = "auto", *,
             mean: np.ndarray | None = None, std: np.ndarray | None = None, coarsen: int = 1,
             svf_weight: float | None = None, device: Any = "cpu") -> np.ndarray:
    """Displacement from ``first`` to ``last`` ``(2, H, W)`` (column, row; grid cells).

    Parameters
    ----------
    first, last : ndarray ``(C, H, W)``
        The two images (NaN-free), in physical units, or normalised with ``mean``/``std``.
    estimator : {"tvl1", "vet", "lk"}
        TV-L1 (scikit-image), or pysteps' VET or Lucas-Kanade.
    transform : {"auto", "log", "none"}
        What the estimator sees: ``"auto"`` logs channels without negative values.
    mean, std : ndarray ``(C,)``, optional
        The per-channel normalisation of ``first``/``last``, undone first (the log transform
        needs the physical values: zero rain is zero).
    coarsen : int
        Estimate on ``coarsen x coarsen`` block means and upsample the field (1: full resolution).
    svf_weight : float, optional
        ``"svf"`` only: weight of the bending energy (default
        ``xlatent.methods.svf.SVF_OPTIONS["weight"]``; larger is smoother).
    device : str or torch.device
        ``"svf"`` only: the torch device it is fitted on (the others run on the CPU).
    """
    check_options(estimator, transform)
    if mean is not None:
        first, last = physical(first, mean, std), physical(last, mean, std)
    a, b = motion_space(first, last, transform)
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return np.zeros((2,) + a.shape, dtype=np.float32)
    coarsen = int(coarsen)
    if coarsen < 1:
        raise ConfigError(f"coarsen must be a positive integer, got {coarsen}.")
    coarsen = min(coarsen, max(1, min(a.shape) // _MIN_COARSE))
    if coarsen > 1:
        shape = a.shape
        field = _estimate(block_mean(a, coarsen), block_mean(b, coarsen), estimator, svf_weight, device)
        return upsample_field(field, coarsen, shape)
    return _estimate(a, b, estimator, svf_weight, device)


def _estimate(a: np.ndarray, b: np.ndarray, estimator: str, svf_weight: float | None = None,
              device: Any = "cpu") -> np.ndarray:
    if estimator == "svf":
        weight = svf.SVF_OPTIONS["weight"] if svf_weight is None else float(svf_weight)
        return svf.fit(a, b, weight=weight, device=device)
    if estimator == "tvl1":
        from skimage.registration import optical_flow_tvl1

        rows, cols = optical_flow_tvl1(a, b, prefilter=True, **TVL1_OPTIONS)
        return np.stack((cols, rows)).astype(np.float32)
    uv = _pysteps(estimator, np.stack((a, b)))
    return np.nan_to_num(np.asarray(uv, dtype=np.float32))


def _pysteps(estimator: str, pair: np.ndarray) -> np.ndarray:
    try:
        from pysteps import motion
    except ImportError as err:
        raise ImportError(
            f"motion estimator {estimator!r} needs pysteps: pip install 'xlatent[pysteps]'"
        ) from err
    try:
        uv = motion.get_method(estimator)(pair, verbose=False)
    except Exception as err:  # pysteps reports a missing OpenCV as its own exception type
        if "opencv" in str(err).lower():
            raise ImportError(f"motion estimator {estimator!r} needs OpenCV: pip install 'xlatent[pysteps]'") from err
        raise
    return uv[0] if isinstance(uv, tuple) else uv  # pysteps (u, v): columns, rows per interval
