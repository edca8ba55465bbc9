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
import xarray as xr

from xlatent._synthetic import CELL, CRS, START, X_UL, Y_UL  # the grid of every case

__all__ = ["ANALYTIC", "CASES", "CURVED", "TEXTURES", "SyntheticCase", "analytic", "growing_blobs", "load", "new_features",
           "rotation", "translation"]

CASES = ("translation", "rotation", "new_features", "growing_blobs")

INTERVAL = np.timedelta64(12, "h").astype("timedelta64[ns]")
SECONDS = INTERVAL / np.timedelta64(1, "s")  # 43200.0


def _grid_coords(idx: np.ndarray, fractions: np.ndarray) -> dict:
    """Coords of a case: ``time`` (12 h from :data:`START`), ``interp_fraction`` and projected
    ``y`` (north-up) / ``x`` cell centres in metres for the cell indices ``idx``."""
    ns = np.round(fractions * INTERVAL.astype(np.int64)).astype(np.int64)
    return {
        "time": ("time", START + ns.astype("timedelta64[ns]")),
        "interp_fraction": ("time", fractions),
        "y": ("y", Y_UL - CELL / 2 - CELL * idx, {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}),
        "x": ("x", X_UL + CELL / 2 + CELL * idx, {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}),
    }


def _georeferenced(obj):
    """``obj`` with the cases' CRS and its affine transform written (rioxarray, imported here so
    that ``import xlatent.datasets`` stays light)."""
    import rioxarray  # noqa: F401  (registers the ``.rio`` accessor)

    return obj.rio.write_crs(CRS).rio.write_transform()


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


