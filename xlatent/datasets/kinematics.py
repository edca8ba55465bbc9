"""Motions of the synthetic cases, solved exactly by characteristics.

A motion maps the fraction ``t`` and the map-cell positions ``(px, py)`` of the pixel centres
(east, north) to the texture positions sampled there (the departure points), and gives the
steady velocity ``(u, v)`` in m s-1: closed form for translation, rotation, vortex, shear and
strain; RK4 for the radial flows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xlatent.datasets.grid import CELL, SECONDS

# A motion maps (fraction t, px, py) to the texture positions sampled there
# and to the velocity (u, v) in m s-1.
Positions = Callable[[float, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
Velocity = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def shift(east: float, north: float) -> tuple[Positions, Velocity]:
    """Uniform translation by ``(east, north)`` cells over the interval."""

    def positions(t, px, py):
        return px - east * t, py - north * t

    def velocity(px, py):
        u = np.full(np.broadcast_shapes(px.shape, py.shape), east * CELL / SECONDS)
        return u, np.full_like(u, north * CELL / SECONDS)

    return positions, velocity


def spin(theta_deg: float, xc: float, yc: float) -> tuple[Positions, Velocity]:
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


def vortex(theta_deg: float, radius: float, xc: float, yc: float) -> tuple[Positions, Velocity]:
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


def shear(speed: float, width: float, yc: float) -> tuple[Positions, Velocity]:
    """Parallel shear layer ``u = speed * tanh((y - yc) / width)`` cells per interval, ``v = 0``."""

    def positions(t, px, py):
        return px - speed * np.tanh((py - yc) / width) * t + 0 * py, py + 0 * px

    def velocity(px, py):
        u = speed * np.tanh((py - yc) / width) * CELL / SECONDS + 0 * px
        return u, np.zeros_like(u)

    return positions, velocity


def strain(rate: float, angle_deg: float, xc: float, yc: float) -> tuple[Positions, Velocity]:
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


def rk4_departure(velocity: Callable, t: float, px: np.ndarray, py: np.ndarray,
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


def radial(rate: float, radius: float, xc: float, yc: float) -> tuple[Positions, Velocity]:
    """Radial flow ``rate * d * exp(-|d|**2 / (2 radius**2))`` cells per interval about
    ``(xc, yc)``: divergent for ``rate > 0``, convergent for ``rate < 0``. Not closed-form:
    departure points by RK4 (128 steps per interval; error far below 1e-6 cells)."""

    def cells(px, py):
        dx, dy = px - xc, py - yc
        g = rate * np.exp(-(dx**2 + dy**2) / (2 * radius**2))
        return g * dx, g * dy

    def positions(t, px, py):
        return rk4_departure(cells, t, px, py)

    def velocity(px, py):
        u, v = cells(px, py)
        return u * CELL / SECONDS, v * CELL / SECONDS

    return positions, velocity
