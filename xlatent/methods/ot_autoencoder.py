"""``ot-autoencoder``: an autoencoder whose straight latent lines decode to least-energy paths.

Feng & Strohmer (2024), "Improving Autoencoder Image Interpolation via Dynamic Optimal
Transport" (slides): a convolutional autoencoder ``(E, D)`` is fitted to the pair at hand
with the loss

    ||D(E(x0)) - x0||^2 + ||D(E(x1)) - x1||^2 + alpha * J(D((1 - t) z0 + t z1), t in T)

where ``J`` is :func:`xlatent.path_energy_torch` (the kinetic energy of the decoded sequence, the
momentum eliminated by one weighted Poisson solve per step) over ``ae_path`` evenly spaced
fractions ``T`` from 0 to 1. Frames are ``D((1 - t) z0 + t z1)``.

- **Training** draws random patches at the same place in both images (the grid of origins of
  the latent model, ``patch``/``stride``), ``ae_batch`` per step, Adam from ``ae_lr`` decaying
  tenfold over ``ae_iters`` steps. The reconstruction error is the mean squared error in the
  normalised units, masked where an input is NaN; ``J`` is taken per patch and channel in
  float64 and divided by the patch's cells, which makes it the energy on a unit square (the
  slides' domain), so that ``alpha`` does not depend on the patch size. ``alpha = 0`` is the
  plain autoencoder (and skips the Poisson solves).
- **Densities** for ``J`` are made as in ``method="ot"``: each channel minus the smallest value
  of the two inputs, clipped at zero, zero where an input is NaN; ``J`` normalises each frame
  to unit mass, so growth and decay are not counted as motion.
- **Network** (:class:`xlatent.model.autoencoder.ConvAutoencoder`): fully convolutional with
  ``ae_levels`` stride-2 down-samplings and no skips, ``ae_latent`` channels at
  ``1 / 2**ae_levels`` of the resolution; inference runs on tiles of ``config.tile`` cells
  with a halo of the network's reach.
- **Ends.** With ``exact_endpoints`` (the library's contract, default) the decoder's misses at
  the ends are blended in, ``D(z_t) + (1 - t)(x0 - D(z0)) + t (x1 - D(z1))``, so the first and
  last frames are the inputs; ``exact_endpoints=False`` gives ``D(z_t)`` alone.
- **Motion.** The path's own velocity: for the frames rendered at the ``ae_path`` fractions, the
  least-energy flux of each step is ``rho_hat grad(phi) / dt`` with ``phi`` the Poisson solution
  of ``J`` (Benamou–Brenier), so the velocity is ``grad(phi) / dt``: one stage per step, in
  grid cells per unit ``interp_fraction``, NaN where the density is below ``1e-3`` of its
  largest value, channels weighted by their mass. ``info["path_energy"]`` is ``J`` of that
  path in cells² (as ``xlatent.path_energy`` would give).
- **alpha** (default 1.0): measured on the synthetic cases (``docs/method.md``).
"""

from __future__ import annotations

import math

import numpy as np

from xlatent._lazy import torch_side
from xlatent.checks import real, whole
from xlatent.device import resolve_device
from xlatent.methods.base import MethodResult, register
from xlatent.patches import patch_origins, run_tiled_retrying
from xlatent.path_energy import _cg, _quadratic_form

ALPHA = 1.0
_NO_MASS = 1e-3
_OPTIONS = {"alpha": ALPHA, "ae_iters": 300, "ae_latent": 8, "ae_width": 16, "ae_levels": 2, "ae_path": 5,
            "ae_batch": 4, "ae_lr": 2e-3, "ae_grid": 32}


def _check(opts: dict) -> dict:
    out = {"alpha": real("alpha", opts["alpha"], 0.0, False), "ae_lr": real("ae_lr", opts["ae_lr"], 0.0, True)}
    for name, least in (("ae_iters", 1), ("ae_latent", 1), ("ae_width", 2), ("ae_levels", 0), ("ae_path", 3),
                        ("ae_batch", 1), ("ae_grid", 2)):
        out[name] = whole(name, opts[name], least)
    return out


