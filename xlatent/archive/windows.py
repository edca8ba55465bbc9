"""The archive's training windows: which ``(t, K)`` of a series, and each window's two hypotheses
(``flow``'s frames and ``flow``'s frames along TV-L1's motion), cached on disk per window."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from xlatent import geo
from xlatent._version import __version__
from xlatent.backends import InMemory
from xlatent.exceptions import InputError, UnitsMismatchError
from xlatent.methods.flow import flow as flow_method
from xlatent.methods.flow import halfway_mismatch
from xlatent.motion.svf import SVF_OPTIONS
from xlatent.stack import Series

# The second, independent motion hypothesis (entry 39: averaged with flow's, +0.23 dB on radar):
# TV-L1 on 2 x 2 block means, the motion being smooth at that scale (entry 43: the same gain at
# a third of full-resolution TV-L1's time, which had put a pair above 2x flow's cost).
ALT_MOTION = {"motion": "tvl1", "motion_coarsen": 2}
_HYPOTHESES_VERSION = 4  # the key of the cached hypotheses: bumped when what is cached changes form
_HYPOTHESES = ("v", "confidence", "base", "alt", "alt_v")  # what a cached file holds


def alternative(pair, fractions, device):
    """The second hypothesis: ``flow``'s result at ``fractions`` along :data:`ALT_MOTION`'s motion
    instead of the stationary velocity fit (``.frames`` ``(K, C, H, W)``, ``.fields[0]`` the motion)."""
    return flow_method(pair.first, pair.last, pair.mask, fractions, mean=pair.mean, std=pair.std,
                       with_confidence=False, device=device, **ALT_MOTION)


def outside_weight(first: np.ndarray, last: np.ndarray, mask: np.ndarray, v: np.ndarray, alt_v: np.ndarray,
                   device) -> float:
    """The weight of the second hypothesis on a pair the network is not applied to (outside the
    range the model was trained on), computed from the pair alone.

    With ``E`` the change each motion leaves unexplained half-way
    (:func:`~xlatent.methods.flow.halfway_mismatch`) and ``D`` the mean square change between the
    ends: ``E_v / (E_v + E_alt)``, the inverse-variance weight of two independent estimates,
    shrunk by ``E_v / D``, the share of the change that ``flow``'s motion leaves unexplained. Where
    that motion explains the change (exact motions) the weight vanishes and ``flow``'s frames
    stay; where it explains little (radar, growth and decay) the two hypotheses are weighed by how
    well each explains it (benchmarks/RESULTS.md entry 48)."""
    cells = np.asarray(mask, dtype=bool)
    change = float(np.mean((first - last)[:, cells] ** 2)) if cells.any() else 0.0
    if change <= 0:
        return 0.0
    # the part a hypothesis's guard blends in place counts as unexplained: a linear blend is a
    # fallback, not an explanation (counted as explained, the long radar windows where rain
    # appears and vanishes lost most of their gain: benchmarks/RESULTS.md entry 48)
    e_v = halfway_mismatch(first, last, v, cells, "svf", device)
    e_alt = halfway_mismatch(first, last, alt_v, cells, ALT_MOTION["motion"], device)
    inverse_variance = e_v / (e_v + e_alt) if e_v + e_alt > 0 else 0.5
    return float(np.clip(inverse_variance * min(e_v / change, 1.0), 0.0, 1.0))


def hypotheses(pair, fractions, device, cache: Path | None = None) -> dict:
    """``flow``'s stationary velocity ``v`` ``(2, H, W)``, its confidence ``(H, W)`` and its frames
    ``base`` ``(K, C, H, W)`` at ``fractions`` (exactly what ``method="flow"`` returns), and the
    frames ``alt`` of :func:`alternative` and its motion ``alt_v``: the two hypotheses the
    synthesis weighs.
    Read from ``cache`` when this pair and these fractions were seen before by the same version
    of xlatent with the same options (another version may fit other fields: it recomputes)."""
    key = None
    fractions = np.asarray(fractions, dtype=float)
    if cache is not None:
        cache = Path(cache)
        digest = hashlib.sha1()
        for x in (pair.first, pair.last, pair.mean, pair.std, fractions):
            digest.update(np.ascontiguousarray(x).tobytes())
        digest.update(repr((sorted(SVF_OPTIONS.items()), sorted(ALT_MOTION.items()), _HYPOTHESES_VERSION,
                            __version__)).encode())
        key = cache / f"hyp-{digest.hexdigest()}.npz"
        if key.is_file():
            with np.load(key) as z:
                found = {name: z[name] for name in z.files}
            if set(found) >= set(_HYPOTHESES):  # else a file of another form: computed again
                return found
    base = flow_method(pair.first, pair.last, pair.mask, fractions, mean=pair.mean, std=pair.std, device=device)
    alt = alternative(pair, fractions, device)
    out = {"v": base.fields[0], "confidence": base.maps["confidence"], "base": base.frames, "alt": alt.frames,
           "alt_v": alt.fields[0]}
    if key is not None:  # written beside, then renamed: a concurrent reader never sees half a file
        cache.mkdir(parents=True, exist_ok=True)
        part = key.with_suffix(f".{os.getpid()}.part.npz")
        np.savez(part, **out)
        os.replace(part, key)
    return out


def speed_per_step(v: np.ndarray, mask: np.ndarray, steps: float) -> float:
    """95th percentile of the speed in cells per time step over the valid cells."""
    speed = np.hypot(v[0], v[1])[mask.astype(bool)]
    return float(np.percentile(speed, 95)) / max(steps, 1e-6) if speed.size else 0.0


def window_pairs(n: int, k_range: tuple[int, int], count: int, val_fraction: float) -> tuple[list, list]:
    """Training and validation windows ``(t, K)`` of a series of ``n`` frames.

    Validation windows lie in the last ``val_fraction`` of the series, training windows before
    it (none straddles the cut: a time-blocked split). ``count`` windows in all, spread evenly
    over ``K`` in ``k_range`` (inclusive) and over time.
    """
    kmin, kmax = k_range
    cut = n - int(round(val_fraction * n)) if val_fraction > 0 else n

    def pick(lo: int, hi: int, m: int) -> list:
        pairs = [(t, k) for k in range(kmin, kmax + 1) for t in range(lo, hi - k)]
        if not pairs or m <= 0:
            return []
        idx = np.unique(np.linspace(0, len(pairs) - 1, min(m, len(pairs))).round().astype(int))
        return [pairs[i] for i in idx]

    n_val = int(round(count * val_fraction)) if cut < n else 0
    return pick(0, cut, count - n_val), pick(cut, n, n_val)


def grid_spacing(da: xr.DataArray, grid: geo.Grid) -> float | None:
    """The geometric mean of the median cell sizes (m) of ``da``'s grid, or None without a CRS."""
    size = geo.cell_size_m(da, grid)
    return None if size is None else float(np.sqrt(np.median(size[0]) * np.median(size[1])))


