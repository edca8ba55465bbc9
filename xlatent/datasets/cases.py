"""The synthetic cases: a texture (:mod:`xlatent.datasets.textures`) moved by a motion
(:mod:`xlatent.datasets.kinematics`) on the cases' grid (:mod:`xlatent.datasets.grid`), with the
true in-between frames and the true velocity at every frame time; ``growing_blobs``, whose mass
moves, grows, appears and vanishes; :func:`load` by name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from xlatent.datasets import kinematics
from xlatent.datasets.change import IN_PLACE, diurnal, diurnal_drift, diurnal_projected
from xlatent.datasets.grid import CELL, SECONDS, SyntheticCase, georeferenced, grid_coords
from xlatent.datasets.kinematics import Positions, Velocity
from xlatent.datasets.textures import FACTORIES, smoothstep

__all__ = ["ANALYTIC", "CASES", "CURVED", "analytic", "growing_blobs", "load", "new_features", "rotation",
           "translation"]

CASES = ("translation", "rotation", "new_features", "growing_blobs")


def _build(
    name: str,
    description: str,
    size: int,
    steps: int,
    seed: int,
    motion: Callable[[int], tuple[Positions, Velocity]],
    cracks: bool = False,
    texture: str = "sea_ice",
    change: str | None = None,
) -> SyntheticCase:
    if size < 2 or steps < 1:
        raise ValueError(f"need size >= 2 and steps >= 1, got size={size}, steps={steps}")
    if texture not in FACTORIES:
        raise ValueError(f"unknown texture {texture!r}; valid textures are {', '.join(FACTORIES)}")
    rng = np.random.default_rng(seed)
    render, var_name, var_attrs = FACTORIES[texture](rng, size, change or ("leads" if cracks else None))
    positions, velocity = motion(size)

    # Map-cell positions of the pixel centres: column -> east, row -> south.
    idx = np.arange(size, dtype=float)
    px, py = idx[None, :], -idx[:, None]
    fractions = np.linspace(0.0, 1.0, steps + 1)
    frames = []
    for t in fractions:
        qx, qy = positions(t, px, py)
        frames.append(render(t, qx, qy))
    u, v = velocity(px + 0 * py, py + 0 * px)

    coords = grid_coords(idx, fractions)
    dims = ("time", "y", "x")
    stack = xr.DataArray(
        np.stack(frames).astype(np.float32),
        coords=coords,
        dims=dims,
        name=var_name,
        attrs=dict(var_attrs),
    )
    stack = georeferenced(stack)
    shape = (steps + 1, size, size)
    attrs = {"units": "m s-1"}
    flow = xr.Dataset(
        {
            "u": (dims, np.broadcast_to(u, shape).astype(np.float32),
                  {**attrs, "long_name": "true velocity toward +x"}),
            "v": (dims, np.broadcast_to(v, shape).astype(np.float32),
                  {**attrs, "long_name": "true velocity toward +y (north)"}),
        },
        coords=stack.drop_vars("spatial_ref").coords,
    )
    flow = georeferenced(flow)
    first, last = (stack.isel(time=i).drop_vars("interp_fraction") for i in (0, -1))
    return SyntheticCase(first, last, stack, flow, name, description)


def translation(size: int = 128, steps: int = 6, seed: int = 0) -> SyntheticCase:
    """Uniform translation; texture enters and leaves through the borders.

    The ice moves 5 cells toward +column (east) and 3 cells toward -row
    (north) over the 12 h interval.

    Parameters
    ----------
    size : int, default 128
        Number of rows and columns (1 km cells).
    steps : int, default 6
        Number of intervals between ``first`` and ``last``; ``frames`` holds
        ``steps + 1`` images.
    seed : int, default 0
        Seed of the random texture.

    Returns
    -------
    SyntheticCase
    """
    return _build(
        "translation",
        "uniform translation of 5 km east and 3 km north in 12 h",
        size, steps, seed,
        lambda n: kinematics.shift(5.0, 3.0),
    )


def rotation(size: int = 128, steps: int = 6, seed: int = 0) -> SyntheticCase:
    """Counter-clockwise solid-body rotation of 10 degrees about the grid centre.

    The velocity is ``u = -omega (y - yc)``, ``v = omega (x - xc)`` with
    ``omega = 10 deg / 12 h``.

    Parameters
    ----------
    size : int, default 128
        Number of rows and columns (1 km cells).
    steps : int, default 6
        Number of intervals between ``first`` and ``last``; ``frames`` holds
        ``steps + 1`` images.
    seed : int, default 0
        Seed of the random texture.

    Returns
    -------
    SyntheticCase
    """
    return _build(
        "rotation",
        "counter-clockwise solid-body rotation of 10 degrees in 12 h about the grid centre",
        size, steps, seed,
        lambda n: kinematics.spin(10.0, (n - 1) / 2, -(n - 1) / 2),
    )


def new_features(size: int = 128, steps: int = 6, seed: int = 0) -> SyntheticCase:
    """Translation with dark leads (cracks) that open during the interval.

    The ice moves 3 cells toward +column (east) and 2 cells toward +row
    (south). Three to six thin linear leads, fixed to the moving ice, are
    absent up to an interp fraction of 0.4 and deepen smoothly to a 60 %
    backscatter reduction at the last frame. The true flow is the
    translation velocity.

    Parameters
    ----------
    size : int, default 128
        Number of rows and columns (1 km cells).
    steps : int, default 6
        Number of intervals between ``first`` and ``last``; ``frames`` holds
        ``steps + 1`` images.
    seed : int, default 0
        Seed of the random texture and leads.

    Returns
    -------
    SyntheticCase
    """
    return _build(
        "new_features",
        "translation of 3 km east and 2 km south in 12 h with leads opening after 40 %",
        size, steps, seed,
        lambda n: kinematics.shift(3.0, -2.0),
        cracks=True,
    )


def _centre(n: int) -> tuple[float, float]:
    return (n - 1) / 2, -(n - 1) / 2


# Analytic flows solved exactly by characteristics: name -> (description, motion, texture, change).
# Sizes of the motion scale with the grid (angles are fixed), so a case means the same at any size.
_ANALYTIC: dict[str, tuple[str, Callable[[int], tuple[Positions, Velocity]], str, str | None]] = {
    "rotation20": ("counter-clockwise solid-body rotation of 20 degrees about the centre, log-normal texture",
                   lambda n: kinematics.spin(20.0, *_centre(n)), "lognormal", None),
    "rotation30": ("counter-clockwise solid-body rotation of 30 degrees about the centre, rain-like texture",
                   lambda n: kinematics.spin(30.0, *_centre(n)), "rain", None),
    "vortex": ("vortex turning 60 degrees at the centre, exp(-r^2 / 2R^2) with R = size / 5, SAR-like texture",
               lambda n: kinematics.vortex(60.0, n / 5, *_centre(n)), "sar", None),
    "vortex_rain": ("vortex turning 45 degrees at the centre, R = size / 4, rain-like texture",
                    lambda n: kinematics.vortex(45.0, n / 4, *_centre(n)), "rain", None),
    "shear": ("shear layer u = U tanh(y / L), U = 0.08 size, L = 0.094 size per interval, rain-like texture",
              lambda n: kinematics.shear(0.08 * n, 0.094 * n, _centre(n)[1]), "rain", None),
    "strain": ("pure deformation, stretching 15 % along 30 degrees from east, log-normal texture",
               lambda n: kinematics.strain(0.15, 30.0, *_centre(n)), "lognormal", None),
    "convergent": ("radial convergence toward the centre, up to 0.047 size per interval, log-normal texture",
                   lambda n: kinematics.radial(-0.3, n / 4, *_centre(n)), "lognormal", None),
    "divergent": ("radial divergence from the centre, up to 0.047 size per interval, SAR-like texture",
                  lambda n: kinematics.radial(0.3, n / 4, *_centre(n)), "sar", None),
    "growth": ("translation of 4 cells east and 3 north with patches growing or decaying x2.5, rain-like texture",
               lambda n: kinematics.shift(4.0, 3.0), "rain", "growth"),
}
ANALYTIC = tuple(_ANALYTIC)
CURVED = ("rotation", "rotation20", "rotation30", "vortex", "vortex_rain")


def analytic(name: str, size: int = 128, steps: int = 6, seed: int = 0, texture: str | None = None) -> SyntheticCase:
    """An analytic flow with its exact solution (see `ANALYTIC` for the names).

    The frame at fraction ``t`` is the texture sampled at the exact departure point of each
    cell: closed-form for rotation, vortex, shear, strain and translation; RK4 with 128 steps
    per interval for the radial flows. Nothing is resampled, so there is no numerical
    diffusion. The velocity is steady.

    Parameters
    ----------
    name : str
        One of `ANALYTIC`.
    size, steps, seed
        As for :func:`translation`.
    texture : str, optional
        One of `TEXTURES` instead of the case's own (``"lognormal"``, ``"sar"``, ``"rain"``,
        ``"sea_ice"``).

    Returns
    -------
    SyntheticCase
    """
    try:
        description, motion, default, change = _ANALYTIC[name]
    except KeyError:
        raise ValueError(f"unknown analytic case {name!r}; valid cases are {', '.join(ANALYTIC)}") from None
    return _build(name, description, size, steps, seed, motion, texture=texture or default, change=change)


_FACTORIES = {"translation": translation, "rotation": rotation, "new_features": new_features}


def load(name: str, **kwargs) -> SyntheticCase:
    """Build a synthetic case by name.

    Parameters
    ----------
    name : str
        One of `CASES` (``"translation"``, ``"rotation"``, ``"new_features"``, ``"growing_blobs"``), `ANALYTIC`
        or `IN_PLACE` (fields that warm and cool in place: :mod:`~xlatent.datasets.change`).
    **kwargs
        Passed to the case function (``size``, ``steps``, ``seed``; ``texture`` for the
        analytic cases).

    Returns
    -------
    SyntheticCase

    Raises
    ------
    ValueError
        If `name` is not a known case.
    """
    if name in _ANALYTIC:
        return analytic(name, **kwargs)
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown case {name!r}; valid cases are {', '.join(CASES + ANALYTIC + IN_PLACE)}") from None
    return factory(**kwargs)


# --- growing_blobs: rain-cell-like blobs that move, grow, appear and vanish (not a texture) ---
_DRIZZLE = 0.05  # background level: the fields stay positive like the other cases
# (east, north) centre as fractions of the side, displacement in fractions of the side over the
# interval, Gaussian sigma (fractions of the side) at t = 0 and t = 1, peak, and the kind.
_BLOBS = (
    ((0.22, -0.30), (0.07, -0.04), (0.055, 0.055), 2.2, "moves"),
    ((0.70, -0.24), (-0.06, -0.05), (0.045, 0.045), 1.6, "moves"),
    ((0.28, -0.74), (0.0, 0.0), (0.035, 0.065), 2.0, "grows"),
    ((0.74, -0.72), (0.0, 0.0), (0.05, 0.05), 1.8, "appears"),
    ((0.50, -0.50), (0.0, 0.0), (0.05, 0.05), 1.4, "vanishes"),
)


def _presence(kind: str, t: float) -> float:
    """Peak factor at fraction ``t``: appearing blobs rise after 0.6, vanishing ones fade by 0.4."""
    if kind == "appears":
        return smoothstep(t, 0.6)
    if kind == "vanishes":
        return smoothstep(1.0 - t, 0.6)
    return 1.0


def growing_blobs(size: int = 128, steps: int = 6, seed: int = 0) -> SyntheticCase:
    """Rain-cell-like Gaussian blobs: two move, one grows, one appears, one vanishes.

    A stand-in for satellite or radar rain where mass is moved, created and destroyed (what
    the optimal-transport methods are for). Over the 12 h interval two blobs translate (by
    about 7-9 % of the side), one widens from a sigma of 3.5 % to 6.5 % of the side at constant
    peak (its mass almost triples), one appears (absent until a fraction of 0.6, full at 1) and
    one vanishes (fading out by 0.4), on a background of 0.05. Positions, sizes and
    displacements scale with ``size``; ``seed`` jitters the centres by up to 3 % of the side.

    The true velocity is that of the blob holding the mass at each cell (intensity-weighted
    over the blobs, tending to zero away from them): the translation of the moving blobs, the
    radial spreading ``(d sigma / dt) / sigma * (x - centre)`` of the growing one (which keeps its
    brightness constant along the motion), and zero for the appearing and vanishing ones, whose
    change is a source, not a motion. Appearance and disappearance happen away from mid-time,
    so brightness constancy holds there.

    Parameters
    ----------
    size : int, default 128
        Number of rows and columns (1 km cells).
    steps : int, default 6
        Number of intervals between ``first`` and ``last``; ``frames`` holds ``steps + 1``
        images.
    seed : int, default 0
        Seed of the jitter of the blob centres.

    Returns
    -------
    SyntheticCase
        As the other cases (``backscatter``-like dimensionless values, EPSG:3413, 12 h).
    """
    if size < 2 or steps < 1:
        raise ValueError(f"need size >= 2 and steps >= 1, got size={size}, steps={steps}")
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(-0.03, 0.03, (len(_BLOBS), 2)) * size
    idx = np.arange(size, dtype=float)
    px, py = idx[None, :], -idx[:, None]  # map cells: column -> east, row -> south
    fractions = np.linspace(0.0, 1.0, steps + 1)
    frames, us, vs = [], [], []
    for t in fractions:
        img, mom_u, mom_v, weight = np.full((size, size), _DRIZZLE), 0.0, 0.0, 1e-3
        for (centre, shift, (s0, s1), peak, kind), jit in zip(_BLOBS, jitter):
            cx = centre[0] * size + jit[0] + shift[0] * size * t
            cy = centre[1] * size + jit[1] + shift[1] * size * t
            sigma = (s0 + (s1 - s0) * t) * size
            blob = peak * _presence(kind, t) * np.exp(-((px - cx) ** 2 + (py - cy) ** 2) / (2 * sigma**2))
            spread = (s1 - s0) * size / sigma  # (d sigma / dt) / sigma, per interval
            u = (shift[0] * size + spread * (px - cx)) * CELL / SECONDS
            v = (shift[1] * size + spread * (py - cy)) * CELL / SECONDS
            img, mom_u, mom_v, weight = img + blob, mom_u + blob * u, mom_v + blob * v, weight + blob
        frames.append(img)
        us.append(mom_u / weight)
        vs.append(mom_v / weight)
    coords = grid_coords(idx, fractions)
    dims = ("time", "y", "x")
    stack = xr.DataArray(np.stack(frames).astype(np.float32), coords=coords, dims=dims, name="backscatter",
                         attrs={"units": "1", "long_name": "synthetic rain-cell-like blobs"})
    stack = georeferenced(stack)
    attrs = {"units": "m s-1"}
    flow = xr.Dataset(
        {"u": (dims, np.stack(us).astype(np.float32), {**attrs, "long_name": "true velocity toward +x"}),
         "v": (dims, np.stack(vs).astype(np.float32), {**attrs, "long_name": "true velocity toward +y (north)"})},
        coords=stack.drop_vars("spatial_ref").coords,
    )
    flow = georeferenced(flow)
    first, last = (stack.isel(time=i).drop_vars("interp_fraction") for i in (0, -1))
    description = "two blobs move, one grows, one appears after 60 %, one vanishes by 40 % in 12 h"
    return SyntheticCase(first, last, stack, flow, "growing_blobs", description)


_FACTORIES["growing_blobs"] = growing_blobs
_FACTORIES.update(dict(zip(IN_PLACE, (diurnal, diurnal_drift, diurnal_projected))))
