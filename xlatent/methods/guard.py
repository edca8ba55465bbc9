"""Do no harm: the motion must explain the change between the ends before it is used.

The change ``b - a`` is split, per region, into what transport can explain and a source (the
reaction term of the advection-reaction form). Transport moves values around: over a region
wider than the displacement it conserves them, up to the flux through the region's edge, so the
change it causes averages to about zero there. A source (land warming by day, rain growing in
place) shifts the regional mean. With ``G`` a Gaussian window at the scale of the motion (twice
its median speed, from 3 cells to a quarter of the grid), the source's energy is ``S = G(b - a)**2`` and the transportable
part's ``T = G((b - a)**2) - S``; the share of transport is ``min(1, T / S)``: 1 where transport
dominates, toward 0 where the change is a source.

Where the share is below 1 somewhere, :func:`guarded` takes ``(1 - share) (b - a)`` out of the
change as a source, refits the motion on what is left, and shrinks it (and its confidence) by
the share: a change that is all source gets the linear blend, which is what a source does between
two times; where transport dominates everywhere the motion is used as it is (issue 23: bent to
move warm air where it warmed, ``flow`` was 13 dB below the blend on ``datasets.diurnal``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_MIN_SCALE = 3.0  # cells: the smallest region judged (the confidence map's window)


def motion_scale(v: np.ndarray) -> float:
    """Gaussian window (cells) of the regions judged: twice the median speed of ``v`` ``(2, H, W)``
    (cells per interval), at least ``_MIN_SCALE`` and at most a quarter of the shorter side: a
    motion that seems to sweep the field across the grid (a fit explaining a source) is judged
    over regions of a quarter of the grid."""
    speed = float(np.median(np.hypot(v[0], v[1])))
    return float(np.clip(2.0 * speed, _MIN_SCALE, max(_MIN_SCALE, min(v.shape[-2:]) / 4)))


def transport_share(a: np.ndarray, b: np.ndarray, sigma: float) -> np.ndarray:
    """Per cell, ``min(1, T / S)``: the transportable energy of the change ``b - a`` over its
    source energy in a Gaussian window of ``sigma`` cells (1 where transport dominates).

    Parameters
    ----------
    a, b : ndarray ``(H, W)``
        The two images as the motion estimator saw them (one channel each).
    sigma : float
        Window of the regions, in cells.

    Returns
    -------
    ndarray ``(H, W)``, float32, in [0, 1]
    """
    from scipy.ndimage import gaussian_filter

    change = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    source = gaussian_filter(change, sigma, mode="nearest") ** 2
    total = gaussian_filter(change**2, sigma, mode="nearest")
    tiny = 1e-12 * max(float(np.mean(change**2)), 1e-30)
    transport = np.maximum(total - source, 0.0)
    return np.clip((transport + tiny) / (source + tiny), 0.0, 1.0).astype(np.float32)


def guarded(first: np.ndarray, last: np.ndarray, v: np.ndarray, fit: Callable[[np.ndarray, np.ndarray], np.ndarray],
            seen: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]):
    """The motion ``v`` ``(2, H, W)`` fitted from ``first`` to ``last`` ``(C, H, W)``, guarded.

    Parameters
    ----------
    first, last : ndarray ``(C, H, W)``
        The two images, as ``fit`` takes them.
    v : ndarray ``(2, H, W)``
        ``fit(first, last)``.
    fit : callable
        The motion estimator, ``fit(first, last) -> (2, H, W)``.
    seen : callable
        The pair as the estimator sees it, ``seen(first, last) -> (a, b)``, ``(H, W)`` each.

    Returns
    -------
    v : ndarray ``(2, H, W)``
        The motion, refitted without the source and shrunk by the share; ``v`` itself where
        transport dominates everywhere.
    source : ndarray ``(C, H, W)`` or None
        The source term ``(1 - share) (last - first)`` (a frame at ``t`` adds ``t`` times it),
        None where transport dominates everywhere.
    share : ndarray ``(H, W)`` or None
        The share of transport in [0, 1], smoothed at the regions' scale; None as ``source``.
    """
    from scipy.ndimage import gaussian_filter

    sigma = motion_scale(v)
    share = transport_share(*seen(first, last), sigma)
    if share.min() >= 1.0:
        return v, None, None
    share = np.clip(gaussian_filter(share, sigma, mode="nearest"), 0.0, 1.0).astype(np.float32)
    source = ((1.0 - share) * (np.asarray(last, np.float64) - first)).astype(np.float32)
    refit = fit(first, last - source)
    return (refit * share).astype(np.float32), source, share
