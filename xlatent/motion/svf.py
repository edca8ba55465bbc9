"""Stationary velocity field fitted to two images: curved paths by construction.

The motion is a steady velocity ``v`` whose flow over the interval, ``exp(v)`` (scaling and
squaring, :mod:`xlatent.model.integrate`), maps ``first`` onto ``last``. It is fitted to the
images directly, symmetrically: ``first∘exp(-v/2)`` against ``last∘exp(v/2)`` (both images
meet half way, neither is privileged), with

- a robust (Charbonnier) data term, normalised by the images' mean gradient so that it reads
  roughly as a displacement error in cells whatever the contrast;
- second-order smoothness (bending energy, the squared second derivatives of ``v``): zero for
  any affine field, so rotation, shear and strain cost nothing, unlike TV, which favours
  piecewise-constant fields;
- coarse to fine: a pyramid of images halved down to ``_COARSEST`` cells a side, descended
  from two starts (one batch), zero and an affine velocity (a rotation is affine: its velocity has no
  bending energy, but plain descent from zero does not reach it); the lower objective at half
  resolution goes on to the finest level alone. Each level is refined with L-BFGS over a
  multi-resolution parameterisation of the field (see :func:`_fit_level`), for at most
  ``iters`` iterations, stopped earlier once ``_CHUNK`` iterations improve the objective by
  less than the fraction ``_RTOL`` (benchmarks/RESULTS.md, entry 32: fewer iterations on the
  fine levels lost up to 1 dB). Everything runs on the device the images are on. The
  affine start comes from a global
  search over the rotation angle, each angle with the translation read off a phase
  correlation (:func:`_search_affine`), refined by descent: descent alone, from zero, stops
  wherever the motion exceeds a fraction of the texture's wavelength on the level it sees.

On levels of at least ``2 * _MAP_MIN`` cells a side the objective integrates its maps at half
resolution (:func:`_objective_maps`): the squarings are most of its arithmetic.

Cells whose paths leave the grid carry no data term (what enters through the border cannot
be matched).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xlatent._lazy import torch_side
from xlatent.device import resolve_device

SVF_OPTIONS = {"weight": 1000.0, "iters": 50, "eps": 0.01}  # weight chosen on the whole benchmark (RESULTS.md, entry 25)
_COARSEST = 16  # cells a side of the coarsest level
_AFFINE_MAX = 64  # cells a side of the finest level the affine start is fitted on
_MULTIRES = 3  # coarser grids in the multi-resolution parameterisation of each level
_ANGLES = np.arange(-45.0, 45.1, 1.5)  # degrees over the interval searched for the affine start
_CHUNK = 5  # L-BFGS iterations between two convergence checks
_RTOL = 1e-3  # relative objective change over a chunk below which a level has converged
_MAP_MIN = 2 * _COARSEST  # cells a side: the objective integrates its maps at half resolution if they keep this


def _torch_side():
    """The torch-side modules this module uses: ``(advection, integrate)``."""
    return torch_side("model.advection"), torch_side("model.integrate")


def _tensor(x: np.ndarray, device):
    """``x`` as a float32 tensor on ``device`` (a copy: ``x`` may be a read-only view)."""
    import torch

    return torch.from_numpy(np.array(x, dtype=np.float32)).to(device)


def _pyramid(image, levels: int) -> list:
    """``image`` ``(1, 1, H, W)`` halved ``levels`` times (area-weighted), coarsest first."""
    import torch.nn.functional as F

    out = [image]
    for _ in range(levels):
        h, w = out[-1].shape[-2:]
        out.append(F.interpolate(out[-1], size=(math.ceil(h / 2), math.ceil(w / 2)), mode="area"))
    return out[::-1]


def _resize_field(v, shape: tuple[int, int]):
    """Field ``(1, 2, h, w)`` resampled to ``shape``, its cells rescaled per axis."""
    import torch
    import torch.nn.functional as F

    h, w = v.shape[-2:]
    if (h, w) == tuple(shape):
        return v
    out = F.interpolate(v, size=shape, mode="bilinear", align_corners=False)
    scale = torch.tensor([shape[1] / w, shape[0] / h], dtype=v.dtype, device=v.device).view(1, 2, 1, 1)
    return out * scale


def _inside(d):
    """1 where ``x + d(x)`` is on the grid, else 0 ``(1, 1, H, W)``."""
    _grid = _torch_side()[0]._grid

    h, w = d.shape[-2:]
    p = _grid(h, w, d) + d
    ok = (p[:, 0] >= 0) & (p[:, 0] <= w - 1) & (p[:, 1] >= 0) & (p[:, 1] <= h - 1)
    return ok[:, None].to(d.dtype)


def _halfway_maps(v, k: int):
    """``exp(-v/2)`` then ``exp(v/2)`` (``k`` squarings), stacked along the batch ``(2N, 2, H, W)``,
    through one squaring loop: at the sizes fitted here the time goes to dispatching small tensor
    operations, not to arithmetic, so two maps in one call cost little more than one. Split them
    with ``.chunk(2)``."""
    import torch

    return _torch_side()[1].exp_field(torch.cat((-v, v)), 0.5, k)


def _objective_maps(v):
    """The half-way maps (:func:`_halfway_maps`) as the objective uses them: on a level of at
    least ``2 * _MAP_MIN`` cells a side, integrated at half resolution and interpolated back. The
    field is smooth at that scale (its bending energy is penalised), so the fits do not change
    (benchmarks/RESULTS.md, entry 47), and the squarings, most of an evaluation's arithmetic,
    cost a quarter."""
    squarings = _torch_side()[1].squarings

    h, w = v.shape[-2:]
    if min(h, w) < 2 * _MAP_MIN:
        return _halfway_maps(v, squarings(v, 0.5))
    coarse = _resize_field(v, (math.ceil(h / 2), math.ceil(w / 2)))
    return _resize_field(_halfway_maps(coarse, squarings(coarse, 0.5)), (h, w))


def _warp_both(a, b, maps) -> tuple:
    """``a`` and ``b`` ``(1, C, H, W)`` carried along the half-way ``maps`` (``exp(-v/2)`` of each
    field, then ``exp(v/2)``): one batched sample."""
    import torch

    n = maps.shape[0] // 2
    return _torch_side()[1].warp(torch.cat((a.expand(n, -1, -1, -1), b.expand(n, -1, -1, -1))), maps).chunk(2)


def _halfway(a, b, v, k: int):
    """``a∘exp(-v/2)``, ``b∘exp(v/2)`` and their two maps (:func:`_halfway_maps`)."""
    maps = _halfway_maps(v, k)
    return *_warp_both(a, b, maps), *maps.chunk(2)


def _gradient_scale(a, b) -> float:
    """Mean absolute gradient of both images (per cell), the data term's unit."""
    g = 0.0
    for x in (a, b):
        g += float((x[..., :, 1:] - x[..., :, :-1]).abs().mean() + (x[..., 1:, :] - x[..., :-1, :]).abs().mean())
    return max(g / 4, 1e-6)