def _floor(first: np.ndarray, last: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel smallest valid value of the two (normalised) inputs: the densities' zero."""
    valid = mask.astype(bool)
    if not valid.any():
        return np.minimum(first.min(axis=(1, 2)), last.min(axis=(1, 2)))
    return np.minimum(first[:, valid].min(axis=1), last[:, valid].min(axis=1))


def _energy(decoded, lo, weight, grid: int):
    """Mean ``J`` per unit square over the patches and channels of decoded paths ``(K, B, C, h, w)``.

    :func:`xlatent.path_energy_torch` batched over the ``B * C`` paths (one conjugate-gradient
    solve for all), on densities block-averaged to at most ``grid`` cells a side.
    """
    import torch
    import torch.nn.functional as F

    k, b, c, h, w = decoded.shape
    jdev = torch.device("cpu") if decoded.device.type == "mps" else decoded.device  # no float64 on MPS
    dens = (torch.relu(decoded - lo[None, None, :, None, None]) * weight[None]).flatten(0, 2)
    size = (max(1, round(h * min(1.0, grid / max(h, w)))), max(1, round(w * min(1.0, grid / max(h, w)))))
    if size != (h, w):
        dens = F.adaptive_avg_pool2d(dens, size)
    rho = dens.to(device=jdev, dtype=torch.float64).unflatten(0, (k, b * c)).transpose(0, 1)  # (B C, K, h, w)
    # as path_energy_torch, for each of the B * C paths at once
    rho = rho / rho.sum(dim=(-2, -1), keepdim=True).clamp(min=1e-300)
    mid = (rho[:, 1:] + rho[:, :-1]) / 2
    low = 1e-2 / (size[0] * size[1])
    wx = (mid[..., :, 1:] + mid[..., :, :-1]) / 2 + low
    wy = (mid[..., 1:, :] + mid[..., :-1, :]) / 2 + low
    energy = _quadratic_form().apply(wx, wy, rho[:, 1:] - rho[:, :-1]).sum() * (k - 1)
    return energy.to(decoded.device, torch.float32) / (b * c * size[0] * size[1])


def _fit(model, first, last, mask, patch, stride, opts, dev, seed, progress):
    """Train ``model`` on patches of the pair (:func:`xlatent.train.fit_loop`); returns
    (seconds, last loss, last J per unit square)."""
    import torch

    train = torch_side("train")
    c, (ph, pw) = first.shape[0], patch
    origins = patch_origins(first.shape[-2:], patch, stride)
    pair = torch.from_numpy(np.concatenate((first, last, mask[None].astype(np.float32)), axis=0)).to(dev)
    lo = torch.from_numpy(_floor(first, last, mask).astype(np.float32)).to(dev)
    k, nb, alpha = opts["ae_path"], opts["ae_batch"], opts["alpha"]
    fractions = np.linspace(0.0, 1.0, k)
    t = torch.from_numpy(fractions[1:-1].astype(np.float32)).to(dev).view(-1, 1, 1, 1, 1)

    def step(rng: np.random.Generator):
        pick = origins[rng.integers(len(origins), size=nb)]
        batch = torch.stack([pair[:, r : r + ph, q : q + pw] for r, q in pick])
        x0, x1, m = batch[:, :c], batch[:, c : 2 * c], batch[:, 2 * c :]
        z = model.encode(torch.cat((x0, x1)))
        z0, z1 = z[:nb], z[nb:]
        zt = ((1 - t) * z0[None] + t * z1[None]).flatten(0, 1)
        dec = model.decode(torch.cat((z0, zt, z1)), (ph, pw)).unflatten(0, (k, nb))
        cells = m.sum().clamp(min=1) * c
        loss = (((dec[0] - x0) ** 2 * m).sum() + ((dec[-1] - x1) ** 2 * m).sum()) / cells
        j = float("nan")
        if alpha > 0:
            energy = _energy(dec, lo, m, opts["ae_grid"])
            loss = loss + alpha * energy
            j = float(energy.detach())
        return loss, {"loss": float(loss.detach()), "path_energy": j}

    history = train.fit_loop(model, step, lr=opts["ae_lr"], decay=0.1 ** (1.0 / opts["ae_iters"]),
                             max_iters=opts["ae_iters"], seed=seed, keys=("loss", "path_energy"),
                             callbacks=[train.Progress("xlatent ot-autoencoder", opts["ae_iters"], progress)])
    return history.seconds, history.loss[-1], history.parts["path_energy"][-1]


def _render(model, first, last, fractions, exact: bool, tile: int, dev) -> np.ndarray:
    """Frames ``(K, C, H, W)`` decoded from ``(1 - t) z0 + t z1`` on tiles, ends blended in."""
    import torch

    c, k = first.shape[0], len(fractions)
    t = torch.tensor(np.asarray(fractions, dtype=np.float32), device=dev).view(-1, 1, 1, 1)

    def run(window):
        x = torch.from_numpy(np.ascontiguousarray(window)).to(dev)
        with torch.inference_mode():
            z = model.encode(torch.stack((x[:c], x[c:])))
            dec = model.decode(torch.cat(((1 - t) * z[:1] + t * z[1:], z)), tuple(x.shape[-2:])).cpu().numpy()
        return [dec[:k], dec[k], dec[k + 1]]

    stack = np.concatenate((first, last), axis=0)
    frames, d0, d1 = run_tiled_retrying(run, stack, tile, model.reach(), model.alignment, 0)
    if exact:
        tt = np.asarray(fractions, dtype=np.float32)[:, None, None, None]
        frames = frames + (1 - tt) * (first - d0)[None] + tt * (last - d1)[None]
    return frames.astype(np.float32)


def path_motion(path: np.ndarray, mask: np.ndarray, lo: np.ndarray, device="cpu"):
    """Velocity stages ``(N, 2, H, W)`` (column, row; cells per unit time) and ``J`` (cells²) of
    a path ``(N + 1, C, H, W)`` of frames evenly spaced over [0, 1], from the Poisson solves of
    the path energy: ``v = grad(phi) / dt`` (see the module docstring)."""
    import torch

    n = path.shape[0] - 1
    dt = 1.0 / n
    fields, energies, weights = [], [], []
    for ch in range(path.shape[1]):
        d = np.where(mask, np.clip(path[:, ch].astype(np.float64) - lo[ch], 0, None), 0.0)
        mass = d.sum(axis=(1, 2))
        if (mass <= 0).any():
            continue
        rho = torch.as_tensor(d / mass[:, None, None], dtype=torch.float64, device=device)
        mid = (rho[1:] + rho[:-1]) / 2
        low = 1e-2 / (rho.shape[-1] * rho.shape[-2])  # path_energy's default conductance floor
        wx = (mid[..., :, 1:] + mid[..., :, :-1]) / 2 + low
        wy = (mid[..., 1:, :] + mid[..., :-1, :]) / 2 + low
        b = rho[1:] - rho[:-1]
        with torch.no_grad():
            phi = _cg(wx, wy, b)
        energies.append(float((phi * b).sum()) / dt)
        gx = torch.nn.functional.pad((phi[..., :, 1:] - phi[..., :, :-1]) / dt, (1, 1))  # no flux at borders
        gy = torch.nn.functional.pad((phi[..., 1:, :] - phi[..., :-1, :]) / dt, (0, 0, 1, 1))
        vel = torch.stack(((gx[..., 1:] + gx[..., :-1]) / 2, (gy[..., 1:, :] + gy[..., :-1, :]) / 2), dim=1)
        vel = vel.cpu().numpy()
        nomass = (mid < _NO_MASS * mid.amax(dim=(-2, -1), keepdim=True)).cpu().numpy()
        vel[np.broadcast_to(nomass[:, None], vel.shape)] = np.nan
        fields.append(vel)
        weights.append(mass.sum())
    if not fields:
        return None, 0.0
    w = np.asarray(weights) / np.sum(weights)
    field = np.nansum([f * wt for f, wt in zip(fields, w)], axis=0) / np.sum(
        [np.where(np.isnan(f), 0.0, wt) for f, wt in zip(fields, w)], axis=0).clip(min=1e-300)
    field[np.all([np.isnan(f) for f in fields], axis=0)] = np.nan
    return field.astype(np.float32), float(np.dot(energies, w))


@register("ot-autoencoder", options=dict(_OPTIONS), uses_device=True)
def ot_autoencoder(first, last, mask, fractions, *, patch, stride, config=None, device="auto", seed=0,
                   progress=True, exact_endpoints=True, **options) -> MethodResult:
    """Frames decoded from the straight latent line of an autoencoder trained with the path energy,
    and the motion of the decoded path (see the module docstring)."""
    import torch

    opts = _check({**_OPTIONS, **{k: v for k, v in options.items() if k in _OPTIONS}})
    dev = resolve_device(device)
    if seed is not None:  # the initial weights are part of what the seed fixes
        torch.manual_seed(seed)
    autoencoder = torch_side("model.autoencoder")
    with torch.device(dev):  # built where it trains
        model = autoencoder.ConvAutoencoder(first.shape[0], opts["ae_latent"], opts["ae_width"], opts["ae_levels"])
    valid = np.asarray(mask, dtype=bool)
    seconds, loss, j_unit = _fit(model, first, last, valid, tuple(patch), tuple(stride), opts, dev, seed, progress)
    tile = int(getattr(config, "tile", 512))
    frames = _render(model, first, last, fractions, exact_endpoints, tile, dev)
    path = _render(model, first, last, np.linspace(0.0, 1.0, opts["ae_path"]), exact_endpoints, tile, dev)
    jdev = torch.device("cpu") if dev.type == "mps" else dev
    field, energy = path_motion(path, valid, _floor(first, last, valid), jdev)
    info = {"device": str(dev), "train_seconds": seconds, "ae_loss": loss, "alpha": opts["alpha"],
            "path_energy": energy}
    if not math.isnan(j_unit):
        info["ae_path_energy_unit"] = j_unit
    return MethodResult(frames=frames, fields=field, info=info, fitted=model)