def archive_series(archive, x_dim: str | None = None, y_dim: str | None = None) -> list[Series]:
    """The archive as validated :class:`~xlatent.stack.Series` in one unit, or a named error."""
    items = [archive] if isinstance(archive, xr.DataArray) else list(archive) if isinstance(archive, Sequence) else None
    if not items or not all(isinstance(x, xr.DataArray) for x in items):
        raise InputError("archive must be a (time, y, x) DataArray or a list of them (separate days, events or grids).")
    series = [Series.from_dataarray(x, x_dim, y_dim, label="archive" if len(items) == 1 else f"archive[{i}]")
              for i, x in enumerate(items)]
    units = [x.units for x in series]
    if any(not geo.same_units(u, units[0]) for u in units[1:]):  # spellings of one unit pass
        raise UnitsMismatchError(f"The archive's series are in different units ({sorted({str(u) for u in units})}): "
                                 "convert them to one unit first.")
    return series


def window(series: Series, t: int, k: int, step: float, cache, device) -> dict:
    """One training window of ``series``: frames ``t`` and ``t + k`` as the normalised ends, the two
    hypotheses, the frames between as targets at their fractions of the span; ``step`` is the
    archive's time step (seconds) that the span is counted in."""
    pair = InMemory().prepare(series.frame(t), series.frame(t + k), series.grid.x_dim, series.grid.y_dim)
    targets, valid = [], []
    for j in range(1, k):
        x = geo.to_array(series.frame(t + j), pair.grid, "target")
        ok = np.isfinite(x).all(axis=0) & pair.mask
        targets.append(np.where(ok[None], (x - pair.mean[:, None, None]) / pair.std[:, None, None], 0.0))
        valid.append(ok)
    seconds = series.seconds
    span = seconds[t + k] - seconds[t]
    fractions = (seconds[t + 1 : t + k] - seconds[t]) / span
    steps = span / step
    hyp = hypotheses(pair, fractions, device, cache)
    return {"first": pair.first, "last": pair.last, "mask": pair.mask, **hyp, "K": k,
            "targets": np.asarray(targets, np.float32), "valid": np.asarray(valid), "fractions": fractions,
            "steps": float(steps), "speed": speed_per_step(hyp["v"], pair.mask, steps)}


def psnr(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    """PSNR over the valid cells, on the range of the true frames (as benchmarks/run.py)."""
    p, t = pred[..., valid], truth[..., valid]
    rng = float(t.max() - t.min()) if t.size else 0.0
    mse = float(np.mean((p - t) ** 2)) if t.size else 0.0
    return 10 * np.log10(max(rng, 1e-12) ** 2 / max(mse, 1e-20))