def objective(a, b, v, weight: float, eps: float, mask=None, scale: float | None = None):
    """Symmetric Charbonnier data term (normalised by the images' gradient, ``scale``: computed
    when not given) plus ``weight`` times the bending energy of ``v``; ``mask`` ``(1, 1, H, W)``
    (or one per field, ``(N, 1, H, W)``) weights the data term. Fields ``v`` ``(N, 2, H, W)`` are
    independent problems: the objective is the sum of each one's."""
    import torch

    integrate = _torch_side()[1]

    wa, wb = _warp_both(a, b, _objective_maps(v))
    r = wa - wb
    rho = torch.sqrt(r**2 + eps**2)
    data = rho.mean((1, 2, 3)) if mask is None else (mask * rho).sum((1, 2, 3)) / mask.sum((1, 2, 3)).clamp(min=1.0)
    # a batch of fields is a batch of independent problems: their objectives add up
    return data.sum() / (_gradient_scale(a, b) if scale is None else scale) + weight * len(v) * integrate.bending(v)


def data_term(a, b, v, mask=None) -> float:
    """The normalised symmetric data term of :func:`objective` alone (no bending), over the
    cells whose half-way paths stay on the grid (and where ``mask`` is 1)."""
    import torch

    with torch.no_grad():
        keep = _data_cells(v)
        keep = keep if mask is None else keep * mask
        return float(objective(a, b, v, 0.0, SVF_OPTIONS["eps"], keep))


