"""Synthetic image pairs with known truth.

Each case is a SAR-like sea-ice texture on a 1 km polar stereographic grid
(EPSG:3413) observed twice, 12 hours apart, together with the true in-between
frames and the true velocity field at every frame time.

The texture is analytic (a sum of random Fourier modes passed through an
exponential), so frames at any sub-pixel displacement are exact: no
resampling is involved anywhere.

Examples
--------
>>> from xlatent import datasets
>>> case = datasets.load("rotation", size=64)
>>> case.first.dims, case.frames.sizes["time"]
(('y', 'x'), 7)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import rioxarray  # noqa: F401  (registers the ``.rio`` accessor)
import xarray as xr

__all__ = ["CASES", "SyntheticCase", "load", "new_features", "rotation", "translation"]

CASES = ("translation", "rotation", "new_features")

CRS = "EPSG:3413"
CELL = 1000.0  # grid spacing in metres
X_UL, Y_UL = -500_000.0, 500_000.0  # upper-left corner of the grid, metres
START = np.datetime64("2024-03-01T00:00", "ns")
INTERVAL = np.timedelta64(12, "h").astype("timedelta64[ns]")
SECONDS = INTERVAL / np.timedelta64(1, "s")  # 43200.0

N_MODES = 240
WAVELENGTHS = (3.0, 40.0)  # cells
SLOPE = 1.2  # mode amplitude ~ |k| ** -SLOPE
GAIN = 0.6  # backscatter ~ exp(GAIN * f), f of unit variance
CAP = 3.0  # soft upper bound of the backscatter


@dataclass(frozen=True, eq=False)
class SyntheticCase:
    """A synthetic image pair with its true in-between frames and motion.

    Attributes
    ----------
    first, last : xarray.DataArray
        The two observations, dims ``("y", "x")``, float32, with a scalar
        ``time`` coordinate 12 hours apart.
    frames : xarray.DataArray
        ``steps + 1`` true frames from ``first`` to ``last`` inclusive, dims
        ``("time", "y", "x")``, with an ``interp_fraction`` coordinate along
        ``time`` running from 0 to 1.
    flow : xarray.Dataset
        True velocity ``u`` (toward +x) and ``v`` (toward +y, i.e. north) in
        m s-1 at each time of ``frames``.
    name : str
        Case name, one of `CASES`.
    description : str
        One-line description of the motion.
    """

    first: xr.DataArray
    last: xr.DataArray
    frames: xr.DataArray
    flow: xr.Dataset
    name: str
    description: str


@dataclass(frozen=True)
class _Texture:
    """Random red-spectrum Fourier texture, evaluated at map-cell positions."""

    kx: np.ndarray
    ky: np.ndarray
    phase: np.ndarray
    amp: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator) -> _Texture:
        k = rng.uniform(*(2 * np.pi / np.array(WAVELENGTHS[::-1])), N_MODES)
        angle = rng.uniform(0, 2 * np.pi, N_MODES)
        phase = rng.uniform(0, 2 * np.pi, N_MODES)
        amp = k**-SLOPE
        amp /= np.sqrt(np.sum(amp**2) / 2)  # unit variance
        return cls(k * np.cos(angle), k * np.sin(angle), phase, amp)

    def __call__(self, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        """Backscatter at positions ``(px, py)`` (map cells: east, north)."""
        f = np.zeros(np.broadcast_shapes(px.shape, py.shape))
        for kx, ky, phase, amp in zip(self.kx, self.ky, self.phase, self.amp):
            f += amp * np.cos(kx * px + ky * py + phase)
        b = np.exp(GAIN * f - GAIN**2 / 2)  # log-normal, mean 1
        return CAP * np.tanh(b / CAP)  # smooth saturation of bright spots


@dataclass(frozen=True)
class _Cracks:
    """Thin dark linear leads (Gaussian cross-section, rounded ends)."""

    centre: np.ndarray  # (n, 2) map cells
    direction: np.ndarray  # (n, 2) unit vectors along the crack
    half_length: np.ndarray  # (n,) cells
    width: np.ndarray  # (n,) Gaussian sigma, cells
    depth: float = 0.6

    @classmethod
    def random(cls, rng: np.random.Generator, size: int) -> _Cracks:
        n = int(rng.integers(3, 7))
        centre = rng.uniform(0.2 * size, 0.8 * size, (n, 2)) * [1, -1]
        angle = rng.uniform(0, np.pi, n)
        direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        return cls(centre, direction, rng.uniform(0.15, 0.35, n) * size, rng.uniform(1.0, 1.5, n))

    def __call__(self, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        """Multiplicative darkening factor in ``[1 - depth, 1]``."""
        g = np.zeros(np.broadcast_shapes(px.shape, py.shape))
        for (cx, cy), (dx, dy), half, width in zip(
            self.centre, self.direction, self.half_length, self.width
        ):
            along = (px - cx) * dx + (py - cy) * dy
            across = -(px - cx) * dy + (py - cy) * dx
            beyond = np.maximum(np.abs(along) - half, 0.0)
            g = np.maximum(g, np.exp(-(across**2 + beyond**2) / (2 * width**2)))
        return 1.0 - self.depth * g


def _smoothstep(t: float, start: float = 0.4) -> float:
    s = np.clip((t - start) / (1.0 - start), 0.0, 1.0)
    return float(s * s * (3 - 2 * s))


# A motion maps (fraction t, px, py) to the texture positions sampled there
# and to the velocity (u, v) in m s-1.
_Positions = Callable[[float, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
_Velocity = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _shift(east: float, north: float) -> tuple[_Positions, _Velocity]:
    """Uniform translation by ``(east, north)`` cells over the interval."""

    def positions(t, px, py):
        return px - east * t, py - north * t

    def velocity(px, py):
        u = np.full(np.broadcast_shapes(px.shape, py.shape), east * CELL / SECONDS)
        return u, np.full_like(u, north * CELL / SECONDS)

    return positions, velocity


def _spin(theta_deg: float, xc: float, yc: float) -> tuple[_Positions, _Velocity]:
    """Counter-clockwise solid-body rotation about ``(xc, yc)`` (map cells)."""
    theta = np.deg2rad(theta_deg)
    omega = theta / SECONDS  # rad s-1

    def positions(t, px, py):
        c, s = np.cos(theta * t), np.sin(theta * t)
        dx, dy = px - xc, py - yc
        return c * dx + s * dy + xc, -s * dx + c * dy + yc

    def velocity(px, py):
        return -omega * (py - yc) * CELL, omega * (px - xc) * CELL

    return positions, velocity


def _build(
    name: str,
    description: str,
    size: int,
    steps: int,
    seed: int,
    motion: Callable[[int], tuple[_Positions, _Velocity]],
    cracks: bool = False,
) -> SyntheticCase:
    if size < 2 or steps < 1:
        raise ValueError(f"need size >= 2 and steps >= 1, got size={size}, steps={steps}")
    rng = np.random.default_rng(seed)
    texture = _Texture.random(rng)
    leads = _Cracks.random(rng, size) if cracks else None
    positions, velocity = motion(size)

    # Map-cell positions of the pixel centres: column -> east, row -> south.
    idx = np.arange(size, dtype=float)
    px, py = idx[None, :], -idx[:, None]
    fractions = np.linspace(0.0, 1.0, steps + 1)
    frames = []
    for t in fractions:
        qx, qy = positions(t, px, py)
        img = texture(qx, qy)
        if leads is not None:
            img = img * (1.0 - _smoothstep(t) * (1.0 - leads(qx, qy)))
        frames.append(img)
    u, v = velocity(px + 0 * py, py + 0 * px)

    x = X_UL + CELL / 2 + CELL * idx
    y = Y_UL - CELL / 2 - CELL * idx
    ns = np.round(fractions * INTERVAL.astype(np.int64)).astype(np.int64)
    coords = {
        "time": ("time", START + ns.astype("timedelta64[ns]")),
        "interp_fraction": ("time", fractions),
        "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}),
        "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}),
    }
    dims = ("time", "y", "x")
    stack = xr.DataArray(
        np.stack(frames).astype(np.float32),
        coords=coords,
        dims=dims,
        name="backscatter",
        attrs={"units": "1", "long_name": "synthetic SAR-like backscatter"},
    )
    stack = stack.rio.write_crs(CRS).rio.write_transform()
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
    flow = flow.rio.write_crs(CRS).rio.write_transform()
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
        lambda n: _shift(5.0, 3.0),
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
        lambda n: _spin(10.0, (n - 1) / 2, -(n - 1) / 2),
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
        lambda n: _shift(3.0, -2.0),
        cracks=True,
    )


_FACTORIES = {"translation": translation, "rotation": rotation, "new_features": new_features}


def load(name: str, **kwargs) -> SyntheticCase:
    """Build a synthetic case by name.

    Parameters
    ----------
    name : str
        One of `CASES`: ``"translation"``, ``"rotation"``, ``"new_features"``.
    **kwargs
        Passed to the case function (``size``, ``steps``, ``seed``).

    Returns
    -------
    SyntheticCase

    Raises
    ------
    ValueError
        If `name` is not a known case.
    """
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown case {name!r}; valid cases are {', '.join(CASES)}") from None
    return factory(**kwargs)


from xlatent.datasets_wave import wave_equation  # noqa: E402  (the forecasting data, issue 15)

__all__ += ["wave_equation"]
