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
onto ``last`` along curved paths (:mod:`xlatent.motion.svf`). All return ``(2, H, W)`` in grid
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
from xlatent.motion import svf
from xlatent.motion.base import check_options, register, spec
from xlatent.normalise import physical
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
    estimator : str
        A name of :func:`xlatent.motion.available`: ``"tvl1"`` (TV-L1, scikit-image), pysteps'
        ``"vet"`` or ``"lk"`` (Lucas-Kanade), ``"svf"`` (stationary velocity fit).
    transform : {"auto", "log", "none"}
        What the estimator sees: ``"auto"`` logs channels without negative values.
    mean, std : ndarray ``(C,)``, optional
        The per-channel normalisation of ``first``/``last``, undone first (the log transform
        needs the physical values: zero rain is zero).
    coarsen : int
        Estimate on ``coarsen x coarsen`` block means and upsample the field (1: full resolution).
    svf_weight : float, optional
        ``"svf"`` only: weight of the bending energy (default
        ``xlatent.motion.svf.SVF_OPTIONS["weight"]``; larger is smoother).
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
    found = spec(estimator)
    options = {"svf_weight": svf_weight, "device": device}
    return found.fn(a, b, **{k: v for k, v in options.items() if k in found.options})


# registered in this order, the order the error messages list them in
@register("tvl1")
def tvl1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TV-L1 optical flow (scikit-image) with :data:`TVL1_OPTIONS`: the displacement ``a`` to ``b``."""
    from skimage.registration import optical_flow_tvl1

    rows, cols = optical_flow_tvl1(a, b, prefilter=True, **TVL1_OPTIONS)
    return np.stack((cols, rows)).astype(np.float32)


@register("vet")
def vet(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Variational echo tracking (pysteps, the ``pysteps`` extra)."""
    return _pysteps("vet", a, b)


@register("lk")
def lk(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Lucas-Kanade (pysteps, the ``pysteps`` extra, with OpenCV)."""
    return _pysteps("lk", a, b)


@register("svf", options=("svf_weight", "device"))
def stationary(a: np.ndarray, b: np.ndarray, svf_weight: float | None = None, device: Any = "cpu") -> np.ndarray:
    """The stationary velocity fit (:func:`xlatent.motion.svf.fit`; ``svf_weight`` defaults to
    ``SVF_OPTIONS["weight"]``), on the torch ``device``."""
    return svf.fit(a, b, weight=svf.SVF_OPTIONS["weight"] if svf_weight is None else float(svf_weight), device=device)


def _pysteps(estimator: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    pair = np.stack((a, b))
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
    uv = uv[0] if isinstance(uv, tuple) else uv  # pysteps (u, v): columns, rows per interval
    return np.nan_to_num(np.asarray(uv, dtype=np.float32))