def confidence(a: np.ndarray, b: np.ndarray, v: np.ndarray, sigma: float = 3.0, device: Any = "cpu") -> np.ndarray:
    """Per-cell confidence in [0, 1] of the motion ``v`` ``(2, H, W)`` between ``a`` and ``b``.

    An uncertainty of the displacement in cells, ``s = r / sqrt(lam)``: ``r`` the local
    (Gaussian window, ``sigma`` cells) RMS of the half-way mismatch ``a∘exp(-v/2) -
    b∘exp(v/2)`` and ``lam`` the smaller eigenvalue of the local structure tensor of the
    half-way image (how well texture pins the motion in every direction: small in flat areas
    and along straight edges, the aperture problem). Confidence is ``1 / (1 + (s / 0.5)**2)``
    (0.5 at half a cell), and 0 where a half-way path leaves the grid (the motion there is
    extrapolated, not matched). The warps run on ``device``, the local statistics on the CPU.
    """
    import torch
    from scipy.ndimage import gaussian_filter

    integrate = _torch_side()[1]
    exp_field, warp = integrate.exp_field, integrate.warp

    dev = resolve_device(device)
    ta, tb = (_tensor(x, dev)[None, None] for x in (a, b))
    tv = _tensor(v, dev)[None]
    with torch.no_grad():
        back, ahead = exp_field(tv, -0.5), exp_field(tv, 0.5)
        both = torch.cat((warp(ta, back), warp(tb, ahead), _inside(back) * _inside(ahead)), dim=1)
        wa, wb, inside = both[0].cpu().numpy()
    mid = 0.5 * (wa + wb)
    gy, gx = np.gradient(mid)
    jxx, jyy, jxy = (gaussian_filter(x, sigma) for x in (gx * gx, gy * gy, gx * gy))
    lam = 0.5 * (jxx + jyy) - np.sqrt(0.25 * (jxx - jyy) ** 2 + jxy**2)
    r2 = gaussian_filter((wa - wb) ** 2, sigma)
    s2 = r2 / np.maximum(lam, 1e-12 + 1e-6 * float(np.mean(jxx + jyy)))
    return (inside / (1.0 + s2 / 0.25)).astype(np.float32)


def _data_cells(v, region=None):
    """1 where the data term applies ``(N, 1, H, W)``: cells whose half-way paths (both) end on the
    grid, and, with ``region`` ``(1, 1, H, W)`` (1 on the cells that hold data, e.g. a chunk's
    cells inside the scene, not the edge-padded ones beyond it), that are in ``region`` and whose
    paths end in it."""
    import torch

    squarings, warp = _torch_side()[1].squarings, _torch_side()[1].warp

    back, ahead = _halfway_maps(v, squarings(v, 0.5)).chunk(2)
    keep = _inside(back) * _inside(ahead)
    if region is not None:
        n = len(v)
        ends = warp(region.expand(2 * n, -1, -1, -1), torch.cat((back, ahead)))
        keep = keep * region * (ends[:n] > 0.999) * (ends[n:] > 0.999)
    return keep


