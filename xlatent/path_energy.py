"""Path energy ``J(rho)``: how much motion a sequence of frames assumes (Feng & Strohmer, 2024).

For each step between consecutive frames the momentum is eliminated (the least-energy flux that
explains the change, Benamou–Brenier): with ``rho_hat`` the mean of the two frames, ``phi``
solves the weighted Poisson problem ``-div(rho_hat grad phi) = d_t rho`` (no flux through the
border), and the step costs ``dt * sum rho_hat |grad phi|^2``. The solve is matrix-free
conjugate gradients preconditioned by the DCT (Neumann) Laplacian, batched over the steps, in
torch; the gradient comes from the adjoint (``dJ/db = 2 phi``, ``dJ/dw = -|grad phi|^2`` per
face), not by differentiating through the iterations.

Conventions: each frame is made a density (minus the smallest value of all frames, NaN as zero)
and normalised to unit mass, so that growth and decay are not counted as motion; time runs over
``[0, 1]`` (``interp_fraction`` when given); distances are in grid cells. For frames on a
Wasserstein geodesic ``J`` is the squared Wasserstein-2 distance between the ends, in cells², so
it can be compared with ``ot.emd2`` (squared Euclidean cost in cells) or ``method="dynamic-ot"``'s
``path_energy``. A linear blend of two separate blobs costs far more than moving one.

Where a frame has no mass the Poisson problem has no finite answer (mass cannot flow through an
empty cell); every face gets a conductance floor of ``floor`` times the mean density, so ``J``
stays finite there and grows as ``floor`` shrinks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xlatent import geo
from xlatent.exceptions import InputError

__all__ = ["path_energy", "path_energy_torch"]


def _neumann_inverse(shape, dtype, device):
    """Inverse eigenvalues of the 5-point Neumann Laplacian on the mirrored ``(2P, 2Q)`` grid."""
    import torch

    p, q = shape
    lp = 2 - 2 * torch.cos(torch.pi * torch.arange(2 * p, dtype=dtype, device=device) / p)
    lq = 2 - 2 * torch.cos(torch.pi * torch.arange(q + 1, dtype=dtype, device=device) / q)
    eig = lp[:, None] + lq[None, :]
    return torch.where(eig > 0, 1.0 / torch.where(eig > 0, eig, 1.0), 0.0)


def _precondition(r, inv_eig, scale):
    import torch

    p, q = r.shape[-2:]
    m = torch.cat((r, r.flip(-2)), -2)
    m = torch.cat((m, m.flip(-1)), -1)
    out = torch.fft.irfft2(torch.fft.rfft2(m) * inv_eig, s=m.shape[-2:])[..., :p, :q]
    return out / scale


def _apply(wx, wy, phi):
    """``-div(w grad phi)`` with no flux through the border, batched over leading dims."""
    import torch

    fx = wx * (phi[..., :, 1:] - phi[..., :, :-1])
    fy = wy * (phi[..., 1:, :] - phi[..., :-1, :])
    out = torch.zeros_like(phi)
    out[..., :, :-1] -= fx
    out[..., :, 1:] += fx
    out[..., :-1, :] -= fy
    out[..., 1:, :] += fy
    return out


def _cg(wx, wy, b, tol: float = 1e-10, max_iter: int = 1000):
    """Batched preconditioned conjugate gradients for ``A(w) phi = b`` (zero-mean ``b``)."""
    import torch

    def dot(a, c):
        return (a * c).sum(dim=(-2, -1), keepdim=True)

    inv_eig = _neumann_inverse(b.shape[-2:], b.dtype, b.device)
    scale = ((wx.mean(dim=(-2, -1), keepdim=True) + wy.mean(dim=(-2, -1), keepdim=True)) / 2).clamp(min=1e-300)
    x = torch.zeros_like(b)
    r = b.clone()
    z = _precondition(r, inv_eig, scale)
    p, rz = z, dot(r, z)
    bnorm = torch.sqrt(dot(b, b)).clamp(min=1e-300)
    for _ in range(max_iter):
        ap = _apply(wx, wy, p)
        pap = dot(p, ap)
        alpha = torch.where(pap > 0, rz / torch.where(pap > 0, pap, 1.0), 0.0)
        x = x + alpha * p
        r = r - alpha * ap
        if float((torch.sqrt(dot(r, r)) / bnorm).max()) < tol:
            break
        z = _precondition(r, inv_eig, scale)
        rz_new = dot(r, z)
        beta = torch.where(rz > 0, rz_new / torch.where(rz > 0, rz, 1.0), 0.0)
        p, rz = z + beta * p, rz_new
    return x


def _quadratic_form():
    import torch

    class QuadForm(torch.autograd.Function):
        """``b^T A(w)^+ b`` per batch entry, with its adjoint gradient."""

        @staticmethod
        def forward(ctx, wx, wy, b):
            phi = _cg(wx, wy, b)
            ctx.save_for_backward(phi)
            return (phi * b).sum(dim=(-2, -1))

        @staticmethod
        def backward(ctx, grad):
            (phi,) = ctx.saved_tensors
            g = grad[..., None, None]
            gx = phi[..., :, 1:] - phi[..., :, :-1]
            gy = phi[..., 1:, :] - phi[..., :-1, :]
            return -g * gx**2, -g * gy**2, 2 * g * phi

    return QuadForm


def path_energy_torch(rho, fractions=None, floor: float = 1e-2):
    """Differentiable path energy of non-negative densities ``rho`` ``(K, H, W)`` (torch).

    Parameters
    ----------
    rho : torch.Tensor
        ``K >= 2`` non-negative frames; each is normalised to unit mass.
    fractions : sequence of float, optional
        The frames' times in ``[0, 1]``; evenly spaced by default.
    floor : float
        Conductance floor on every face, as a fraction of the mean density.

    Returns
    -------
    torch.Tensor
        The scalar ``J`` in grid cells² (gradients flow to ``rho``).
    """
    import torch

    k = rho.shape[0]
    if rho.ndim != 3 or k < 2:
        raise InputError(f"path_energy_torch needs (K >= 2, H, W) frames, got shape {tuple(rho.shape)}.")
    rho = rho / rho.sum(dim=(-2, -1), keepdim=True).clamp(min=1e-300)
    t = torch.linspace(0, 1, k, dtype=rho.dtype, device=rho.device) if fractions is None else \
        torch.as_tensor(np.asarray(fractions, dtype=np.float64), dtype=rho.dtype, device=rho.device)
    dt = t[1:] - t[:-1]
    mid = (rho[1:] + rho[:-1]) / 2
    low = floor / (rho.shape[-1] * rho.shape[-2])
    wx = (mid[..., :, 1:] + mid[..., :, :-1]) / 2 + low
    wy = (mid[..., 1:, :] + mid[..., :-1, :]) / 2 + low
    b = rho[1:] - rho[:-1]
    return (_quadratic_form().apply(wx, wy, b) / dt).sum()


def _densities(frames: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``(K, C, H, W)`` float64 from numpy ``(K, [C,] H, W)`` or a frames DataArray, and its times."""
    fractions = None
    if hasattr(frames, "dims"):
        grid = geo.describe(frames.isel({frames.dims[0]: 0}))
        order = [frames.dims[0]] + ([grid.channel_dim] if grid.channel_dim else []) + [grid.y_dim, grid.x_dim]
        if "interp_fraction" in frames.coords:
            fractions = np.asarray(frames["interp_fraction"].values, dtype=np.float64)
        frames = frames.transpose(*order).values
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] < 2:
        raise InputError(f"path_energy needs (time >= 2, [channel,] y, x) frames, got shape {x.shape}.")
    return x, fractions


