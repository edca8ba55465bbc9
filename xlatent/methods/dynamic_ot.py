"""``dynamic-ot``: Benamou–Brenier dynamic optimal transport by proximal splitting, in torch.

The path ``rho(t, x)`` between the two densities and its momentum ``m = rho v`` minimise the
kinetic energy ``int_0^1 int |m|^2 / rho dx dt`` under the continuity equation
``d_t rho + div m = f`` (Benamou & Brenier 2000), solved as in Papadakis, Peyré & Oudet (2014),
"Optimal transport with proximal splitting" (SIAM J. Imaging Sci. 7(1)): Douglas–Rachford on a
staggered space-time grid ``U`` (``rho`` on the ``ot_steps + 1`` time levels, ``m`` on the cell
faces) and its interpolation ``V`` onto the centred grid, with

- the projection on the continuity equation (with the end densities and zero normal momentum on
  the image border) by a space-time Poisson solve, diagonal in the DCT basis (Neumann
  boundaries), done with ``torch.fft`` on the mirrored array;
- the projection on ``V = I(U)`` by one small ``(n + 1) x (n + 1)`` solve along each axis;
- the proximal map of ``|m|^2 / rho`` per cell, from the largest root of a cubic (Newton).

Units: time runs over ``[0, 1]`` (``interp_fraction``); space is the grid, scaled so that the
longer side has length 1 during the solve. Reported energies are in grid cells² (of the input
grid): for balanced transport ``path_energy`` is the squared Wasserstein-2 distance between the two
normalised densities, comparable to ``ot.emd2`` with the squared Euclidean cost in cells.

- **Densities.** As in ``method="ot"``: each channel minus the smallest value of the two images,
  zero where an input is NaN. Balanced (``unbalanced=None``): both are normalised to one and the
  total mass is interpolated linearly. Unbalanced (``unbalanced=tau``): a source ``f`` may create
  or destroy mass at the cost ``tau * |f|^2 / rho`` (the slides' form; ``tau -> inf`` gives back
  the balanced answer, a small ``tau`` a plain blend); both densities are divided by their mean
  mass only.
- **Obstacles.** ``obstacle`` (a boolean ``(y, x)`` mask or DataArray, True where nothing may
  move, e.g. land) forces the centred momentum (and source) to zero there, as Papadakis et al.
  do. The face momenta only average to zero there: walls one cell thick can leak through a
  checkerboard; use walls at least two cells thick (on the solver's grid).
- **Large scenes.** The solve runs on a grid of at most ``ot_grid`` cells a side (block means),
  is upsampled, and the detail finer than that grid is carried as a linear blend of what the
  coarse path misses at both ends (as ``method="ot"``): the ends come back exactly. Memory is
  about 30 float64 arrays of ``(ot_steps + 1) x ot_grid^2`` plus the mirrored FFT
  (8x ``ot_steps x ot_grid^2`` complex): about 0.3 GB at ``ot_grid=128, ot_steps=32``. Time is
  ``ot_iters`` space-time FFTs of ``8 x ot_steps x ot_grid^2`` points.
- **Motion.** ``v = m / rho`` on each of the ``ot_steps`` time cells is one stage of the flow
  (stamped at the cell's middle time), in grid cells per unit ``interp_fraction``; NaN where the
  density is below ``1e-3`` of its largest value (no motion defined where there is no mass), and
  zero on obstacles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xlatent.checks import whole
from xlatent.device import resolve_device
from xlatent.exceptions import ConfigError
from xlatent.methods.base import MethodResult, physical, register
from xlatent.resample import coarse_shape, pool, resize

_NO_MASS = 1e-3  # relative density below which the velocity is undefined (NaN)
_NEWTON = 20
_RELAX = 1.8  # Douglas-Rachford over-relaxation: 1.9 reached in 300 iterations what 1.0 did in 600


@dataclass
class Geodesic:
    """A solved dynamic transport problem (torch tensors on the solver's device).

    ``rho``: ``(N + 1, P, Q)`` densities at times ``k / N`` (mass per cell, summing to the input
    masses); ``velocity``: ``(N, 2, P, Q)`` (column, row) in cells per unit time on the time cells,
    NaN where there is no mass; ``source``: ``(N, P, Q)`` mass created per cell per unit time
    (zeros when balanced); ``energy``: the kinetic (plus source) energy in cells²; ``iters``: the
    iterations run; ``residual``: the final relative Douglas–Rachford step.
    """

    rho: object
    velocity: object
    source: object
    energy: float
    iters: int
    residual: float


def _averaging(n: int, dtype, device):
    """``(n, n + 1)`` matrix averaging neighbouring staggered values, and ``inv(Id + A^T A)``."""
    import torch

    a = torch.zeros(n, n + 1, dtype=dtype, device=device)
    idx = torch.arange(n, device=device)
    a[idx, idx] = 0.5
    a[idx, idx + 1] = 0.5
    return a, torch.linalg.inv(torch.eye(n + 1, dtype=dtype, device=device) + a.T @ a)


def _along(mat, x, axis: int):
    """Apply ``mat`` to every line of ``x`` along ``axis``."""
    import torch

    return torch.movedim(torch.movedim(x, axis, -1) @ mat.T, -1, axis)


class _Solver:
    """Douglas–Rachford iterations of Papadakis, Peyré & Oudet (2014) for one pair of densities."""

    def __init__(self, rho0, rho1, steps: int, tau: float | None, obstacle, gamma: float):
        self.n, (self.p, self.q) = steps, rho0.shape
        self.dt, self.dx = 1.0 / steps, 1.0 / max(self.p, self.q)
        self.rho0, self.rho1 = rho0 / self.dx**2, rho1 / self.dx**2  # mass per cell -> density
        self.tau, self.gamma, self.alpha = tau, gamma, _RELAX
        self.obstacle = obstacle
        dtype, dev = rho0.dtype, rho0.device
        self.at, self.mt = _averaging(self.n, dtype, dev)
        self.ax, self.mx = _averaging(self.q, dtype, dev)
        self.ay, self.my = _averaging(self.p, dtype, dev)
        self.inv_eig = self._poisson_eigen(dtype, dev)
        self.mx_lines = self.my_lines = None
        if obstacle is not None:
            self._pin_obstacle(obstacle)

    def _pin_obstacle(self, obstacle):
        """Per-line solves of the graph projection with the faces touching an obstacle held at zero."""
        import torch

        pad_x = torch.nn.functional.pad(obstacle[None].double(), (1, 1))[0] > 0  # (P, Q + 2)
        pin_x = pad_x[:, :-1] | pad_x[:, 1:]  # (P, Q + 1): faces next to an obstacle cell
        pad_y = torch.nn.functional.pad(obstacle[None, None].double(), (0, 0, 1, 1))[0, 0] > 0
        pin_y = (pad_y[:-1] | pad_y[1:]).T  # (Q, P + 1)
        self.mx_lines = self._pinned_inverse(self.mx, pin_x)
        self.my_lines = self._pinned_inverse(self.my, pin_y)

    @staticmethod
    def _pinned_inverse(inv, pins):
        import torch

        a = torch.linalg.inv(inv)  # Id + A^T A
        k = a.expand(pins.shape[0], -1, -1).clone()
        free = (~pins).to(a.dtype)
        k = k * free[:, :, None] * free[:, None, :] + torch.diag_embed(1 - free)
        return torch.linalg.inv(k) * free[:, :, None] * free[:, None, :]

    # --- the space-time Poisson solve (Neumann, DCT via the mirrored FFT) ---
    def _poisson_eigen(self, dtype, dev):
        import torch

        def lam(n, h, half=False):
            k = torch.arange(n + 1 if half else 2 * n, dtype=dtype, device=dev)
            return (2 - 2 * torch.cos(math.pi * k / n)) / h**2

        eig = lam(self.n, self.dt)[:, None, None] + lam(self.p, self.dx)[None, :, None] + lam(self.q, self.dx, True)
        if self.tau is not None:
            eig = eig + 1.0 / self.tau
        inv = torch.where(eig > 0, 1.0 / torch.where(eig > 0, eig, 1.0), 0.0)
        return inv

    def _poisson(self, r):
        import torch

        m = torch.cat((r, r.flip(0)), 0)
        m = torch.cat((m, m.flip(1)), 1)
        m = torch.cat((m, m.flip(2)), 2)
        phi = torch.fft.irfftn(torch.fft.rfftn(m) * self.inv_eig, s=m.shape)
        return phi[: self.n, : self.p, : self.q]

    def divergence(self, u):
        rho, mx, my, g = u
        r = (rho[1:] - rho[:-1]) / self.dt + (mx[..., 1:] - mx[..., :-1]) / self.dx + (my[:, 1:] - my[:, :-1]) / self.dx
        return r if g is None else r - g / math.sqrt(self.tau)

    def project_constraint(self, u):
        """Orthogonal projection of the staggered ``u`` on the continuity equation and the ends."""
        rho, mx, my, g = (None if x is None else x.clone() for x in u)
        rho[0], rho[-1] = self.rho0, self.rho1
        mx[..., 0] = mx[..., -1] = 0
        my[:, 0] = my[:, -1] = 0
        phi = self._poisson(self.divergence((rho, mx, my, g)))
        rho[1:-1] -= (phi[:-1] - phi[1:]) / self.dt
        mx[..., 1:-1] -= (phi[..., :-1] - phi[..., 1:]) / self.dx
        my[:, 1:-1] -= (phi[:, :-1] - phi[:, 1:]) / self.dx
        if g is not None:
            g = g + phi / math.sqrt(self.tau)
        return rho, mx, my, g

    # --- the staggered -> centred interpolation and the projection on its graph ---
    def interp(self, u):
        rho, mx, my, g = u
        return (_along(self.at, rho, 0), _along(self.ax, mx, 2), _along(self.ay, my, 1), g)

    def project_graph(self, u, v):
        import torch

        (rho, mx, my, g), (rb, mbx, mby, gb) = u, v
        rho = _along(self.mt, rho + _along(self.at.T, rb, 0), 0)
        mx, my = mx + _along(self.ax.T, mbx, 2), my + _along(self.ay.T, mby, 1)
        if self.mx_lines is None:
            mx, my = _along(self.mx, mx, 2), _along(self.my, my, 1)
        else:  # one small solve per row (column) with the faces on obstacles held at zero
            mx = torch.einsum("pjk,npk->npj", self.mx_lines, mx)
            my = torch.einsum("qab,nbq->naq", self.my_lines, my)
        g = None if g is None else (g + gb) / 2
        uu = (rho, mx, my, g)
        return uu, self.interp(uu)

    # --- the proximal map of the kinetic energy, per centred cell ---
    def prox_energy(self, v):
        """Prox of ``gamma * |w|^2 / (2 rho)`` with ``w = (m, sqrt(tau) f)``, per cell."""
        import torch

        rb, mbx, mby, gb = v
        gam = self.gamma
        w2 = mbx**2 + mby**2 + (0 if gb is None else gb**2)
        # largest root s = rho + gamma of s^3 - a s^2 - k = 0, Newton from above (convex there)
        a, k = rb + gam, gam * w2 / 2
        s = torch.clamp(a, min=0) + k.pow(1 / 3) + 1e-30
        for _ in range(_NEWTON):
            s = s - (s * s * (s - a) - k) / torch.clamp(s * (3 * s - 2 * a), min=1e-300)
        rho = torch.clamp(s - gam, min=0)
        scale = rho / (rho + gam)
        if self.obstacle is not None:
            scale = torch.where(self.obstacle, 0.0, scale)
        return rho, mbx * scale, mby * scale, None if gb is None else gb * scale

    def energy(self, u) -> float:
        """Kinetic energy of the staggered ``u`` in cells² (mass per cell summing to the input)."""
        import torch

        rb, mbx, mby, gb = self.interp(u)
        w2 = mbx**2 + mby**2 + (0 if gb is None else gb**2)
        pos = rb > 1e-12 * rb.max()
        e = torch.where(pos, w2 / torch.where(pos, rb, 1.0), 0.0).sum() * self.dt * self.dx**2
        return float(e) / self.dx**2

    def run(self, iters: int, tol: float = 1e-7, check: int = 25):
        import torch

        zeros = torch.zeros
        kw = {"dtype": self.rho0.dtype, "device": self.rho0.device}
        n, p, q = self.n, self.p, self.q
        t = torch.linspace(0, 1, n + 1, **kw)[:, None, None]
        rho = (1 - t) * self.rho0 + t * self.rho1  # the blend as a start
        g = None if self.tau is None else zeros(n, p, q, **kw)
        zu = (rho, zeros(n, p, q + 1, **kw), zeros(n, p + 1, q, **kw), g)
        zv = self.interp(zu)
        alpha, it, res = self.alpha, 0, float("nan")
        for it in range(1, iters + 1):
            xu, xv = self.project_graph(zu, zv)
            ru = tuple(None if a is None else 2 * a - b for a, b in zip(xu, zu))
            rv = tuple(None if a is None else 2 * a - b for a, b in zip(xv, zv))
            yu, yv = self.project_constraint(ru), self.prox_energy(rv)
            zu = tuple(None if z is None else z + alpha * (y - x) for z, x, y in zip(zu, xu, yu))
            zv = tuple(None if z is None else z + alpha * (y - x) for z, x, y in zip(zv, xv, yv))
            if it % check == 0 or it == iters:
                res = float(torch.sqrt(sum(((y - x) ** 2).sum() for x, y in zip(xu, yu) if x is not None))
                            / torch.sqrt(sum((y**2).sum() for y in yu if y is not None)))
                if res < tol:
                    break
        return yu, it, res

    def geodesic(self, u, iters: int, res: float) -> Geodesic:
        import torch

        rb, mbx, mby, gb = self.interp(u)
        pos = rb > _NO_MASS * rb.max()
        denom = torch.where(pos, rb, 1.0) * self.dx  # velocity in cells per unit time
        vel = torch.stack((mbx / denom, mby / denom), 1)
        vel = torch.where(pos[:, None], vel, float("nan"))
        if self.obstacle is not None:  # zero there by the constraint (up to the solver's tolerance)
            vel = torch.where(self.obstacle, 0.0, vel)
        src = torch.zeros_like(rb) if gb is None else gb / math.sqrt(self.tau) * self.dx**2
        return Geodesic(u[0] * self.dx**2, vel, src, self.energy(u), iters, res)


def solve(rho0, rho1, steps: int = 16, iters: int = 2000, unbalanced: float | None = None, obstacle=None,
          device: str = "auto", gamma: float | None = None, tol: float = 1e-7) -> Geodesic:
    """Dynamic optimal transport between two non-negative ``(P, Q)`` masses (numpy or torch).

    Parameters
    ----------
    rho0, rho1 : array
        Masses per cell; equal totals unless ``unbalanced`` is set.
    steps : int
        Time cells ``N`` (``N + 1`` time levels).
    iters : int
        Most Douglas–Rachford iterations (stops earlier when the relative step is below ``tol``).
    unbalanced : float, optional
        ``tau``: source cost ``tau * |f|^2 / rho``; None for balanced transport.
    obstacle : array of bool, optional
        ``(P, Q)``, True where the momentum must be zero.
    device : str
        ``"auto"`` (CUDA when available, else CPU) or a torch device; float64 throughout (CPU when
        the device has no float64, e.g. Apple MPS).
    gamma : float, optional
        Douglas–Rachford step in the solver's density units; default half the largest density
        (a trade between the speed of the energy, fast with small steps, and of the shape).

    Returns
    -------
    Geodesic
    """
    import torch

    dev = resolve_device(device)
    if dev.type == "mps":
        dev = torch.device("cpu")
    kw = {"dtype": torch.float64, "device": dev}
    r0, r1 = torch.as_tensor(np.asarray(rho0, dtype=np.float64), **kw), torch.as_tensor(np.asarray(rho1, dtype=np.float64), **kw)
    obs = None if obstacle is None else torch.as_tensor(np.asarray(obstacle, dtype=bool), device=dev)
    if obs is not None:  # nothing can enter or leave an obstacle: mass on it is left out
        r0, r1 = torch.where(obs, 0.0, r0), torch.where(obs, 0.0, r1)
        if unbalanced is None:
            r0, r1 = r0 / r0.sum() * (r0.sum() + r1.sum()) / 2, r1 / r1.sum() * (r0.sum() + r1.sum()) / 2
    if unbalanced is None and abs(float(r0.sum() - r1.sum())) > 1e-9 * float(r0.sum() + r1.sum()):
        raise ConfigError("Balanced dynamic OT needs equal masses: normalise them or pass unbalanced=tau.")
    dx2 = 1.0 / max(r0.shape) ** 2
    gamma = 0.5 * float(torch.maximum(r0.max(), r1.max())) / dx2 if gamma is None else gamma
    solver = _Solver(r0, r1, int(steps), unbalanced, obs, gamma)
    with torch.no_grad():
        u, it, res = solver.run(int(iters), tol)
        return solver.geodesic(u, it, res)


def _obstacle_mask(obstacle, shape: tuple[int, int]) -> np.ndarray | None:
    if obstacle is None:
        return None
    values = np.asarray(getattr(obstacle, "values", obstacle))
    if values.shape != tuple(shape):
        raise ConfigError(
            f"obstacle has shape {values.shape}, the images {tuple(shape)} (rows, columns): pass a boolean "
            "mask on the images' grid, dims in the images' (y, x) order."
        )
    if values.dtype != bool:
        values = np.nan_to_num(values.astype(np.float64)) != 0
    return values


def _at(levels: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation of ``(N + 1, ...)`` time levels at ``t`` in [0, 1]."""
    pos = np.clip(t, 0.0, 1.0) * (len(levels) - 1)
    k = min(int(np.floor(pos)), len(levels) - 2)
    return (k + 1 - pos) * levels[k] + (pos - k) * levels[k + 1]


def _channel(x0, x1, valid, fractions, obstacle, opts):
    h, w = x0.shape
    base = min(x0[valid].min(), x1[valid].min())
    m0, m1 = np.where(valid, x0 - base, 0.0), np.where(valid, x1 - base, 0.0)
    s0, s1 = m0.sum(), m1.sum()
    coarse = coarse_shape(h, w, opts["ot_grid"])
    c0, c1 = pool(m0, coarse), pool(m1, coarse)
    if c0.sum() <= 1e-12 or c1.sum() <= 1e-12:  # nothing to transport: a plain blend
        return np.stack([(1 - t) * m0 + t * m1 + base for t in fractions]), None
    tau = opts["unbalanced"]
    scale = (c0.sum(), c1.sum()) if tau is None else ((c0.sum() + c1.sum()) / 2,) * 2
    obs = None if obstacle is None else pool(obstacle.astype(np.float64), coarse) > 0.5
    geo = solve(c0 / scale[0], c1 / scale[1], opts["ot_steps"], opts["ot_iters"], tau, obs, opts["device"])
    levels = geo.rho.cpu().numpy()

    def transported(t):  # the coarse path at t, upsampled, in the inputs' units
        mass = (1 - t) * scale[0] + t * scale[1] if tau is None else scale[0]
        return resize(_at(levels, t) * mass, (h, w))

    detail0, detail1 = m0 - transported(0.0), m1 - transported(1.0)
    frames = np.stack([transported(t) + (1 - t) * detail0 + t * detail1 + base for t in fractions])
    vel = geo.velocity.cpu().numpy()
    stretch = np.array([w / coarse[1], h / coarse[0]])[None, :, None, None]  # coarse -> fine cells
    field = np.stack([[resize(np.nan_to_num(v), (h, w)) for v in stage] for stage in vel * stretch])
    nomass = np.stack([resize(np.isnan(stage[0]).astype(np.float64), (h, w), "nearest") > 0.5 for stage in vel])
    field[np.broadcast_to(nomass[:, None], field.shape)] = np.nan
    energy = geo.energy * float(np.prod(stretch.ravel()))  # cells² of the input grid
    return frames, (field, s0 + s1, energy, geo)


@register("dynamic-ot", options={"ot_steps": 16, "ot_iters": 1000, "ot_grid": 64, "unbalanced": None,
                                  "obstacle": None}, uses_device=True)
def dynamic_ot(first, last, mask, fractions, *, mean, std, device: str = "auto", ot_steps: int = 16,
               ot_iters: int = 1000, ot_grid: int = 64, unbalanced: float | None = None, obstacle=None,
               **_) -> MethodResult:
    """Frames along the Benamou–Brenier geodesic of each channel and its velocity stages (see the
    module docstring)."""
    opts = {"ot_steps": whole("ot_steps", ot_steps, 1), "ot_iters": whole("ot_iters", ot_iters, 1),
            "ot_grid": whole("ot_grid", ot_grid, 2), "unbalanced": unbalanced, "device": device}
    if unbalanced is not None and (isinstance(unbalanced, bool) or not np.isfinite(unbalanced) or unbalanced <= 0):
        raise ConfigError(f"unbalanced must be None (balanced) or a positive number tau, got {unbalanced!r}.")
    opts["unbalanced"] = None if unbalanced is None else float(unbalanced)
    obs = _obstacle_mask(obstacle, first.shape[-2:])
    a, b = physical(first, mean, std).astype(np.float64), physical(last, mean, std).astype(np.float64)
    fractions = np.asarray(fractions, dtype=np.float64)
    frames, motions = [], []
    for k in range(a.shape[0]):
        f, motion = _channel(a[k], b[k], mask, fractions, obs, opts)
        frames.append(f)
        if motion is not None:
            motions.append(motion)
    out = (np.stack(frames, axis=1) - mean[None, :, None, None]) / std[None, :, None, None]
    info = {"ot_steps": opts["ot_steps"], "ot_grid": opts["ot_grid"]}
    field = None
    if motions:  # channels' fields and energies weighted by their mass
        weights = np.array([m[1] for m in motions])
        field = np.nansum([m[0] * wt for m, wt in zip(motions, weights)], axis=0) / weights.sum()
        field[np.all([np.isnan(m[0]) for m in motions], axis=0)] = np.nan
        field = field.astype(np.float32)
        info["path_energy"] = float(np.dot([m[2] for m in motions], weights) / weights.sum())
        info["ot_iters_run"] = max(m[3].iters for m in motions)
        info["ot_residual"] = max(m[3].residual for m in motions)
    return MethodResult(frames=out.astype(np.float32), fields=field, info=info)