# A renderer maps (fraction t, texture positions qx, qy) to the image at t.
_Render = Callable[[float, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Modes:
    """Gaussian-like random field of unit variance: a sum of random plane waves."""

    kx: np.ndarray
    ky: np.ndarray
    phase: np.ndarray
    amp: np.ndarray

    @classmethod
    def random(cls, rng: np.random.Generator, wavelengths: tuple[float, float], slope: float,
               n: int = N_MODES) -> _Modes:
        k = rng.uniform(*(2 * np.pi / np.array(wavelengths[::-1])), n)
        angle = rng.uniform(0, 2 * np.pi, n)
        phase = rng.uniform(0, 2 * np.pi, n)
        amp = k**-slope
        amp /= np.sqrt(np.sum(amp**2) / 2)
        return cls(k * np.cos(angle), k * np.sin(angle), phase, amp)

    def __call__(self, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        f = np.zeros(np.broadcast_shapes(px.shape, py.shape))
        for kx, ky, phase, amp in zip(self.kx, self.ky, self.phase, self.amp):
            f += amp * np.cos(kx * px + ky * py + phase)
        return f


@dataclass(frozen=True)
class _Leads:
    """Leads fixed to the ice that open one by one: each deepens over ``ramp`` of the interval
    from its own start time."""

    cracks: _Cracks
    start: np.ndarray
    ramp: float = 0.3

    def __call__(self, t: float, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        out = np.ones(np.broadcast_shapes(px.shape, py.shape))
        for i, begin in enumerate(self.start):
            s = float(np.clip((t - begin) / self.ramp, 0.0, 1.0))
            if s == 0:
                continue
            one = _Cracks(*(a[i : i + 1] for a in (self.cracks.centre, self.cracks.direction,
                                                  self.cracks.half_length, self.cracks.width)))
            out *= 1.0 - s * s * (3 - 2 * s) * (1.0 - one(px, py))
        return out


def _growth(rng: np.random.Generator, size: int) -> Callable[[float, np.ndarray, np.ndarray], np.ndarray]:
    """Factor ``exp(t * g)`` attached to the moving field: Gaussian patches that grow (up to
    x2.5 over the interval) or decay (down to /2.5), so change is local and not transport."""
    n = int(rng.integers(3, 6))
    centre = rng.uniform(0.15 * size, 0.85 * size, (n, 2)) * [1, -1]
    radius = rng.uniform(0.08, 0.16, n) * size
    rate = np.log(2.5) * rng.choice([-1.0, 1.0], n)

    def factor(t, px, py):
        g = np.zeros(np.broadcast_shapes(px.shape, py.shape))
        for (cx, cy), r, a in zip(centre, radius, rate):
            g += a * np.exp(-((px - cx) ** 2 + (py - cy) ** 2) / (2 * r**2))
        return np.exp(t * g)

    return factor


def _sea_ice(rng: np.random.Generator, size: int, change: str | None) -> tuple[_Render, str, dict]:
    """The original cases' texture, with leads opening together after 40 % for ``"leads"``."""
    texture = _Texture.random(rng)
    leads = _Cracks.random(rng, size) if change == "leads" else None

    def render(t, qx, qy):
        img = texture(qx, qy)
        if leads is not None:
            img = img * (1.0 - _smoothstep(t) * (1.0 - leads(qx, qy)))
        return img

    return render, "backscatter", {"units": "1", "long_name": "synthetic SAR-like backscatter"}


def _lognormal(rng: np.random.Generator, size: int, change: str | None) -> tuple[_Render, str, dict]:
    """Broadband log-normal: ``exp(0.8 f)``, ``f`` with wavelengths from 2.5 to 64 cells."""
    field = _Modes.random(rng, (2.5, 64.0), 1.0)

    def render(t, qx, qy):
        return np.exp(0.8 * field(qx, qy) - 0.32)

    return render, "brightness", {"units": "1", "long_name": "synthetic broadband log-normal brightness"}


def _sar(rng: np.random.Generator, size: int, change: str | None) -> tuple[_Render, str, dict]:
    """SAR-like: the sea-ice texture times a fine speckle-like modulation (wavelengths 2.5-5
    cells, fixed to the ice), with three to six leads opening at different times."""
    texture = _Texture.random(rng)
    speckle = _Modes.random(rng, (2.5, 5.0), 0.0, n=120)
    leads = _Leads(_Cracks.random(rng, size), rng.uniform(0.1, 0.6, 6))

    def render(t, qx, qy):
        return texture(qx, qy) * np.exp(0.3 * speckle(qx, qy) - 0.045) * leads(t, qx, qy)

    return render, "backscatter", {"units": "1", "long_name": "synthetic speckled SAR-like backscatter with leads"}


def _rain(rng: np.random.Generator, size: int, change: str | None) -> tuple[_Render, str, dict]:
    """Intermittent rain-like: ``5 (exp(0.8 f) - exp(0.16))`` where positive, zero elsewhere (about
    40 % of the cells wet), ``f`` with wavelengths from 6 to 80 cells."""
    field = _Modes.random(rng, (6.0, 80.0), 1.3)

    def render(t, qx, qy):
        return 5.0 * np.maximum(np.exp(0.8 * field(qx, qy)) - np.exp(0.16), 0.0)

    return render, "rainfall_rate", {"units": "mm h-1", "long_name": "synthetic intermittent rain rate"}


def _with_change(factory: Callable) -> Callable:
    """A texture factory whose ``change="growth"`` multiplies the image by :func:`_growth`."""

    def wrapped(rng, size, change):
        render, name, attrs = factory(rng, size, change)
        if change != "growth":
            return render, name, attrs
        factor = _growth(rng, size)
        return (lambda t, qx, qy: render(t, qx, qy) * factor(t, qx, qy)), name, attrs

    return wrapped


_TEXTURES = {"sea_ice": _sea_ice, "lognormal": _with_change(_lognormal), "sar": _with_change(_sar),
             "rain": _with_change(_rain)}
TEXTURES = tuple(_TEXTURES)


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


def _turn(px: np.ndarray, py: np.ndarray, angle: np.ndarray, xc: float, yc: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(px, py)`` rotated clockwise by ``angle`` (radians) about ``(xc, yc)``."""
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = px - xc, py - yc
    return c * dx + s * dy + xc, -s * dx + c * dy + yc


def _vortex(theta_deg: float, radius: float, xc: float, yc: float) -> tuple[_Positions, _Velocity]:
    """Counter-clockwise vortex: turn ``theta_deg * exp(-r**2 / (2 radius**2))`` over the interval.

    Each cell stays on its circle about ``(xc, yc)``, so the departure point is the cell
    rotated back by its own turn: exact, for any ``t``.
    """
    theta = np.deg2rad(theta_deg)

    def turn(px, py):
        return theta * np.exp(-((px - xc) ** 2 + (py - yc) ** 2) / (2 * radius**2))

    def positions(t, px, py):
        return _turn(px, py, turn(px, py) * t, xc, yc)

    def velocity(px, py):
        omega = turn(px, py) / SECONDS
        return -omega * (py - yc) * CELL, omega * (px - xc) * CELL

    return positions, velocity


def _shear(speed: float, width: float, yc: float) -> tuple[_Positions, _Velocity]:
    """Parallel shear layer ``u = speed * tanh((y - yc) / width)`` cells per interval, ``v = 0``."""

    def positions(t, px, py):
        return px - speed * np.tanh((py - yc) / width) * t + 0 * py, py + 0 * px

    def velocity(px, py):
        u = speed * np.tanh((py - yc) / width) * CELL / SECONDS + 0 * px
        return u, np.zeros_like(u)

    return positions, velocity


def _strain(rate: float, angle_deg: float, xc: float, yc: float) -> tuple[_Positions, _Velocity]:
    """Pure deformation: stretching at ``rate`` per interval along ``angle_deg`` from east,
    compression at the same rate across it (area kept)."""
    ex, ey = np.cos(np.deg2rad(angle_deg)), np.sin(np.deg2rad(angle_deg))

    def axes(px, py):
        dx, dy = px - xc, py - yc
        return dx * ex + dy * ey, -dx * ey + dy * ex

    def back(s1, s2):
        return s1 * ex - s2 * ey + xc, s1 * ey + s2 * ex + yc

    def positions(t, px, py):
        s1, s2 = axes(px, py)
        return back(s1 * np.exp(-rate * t), s2 * np.exp(rate * t))

    def velocity(px, py):
        s1, s2 = axes(px, py)
        u, v = back(rate * s1, -rate * s2)
        return (u - xc) * CELL / SECONDS, (v - yc) * CELL / SECONDS

    return positions, velocity


def _rk4_departure(velocity: Callable, t: float, px: np.ndarray, py: np.ndarray,
                   steps_per_unit: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Departure points after ``t`` of the steady ``velocity`` (cells per interval): the
    characteristics traced back with classical RK4, ``steps_per_unit`` steps per interval."""
    qx, qy = np.broadcast_arrays(px.astype(float), py.astype(float))
    n = int(np.ceil(steps_per_unit * t))
    if n == 0:
        return qx.copy(), qy.copy()
    h = -t / n
    for _ in range(n):
        k1 = velocity(qx, qy)
        k2 = velocity(qx + h / 2 * k1[0], qy + h / 2 * k1[1])
        k3 = velocity(qx + h / 2 * k2[0], qy + h / 2 * k2[1])
        k4 = velocity(qx + h * k3[0], qy + h * k3[1])
        qx = qx + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        qy = qy + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    return qx, qy


def _radial(rate: float, radius: float, xc: float, yc: float) -> tuple[_Positions, _Velocity]:
    """Radial flow ``rate * d * exp(-|d|**2 / (2 radius**2))`` cells per interval about
    ``(xc, yc)``: divergent for ``rate > 0``, convergent for ``rate < 0``. Not closed-form:
    departure points by RK4 (128 steps per interval; error far below 1e-6 cells)."""

    def cells(px, py):
        dx, dy = px - xc, py - yc
        g = rate * np.exp(-(dx**2 + dy**2) / (2 * radius**2))
        return g * dx, g * dy

    def positions(t, px, py):
        return _rk4_departure(cells, t, px, py)

    def velocity(px, py):
        u, v = cells(px, py)
        return u * CELL / SECONDS, v * CELL / SECONDS

    return positions, velocity


def _build(
    name: str,
    description: str,
    size: int,
    steps: int,
    seed: int,
    motion: Callable[[int], tuple[_Positions, _Velocity]],
    cracks: bool = False,
    texture: str = "sea_ice",
    change: str | None = None,
) -> SyntheticCase:
    if size < 2 or steps < 1:
        raise ValueError(f"need size >= 2 and steps >= 1, got size={size}, steps={steps}")
    if texture not in _TEXTURES:
        raise ValueError(f"unknown texture {texture!r}; valid textures are {', '.join(_TEXTURES)}")
    rng = np.random.default_rng(seed)
    render, var_name, var_attrs = _TEXTURES[texture](rng, size, change or ("leads" if cracks else None))
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

    coords = _grid_coords(idx, fractions)
    dims = ("time", "y", "x")
    stack = xr.DataArray(
        np.stack(frames).astype(np.float32),
        coords=coords,
        dims=dims,
        name=var_name,
        attrs=dict(var_attrs),
    )
    stack = _georeferenced(stack)
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
    flow = _georeferenced(flow)
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


def _centre(n: int) -> tuple[float, float]:
    return (n - 1) / 2, -(n - 1) / 2


# Analytic flows solved exactly by characteristics: name -> (description, motion, texture, change).
# Sizes of the motion scale with the grid (angles are fixed), so a case means the same at any size.
_ANALYTIC: dict[str, tuple[str, Callable[[int], tuple[_Positions, _Velocity]], str, str | None]] = {
    "rotation20": ("counter-clockwise solid-body rotation of 20 degrees about the centre, log-normal texture",
                   lambda n: _spin(20.0, *_centre(n)), "lognormal", None),
    "rotation30": ("counter-clockwise solid-body rotation of 30 degrees about the centre, rain-like texture",
                   lambda n: _spin(30.0, *_centre(n)), "rain", None),
    "vortex": ("vortex turning 60 degrees at the centre, exp(-r^2 / 2R^2) with R = size / 5, SAR-like texture",
               lambda n: _vortex(60.0, n / 5, *_centre(n)), "sar", None),
    "vortex_rain": ("vortex turning 45 degrees at the centre, R = size / 4, rain-like texture",
                    lambda n: _vortex(45.0, n / 4, *_centre(n)), "rain", None),
    "shear": ("shear layer u = U tanh(y / L), U = 0.08 size, L = 0.094 size per interval, rain-like texture",
              lambda n: _shear(0.08 * n, 0.094 * n, _centre(n)[1]), "rain", None),
    "strain": ("pure deformation, stretching 15 % along 30 degrees from east, log-normal texture",
               lambda n: _strain(0.15, 30.0, *_centre(n)), "lognormal", None),
    "convergent": ("radial convergence toward the centre, up to 0.047 size per interval, log-normal texture",
                   lambda n: _radial(-0.3, n / 4, *_centre(n)), "lognormal", None),
    "divergent": ("radial divergence from the centre, up to 0.047 size per interval, SAR-like texture",
                  lambda n: _radial(0.3, n / 4, *_centre(n)), "sar", None),
    "growth": ("translation of 4 cells east and 3 north with patches growing or decaying x2.5, rain-like texture",
               lambda n: _shift(4.0, 3.0), "rain", "growth"),
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
        One of `CASES` (``"translation"``, ``"rotation"``, ``"new_features"``, ``"growing_blobs"``) or `ANALYTIC`.
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
        return _smoothstep(t, 0.6)
    if kind == "vanishes":
        return _smoothstep(1.0 - t, 0.6)
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
    coords = _grid_coords(idx, fractions)
    dims = ("time", "y", "x")
    stack = xr.DataArray(np.stack(frames).astype(np.float32), coords=coords, dims=dims, name="backscatter",
                         attrs={"units": "1", "long_name": "synthetic rain-cell-like blobs"})
    stack = _georeferenced(stack)
    attrs = {"units": "m s-1"}
    flow = xr.Dataset(
        {"u": (dims, np.stack(us).astype(np.float32), {**attrs, "long_name": "true velocity toward +x"}),
         "v": (dims, np.stack(vs).astype(np.float32), {**attrs, "long_name": "true velocity toward +y (north)"})},
        coords=stack.drop_vars("spatial_ref").coords,
    )
    flow = _georeferenced(flow)
    first, last = (stack.isel(time=i).drop_vars("interp_fraction") for i in (0, -1))
    description = "two blobs move, one grows, one appears after 60 %, one vanishes by 40 % in 12 h"
    return SyntheticCase(first, last, stack, flow, "growing_blobs", description)


_FACTORIES["growing_blobs"] = growing_blobs

from xlatent.datasets_wave import wave_equation  # noqa: E402  (the forecasting data, issue 15)

__all__ += ["wave_equation"]

from xlatent.datasets_change import IN_PLACE, diurnal, diurnal_drift, diurnal_projected, in_place  # noqa: E402  (issue 23)

_FACTORIES.update(dict(zip(IN_PLACE, (diurnal, diurnal_drift, diurnal_projected))))
__all__ += ["IN_PLACE", "diurnal", "diurnal_drift", "diurnal_projected", "in_place"]
