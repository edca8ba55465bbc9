"""Textures of the synthetic cases: analytic fields evaluated at any map position, so that frames
at any sub-pixel displacement are exact (no resampling anywhere).

A texture factory takes ``(rng, size, change)`` and returns the renderer ``(t, qx, qy) -> image``
(``t`` the fraction, ``qx``/``qy`` the texture positions sampled), the variable's name and its
attributes; :data:`FACTORIES` maps the names of :data:`TEXTURES` to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

N_MODES = 240
WAVELENGTHS = (3.0, 40.0)  # cells
SLOPE = 1.2  # mode amplitude ~ |k| ** -SLOPE
GAIN = 0.6  # backscatter ~ exp(GAIN * f), f of unit variance
CAP = 3.0  # soft upper bound of the backscatter


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


def smoothstep(t: float, start: float = 0.4) -> float:
    """0 up to ``start``, rising smoothly (cubic Hermite) to 1 at ``t = 1``."""
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
            img = img * (1.0 - smoothstep(t) * (1.0 - leads(qx, qy)))
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


FACTORIES = {"sea_ice": _sea_ice, "lognormal": _with_change(_lognormal), "sar": _with_change(_sar),
             "rain": _with_change(_rain)}
TEXTURES = tuple(FACTORIES)