def _fit_level(a, b, v, weight: float, iters: int, eps: float, region=None):
    """Refine ``v`` on one level. The field is parameterised as ``v + sum_j up(c_j)`` with
    ``c_j`` on grids halved ``j`` times (all optimised together): a multi-resolution basis
    that lets the smooth, large-scale part move as fast as the fine part; with the bending
    energy alone, plain gradient steps spread a correction over the field very slowly. ``v``
    ``(N, 2, H, W)`` may hold several fields, refined together as independent problems (their
    objectives add up): one batch dispatches the many small tensor operations once for all.
    ``region``: see :func:`_data_cells`."""
    import torch

    with torch.no_grad():  # fixed per level: a mask that moved with v would break the line search
        mask = _data_cells(v, region)
    scale = _gradient_scale(a, b)  # fixed per level: one device sync, not one per evaluation
    shape = tuple(v.shape[-2:])
    coarse = []
    h, w = shape
    for _ in range(_MULTIRES):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
        if min(h, w) < 4:
            break
        coarse.append(torch.zeros(len(v), 2, h, w, dtype=v.dtype, device=v.device, requires_grad=True))
    base = v.clone().requires_grad_(True)
    params = [base, *coarse]

    def field():
        out = base
        for c in coarse:
            out = out + _resize_field(c, shape)
        return out

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = objective(a, b, field(), weight, eps, mask, scale)
        loss.backward()
        return loss

    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=min(_CHUNK, iters), history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)
    previous = math.inf
    for _ in range(max(1, math.ceil(iters / _CHUNK))):  # L-BFGS keeps its history across steps
        loss = float(opt.step(closure).detach())  # the objective where this step started
        if previous - loss <= _RTOL * abs(loss):  # converged: the last chunk gained too little
            break
        previous = loss
    with torch.no_grad():
        return field().detach()


def _affine_field(theta, shape: tuple[int, int]):
    """Velocity ``(N, 2, H, W)`` of the affine fields ``theta`` ``(N, 2, 3)`` (or one, ``(2, 3)``:
    ``N = 1``) over coordinates centred on the grid and scaled to [-1, 1] (well conditioned at
    every level)."""
    import torch

    h, w = shape
    kw = {"dtype": theta.dtype, "device": theta.device}
    ys = torch.linspace(-1, 1, h, **kw).view(h, 1).expand(h, w)
    xs = torch.linspace(-1, 1, w, **kw).view(1, w).expand(h, w)
    basis = torch.stack((xs, ys, torch.ones_like(xs)))  # (3, H, W)
    cells = torch.tensor([(w - 1) / 2, (h - 1) / 2], **kw).view(1, 2, 1, 1)
    return torch.einsum("nij,jhw->nihw", theta.reshape(-1, 2, 3), basis) * cells