def path_energy(frames: Any, *, floor: float = 1e-2, device: str = "cpu") -> float:
    """Kinetic energy ``J`` of a sequence of frames: how much motion an interpolation assumed.

    Parameters
    ----------
    frames : numpy.ndarray or xarray.DataArray
        ``(time, [channel,] y, x)``: the frames of :func:`xlatent.interpolate` (times from its
        ``interp_fraction`` coord) or any array, taken as evenly spaced over ``[0, 1]``.
    floor : float
        Conductance floor on every face, as a fraction of the mean density (see the module).
    device : str
        Torch device of the solve (float64).

    Returns
    -------
    float
        ``J`` in grid cells² per unit mass (mean over channels, weighted by their mass): for a
        Wasserstein geodesic, the squared W2 distance between the first and last frames.
    """
    import torch

    x, fractions = _densities(frames)
    energies, weights = [], []
    for c in range(x.shape[1]):
        d = x[:, c]
        d = np.nan_to_num(d - np.nanmin(d), nan=0.0)
        weights.append(d.sum())
        if d.sum() <= 0:
            energies.append(0.0)
            continue
        with torch.no_grad():
            rho = torch.as_tensor(d, dtype=torch.float64, device=device)
            energies.append(float(path_energy_torch(rho, fractions, floor)))
    w = np.asarray(weights)
    return float(np.dot(energies, w) / w.sum()) if w.sum() > 0 else 0.0
