"""``ot``: optimal-transport displacement interpolation (the paper's comparison), with POT.

Each channel is made a mass (minus the smallest value of the two images, so that it is
non-negative), block-averaged to a coarse grid of at most ``ot_grid`` cells a side, and the
exact plan between the two normalised densities is solved with ``ot.emd`` (squared Euclidean
cost). Mass at ``x_i`` sent to ``y_j`` travels in a straight line: at fraction ``t`` it sits at
``(1 - t) x_i + t y_j`` (McCann's displacement interpolation), where it is splatted back onto the
coarse grid, upsampled, and given back the detail finer than the coarse grid as a linear blend.

- **Mass difference.** OT moves a fixed mass. The densities are normalised to one and the total
  mass is interpolated linearly between the two images' totals: rain that grows everywhere
  scales up uniformly, it is not moved there.
- **Memory.** The coarse grid has ``n`` cells with mass (``n <= ot_grid**2``); the cost matrix
  and the plan hold ``n**2`` float64 each: 2 x 4096**2 x 8 B = 268 MB at the default 64, about
  4.3 GB at 128. Time grows faster than ``n**2``.
- **Motion.** ``flow`` is the barycentric projection of the plan, ``T(x_i) - x_i`` with
  ``T(x_i) = sum_j P_ij y_j / sum_j P_ij``: one steady field, NaN where the first image has no
  mass (no motion is defined there).
"""

from __future__ import annotations

import numpy as np

from xlatent.exceptions import ConfigError
from xlatent.methods.base import MethodResult, physical, register
from xlatent.resample import coarse_shape, pool, resize

_MASS_EPS = 1e-12


def _pot():
    try:
        import ot
    except ImportError as err:
        raise ImportError("method='ot' needs POT (Python Optimal Transport): pip install 'xlatent[ot]'") from err
    return ot


def _centres(coarse: tuple[int, int], fine: tuple[int, int]) -> np.ndarray:
    """Fine-grid (column, row) positions of the coarse cell centres, ``(gh * gw, 2)``."""
    (gh, gw), (h, w) = coarse, fine
    rows = (np.arange(gh) + 0.5) * h / gh - 0.5
    cols = (np.arange(gw) + 0.5) * w / gw - 0.5
    r, c = np.meshgrid(rows, cols, indexing="ij")
    return np.stack((c.ravel(), r.ravel()), axis=1)


def _splat(positions: np.ndarray, mass: np.ndarray, coarse: tuple[int, int], fine: tuple[int, int]) -> np.ndarray:
    """Bilinear splat of point masses (fine-grid positions) onto the coarse grid."""
    (gh, gw), (h, w) = coarse, fine
    col = (positions[:, 0] + 0.5) * gw / w - 0.5
    row = (positions[:, 1] + 0.5) * gh / h - 0.5
    c0, r0 = np.floor(col).astype(int), np.floor(row).astype(int)
    fc, fr = col - c0, row - r0
    out = np.zeros(gh * gw)
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            rr, cc = np.clip(r0 + dr, 0, gh - 1), np.clip(c0 + dc, 0, gw - 1)
            np.add.at(out, rr * gw + cc, mass * wr * wc)
    return out.reshape(gh, gw)


def _plan(m0: np.ndarray, m1: np.ndarray, coarse, fine, ot):
    """Exact plan between the coarse densities: source and target indices, masses, positions."""
    pos = _centres(coarse, fine)
    a, b = m0.ravel(), m1.ravel()
    src, dst = np.flatnonzero(a > _MASS_EPS), np.flatnonzero(b > _MASS_EPS)
    pa, pb = a[src] / a[src].sum(), b[dst] / b[dst].sum()
    cost = ot.dist(pos[src], pos[dst])  # squared Euclidean, in fine grid cells
    plan = ot.emd(pa, pb, cost / max(cost.max(), 1.0), numItermax=10_000_000)
    i, j = np.nonzero(plan > _MASS_EPS * plan.max())
    return src[i], dst[j], plan[i, j], pos


def _channel(x0, x1, valid, fractions, grid, ot):
    h, w = x0.shape
    base = min(x0[valid].min(), x1[valid].min())
    m0, m1 = np.where(valid, x0 - base, 0.0), np.where(valid, x1 - base, 0.0)
    s0, s1 = m0.sum(), m1.sum()
    coarse = coarse_shape(h, w, grid)
    c0, c1 = pool(m0, coarse), pool(m1, coarse)
    if c0.sum() <= _MASS_EPS or c1.sum() <= _MASS_EPS:  # nothing to transport: a plain blend
        return np.stack([(1 - t) * m0 + t * m1 + base for t in fractions]), None
    src, dst, mass, pos = _plan(c0, c1, coarse, (h, w), ot)
    cells = coarse[0] * coarse[1]

    def transported(t):  # the coarse displacement interpolation at t, upsampled, in mass units
        moved = _splat((1 - t) * pos[src] + t * pos[dst], mass, coarse, (h, w))
        return resize(moved * cells * ((1 - t) * s0 + t * s1) / (h * w), (h, w))

    # what the coarse transport does not carry, measured at both ends and blended linearly:
    # the ends come back exactly
    detail0, detail1 = m0 - transported(0.0), m1 - transported(1.0)
    frames = [transported(t) + (1 - t) * detail0 + t * detail1 + base for t in fractions]
    sent = np.bincount(src, weights=mass, minlength=cells)
    target = np.stack([np.bincount(src, weights=mass * pos[dst, k], minlength=cells) for k in range(2)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        disp = target / sent[:, None] - pos  # barycentric projection minus the start
    disp[sent <= 0] = np.nan
    field = np.stack([resize(np.nan_to_num(disp[:, k].reshape(coarse)), (h, w)) for k in range(2)])
    field[:, resize((sent > 0).reshape(coarse), (h, w), "nearest") < 0.5] = np.nan
    return np.stack(frames), (field, s0)


@register("ot", options={"ot_grid": 64})
def optimal_transport(first, last, mask, fractions, *, mean, std, ot_grid: int = 64, **_) -> MethodResult:
    """McCann's displacement interpolation of each channel on a grid of ``ot_grid`` cells a side,
    and the plan's barycentric displacement (see the module docstring)."""
    if isinstance(ot_grid, bool) or not isinstance(ot_grid, (int, np.integer)) or ot_grid < 2:
        raise ConfigError(f"ot_grid must be a whole number >= 2 (cells a side of the OT grid), got {ot_grid!r}.")
    ot = _pot()
    a, b = physical(first, mean, std).astype(np.float64), physical(last, mean, std).astype(np.float64)
    fractions = np.asarray(fractions, dtype=np.float64)
    frames, fields, weights = [], [], []
    for k in range(a.shape[0]):
        f, motion = _channel(a[k], b[k], mask, fractions, int(ot_grid), ot)
        frames.append(f)
        if motion is not None:
            fields.append(motion[0])
            weights.append(motion[1])
    out = (np.stack(frames, axis=1) - mean[None, :, None, None]) / std[None, :, None, None]
    field = None
    if fields:  # channels' fields weighted by their mass
        field = (np.nansum([f * w for f, w in zip(fields, weights)], axis=0) / sum(weights)).astype(np.float32)
        field[:, np.all([np.isnan(f[0]) for f in fields], axis=0)] = np.nan
        field = field[None]
    return MethodResult(frames=out.astype(np.float32), fields=field, info={"ot_grid": int(ot_grid)})