def _shift(a, b, weights):
    """Translations ``s`` (column, row cells; two ``(N,)`` tensors) with ``b(x) ≈ a(x - s)`` for
    each of the ``N`` image pairs ``a``, ``b`` ``(N, h, w)``: the peak of the phase correlation of
    the two (zero-mean, ``weights``-tapered) images, refined to a fraction of a cell by a
    parabola through the peak and its neighbours. All on the images' device, no transfer."""
    import torch

    def tapered(x):
        mean = (x * weights).sum((-2, -1), keepdim=True) / weights.sum((-2, -1), keepdim=True)
        return (x - mean) * weights

    cross = torch.fft.fft2(tapered(b)) * torch.fft.fft2(tapered(a)).conj()
    corr = torch.fft.ifft2(cross / cross.abs().clamp(min=1e-12)).real
    n, h, w = corr.shape
    peak = corr.flatten(1).argmax(1)
    r, c, ar = peak // w, peak % w, torch.arange(n, device=corr.device)

    def at(rows, cols):
        return corr[ar, rows % h, cols % w]

    mid, out = at(r, c), []
    for pos, size, lo, hi in ((c, w, at(r, c - 1), at(r, c + 1)), (r, h, at(r - 1, c), at(r + 1, c))):
        den = lo - 2 * mid + hi
        frac = torch.where(den < 0, 0.5 * (lo - hi) / torch.where(den < 0, den, -1.0), 0.0).clamp(-0.5, 0.5)
        out.append(((pos + size // 2) % size - size // 2) + frac)
    return out[0], out[1]


def _search_affine(a, b, eps: float):
    """Rotation and translation of the affine start by a global search on one level ``a``,
    ``b`` ``(1, 1, h, w)``: for each angle in ``_ANGLES`` (all at once, one batch), both images
    are turned half way toward each other along the rotation's flow, the translation left
    between them is read off their phase correlation, and the candidate with the lowest data
    term goes on. Gradient descent from zero cannot find a large rotation (its basin is a
    fraction of the texture's wavelength); a search over the one angle plus a correlation over
    all translations can."""
    import torch

    squarings = _torch_side()[1].squarings

    h, w = a.shape[-2:]
    dev = a.device
    wide = torch.float32 if dev.type == "mps" else torch.float64  # no float64 on Apple MPS
    weights = torch.outer(torch.hann_window(h + 2, periodic=False, dtype=wide, device=dev)[1:-1],
                          torch.hann_window(w + 2, periodic=False, dtype=wide, device=dev)[1:-1])
    scale = _gradient_scale(a, b)
    omega = torch.tensor(np.radians(_ANGLES), dtype=a.dtype, device=dev)
    n = len(omega)
    theta = torch.zeros(n, 2, 3, dtype=a.dtype, device=dev)
    theta[:, 0, 1], theta[:, 1, 0] = -omega * (h - 1) / max(w - 1, 1), omega * (w - 1) / max(h - 1, 1)

    def halfway():
        v = _affine_field(theta, (h, w))
        wa, wb, back, ahead = _halfway(a, b, v, squarings(v, 0.5))
        return wa, wb, _inside(back) * _inside(ahead)

    for _ in range(2):  # the translation read after turning, then once more with it applied
        wa, wb, mask = halfway()
        sc, sr = _shift(wa[:, 0].to(wide), wb[:, 0].to(wide), weights * mask[:, 0].to(wide) + 1e-9)
        theta[:, 0, 2] += (sc / max((w - 1) / 2, 0.5)).to(theta.dtype)
        theta[:, 1, 2] += (sr / max((h - 1) / 2, 0.5)).to(theta.dtype)
    wa, wb, mask = halfway()
    rho = torch.sqrt((wa - wb) ** 2 + eps**2)
    cost = (mask * rho).sum((1, 2, 3)) / mask.sum((1, 2, 3)).clamp(min=1.0) / scale
    cost = torch.where(mask.mean((1, 2, 3)) < 0.25, torch.inf, cost)  # too little overlap left to judge the match
    best = int(torch.argmin(cost))
    if not bool(torch.isfinite(cost[best])):
        return torch.zeros(2, 3, dtype=a.dtype, device=dev)
    return theta[best].clone()


def _fit_affine(pa: list, pb: list, iters: int, eps: float):
    """Affine velocity: rotation and translation searched globally (:func:`_search_affine`) on
    the finest level up to ``_AFFINE_MAX`` cells a side, then all six parameters refined on it
    (curved paths from ``exp``: a rotation is an affine velocity)."""
    import torch

    squarings = _torch_side()[1].squarings

    fitted = [(la, lb) for la, lb in zip(pa, pb) if max(la.shape[-2:]) <= _AFFINE_MAX] or [(pa[0], pb[0])]
    la, lb = fitted[-1]
    with torch.no_grad():
        theta = _search_affine(la, lb, eps).requires_grad_(True)
    scale = _gradient_scale(la, lb)
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad(set_to_none=True)
        v = _affine_field(theta, tuple(la.shape[-2:]))
        wa, wb, _, _ = _halfway(la, lb, v, squarings(v, 0.5))
        loss = torch.sqrt((wa - wb) ** 2 + eps**2).mean() / scale
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return theta.detach()


def fit(a: np.ndarray, b: np.ndarray, *, init: np.ndarray | None = None, weight: float = SVF_OPTIONS["weight"],
        iters: int = SVF_OPTIONS["iters"], eps: float = SVF_OPTIONS["eps"], device: Any = "cpu") -> np.ndarray:
    """Stationary velocity ``(2, H, W)`` (column, row; grid cells per interval) with
    ``a∘exp(-v/2) ≈ b∘exp(v/2)``.

    Parameters
    ----------
    a, b : ndarray ``(H, W)``
        The two images as the estimator sees them (:func:`xlatent.motion.estimators.motion_space`).
    init : ndarray ``(2, H, W)``, optional
        Starting field (e.g. a TV-L1 estimate); zero by default.
    weight : float
        Weight of the bending energy against the normalised data term.
    iters : int
        L-BFGS iterations per pyramid level.
    eps : float
        Charbonnier smoothing of the data term (image units, [0, 1] scale).
    device : str or torch.device
        Where the fit runs (``"auto"``: CUDA, else MPS, else CPU); the result comes back as numpy.
    """
    import torch

    dev = resolve_device(device)
    ta, tb = (_tensor(x, dev)[None, None] for x in (a, b))
    levels = max(0, int(math.floor(math.log2(min(a.shape) / _COARSEST))))
    pa, pb = _pyramid(ta, levels), _pyramid(tb, levels)
    shape0 = tuple(pa[0].shape[-2:])
    starts = [torch.zeros((1, 2) + shape0, device=dev)]
    if init is not None:
        starts = [_resize_field(_tensor(init, dev)[None], shape0)]
    else:
        starts.append(_affine_field(_fit_affine(pa, pb, iters, eps), shape0))
    with torch.enable_grad():
        # each start down the pyramid to half resolution; the lower objective there goes on to
        # the finest level, which costs as much as all the others together (local optima differ:
        # an affine start finds large rotations, a zero start keeps a vortex's still surround).
        # Compared on a coarse level instead, where the texture is averaged away, the wrong one
        # can win (rotation20 at 512² compared at 64²).
        split = len(pa) - 1 if len(pa) > 1 and len(starts) > 1 else len(pa)
        fits = _descend(pa[:split], pb[:split], torch.cat(starts), weight, iters, eps)  # one batch
        best = _lowest(pa[split - 1], pb[split - 1], list(fits.split(1)), weight, eps)
        if split < len(pa):
            best = _descend(pa[split:], pb[split:], _resize_field(best, tuple(pa[split].shape[-2:])), weight, iters, eps)
    return best[0].float().cpu().numpy()


def refine(a: np.ndarray, b: np.ndarray, init: np.ndarray, *, region: np.ndarray | None = None,
           weight: float = SVF_OPTIONS["weight"], iters: int = SVF_OPTIONS["iters"], eps: float = SVF_OPTIONS["eps"],
           device: Any = "cpu") -> np.ndarray:
    """The stationary velocity ``init`` ``(2, H, W)`` refined on ``a``, ``b`` ``(H, W)`` at their
    resolution only (one level of :func:`fit`, no search): a field already right at large
    scale, e.g. a scene's motion estimated on block means, refined on a piece of the scene.
    ``region`` ``(H, W)``, optional: the cells that hold data (a chunk's cells inside the scene);
    the others, and cells whose paths end in them, carry no data term, as cells whose paths leave
    the grid do in :func:`fit` (an edge-padded border would otherwise pull the field toward the
    padding's stripes)."""
    import torch

    dev = resolve_device(device)
    ta, tb = (_tensor(x, dev)[None, None] for x in (a, b))
    inside = None if region is None else _tensor(region, dev)[None, None]
    with torch.enable_grad():
        v = _fit_level(ta, tb, _tensor(init, dev)[None], weight, iters, eps, inside)
    return v[0].float().cpu().numpy()


def _descend(pa: list, pb: list, v, weight: float, iters: int, eps: float):
    """``v`` (on the level of ``pa[0]``) refined level by level down the pyramids ``pa``, ``pb``."""
    for la, lb in zip(pa, pb):
        v = _fit_level(la, lb, _resize_field(v, tuple(la.shape[-2:])), weight, iters, eps)
    return v


def _lowest(a, b, fields: list, weight: float, eps: float):
    """The field of ``fields`` with the lowest :func:`objective`, the data term taken over the
    cells where every candidate's half-way paths stay on the grid (a fair comparison)."""
    import torch

    if len(fields) == 1:
        return fields[0]
    with torch.no_grad():
        mask = torch.ones_like(a)
        for v in fields:
            mask = mask * _data_cells(v)
        costs = [float(objective(a, b, v, weight, eps, mask)) for v in fields]
    return fields[int(np.argmin(costs))]
