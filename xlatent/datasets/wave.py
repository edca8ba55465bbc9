"""WaveEq: the 2-D wave equation with a decaying central source (Donà et al. 2021, appendix D.1).

``w_tt = c**2 * lap(w) + f(x, y, t)`` on a square of ``size`` cells of unit spacing, Neumann
boundaries (zero normal derivative, by mirroring), ``w = w_t = 0`` at ``t = 0``, the source
``f = f0 * exp(-t / 0.05)`` in a central disc (radius 5 cells at 64 cells, scaled with ``size``),
``c ~ U(300, 400)`` and ``f0 ~ U(1, 30)`` drawn per sequence. Fourth-order finite differences in
space, Runge-Kutta 3/8 rule in time with step 0.001, one frame every 0.002; min-max scaled to
[0, 1] per sequence. The paper's frames are 64 x 64, 150 per sequence; ``size=32`` trains on a CPU
in minutes.

The result is georeferenced like the other synthetic cases (1 km cells, EPSG:3413, x/y in metres)
with one frame every 2 ms of datetime, so that it goes through the same calls as real data.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xlatent.datasets.grid import CELL, CRS, START, X_UL, Y_UL

__all__ = ["wave_equation"]

DT = 0.001  # solver step
FRAME_DT = 0.002  # time between frames
SOURCE_DECAY = 0.05  # T_0 of the source term


def _laplacian(w: np.ndarray) -> np.ndarray:
    """Fourth-order five-point Laplacian with mirrored (Neumann) borders."""
    p = np.pad(w, 2, mode="symmetric")
    c = p[2:-2, 2:-2]

    def second(a2, a1, b1, b2):
        return (-a2 + 16 * a1 - 30 * c + 16 * b1 - b2) / 12.0

    return (second(p[:-4, 2:-2], p[1:-3, 2:-2], p[3:-1, 2:-2], p[4:, 2:-2])
            + second(p[2:-2, :-4], p[2:-2, 1:-3], p[2:-2, 3:-1], p[2:-2, 4:]))


def _rk38(state: np.ndarray, t: float, dt: float, rhs) -> np.ndarray:
    """One step of the Runge-Kutta 3/8 rule."""
    k1 = rhs(state, t)
    k2 = rhs(state + dt * k1 / 3, t + dt / 3)
    k3 = rhs(state + dt * (k2 - k1 / 3), t + 2 * dt / 3)
    k4 = rhs(state + dt * (k1 - k2 + k3), t + dt)
    return state + dt * (k1 + 3 * k2 + 3 * k3 + k4) / 8


def wave_equation(size: int = 64, frames: int = 150, seed: int = 0) -> xr.DataArray:
    """One WaveEq sequence: ``(time, y, x)`` float32 in [0, 1].

    Parameters
    ----------
    size : int
        Cells a side (the paper: 64).
    frames : int
        Frames in the sequence, 2 ms apart (the paper: 150).
    seed : int
        Draws the wave speed ``c`` and the source amplitude ``f0`` (in the attrs).

    Examples
    --------
    >>> from xlatent.datasets import wave_equation
    >>> wave_equation(size=32, frames=20).sizes["time"]
    20
    """
    if size < 8 or frames < 2:
        raise ValueError(f"need size >= 8 and frames >= 2, got size={size}, frames={frames}")
    rng = np.random.default_rng(seed)
    c = float(rng.uniform(300.0, 400.0))
    f0 = float(rng.uniform(1.0, 30.0))
    idx = np.arange(size, dtype=np.float64)
    centre, radius = size / 2, max(2.0, 5.0 * size / 64)
    disc = ((idx[:, None] - centre) ** 2 + (idx[None, :] - centre) ** 2 <= radius**2).astype(np.float64)

    def rhs(state, t):
        w, v = state
        return np.stack((v, c * c * _laplacian(w) + f0 * np.exp(-t / SOURCE_DECAY) * disc))

    state = np.zeros((2, size, size))
    per_frame = int(round(FRAME_DT / DT))
    out = [state[0].copy()]
    t = 0.0
    for _ in range(frames - 1):
        for _ in range(per_frame):
            state = _rk38(state, t, DT, rhs)
            t += DT
        out.append(state[0].copy())
    data = np.stack(out)
    lo, hi = data.min(), data.max()
    data = (data - lo) / (hi - lo if hi > lo else 1.0)
    return _georeference(data.astype(np.float32), c, f0)


def _georeference(data: np.ndarray, c: float, f0: float) -> xr.DataArray:
    import rioxarray  # noqa: F401  (registers ``.rio``; imported here so that ``import xlatent`` stays light)

    n, size = data.shape[0], data.shape[1]
    idx = np.arange(size, dtype=float)
    step = np.timedelta64(int(FRAME_DT * 1e9), "ns")
    coords = {
        "time": ("time", START + step * np.arange(n)),
        "y": ("y", Y_UL - CELL / 2 - CELL * idx, {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}),
        "x": ("x", X_UL + CELL / 2 + CELL * idx, {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}),
    }
    attrs = {"units": "1", "long_name": "wave amplitude, min-max scaled per sequence",
             "wave_speed": c, "source_amplitude": f0}
    da = xr.DataArray(data, coords=coords, dims=("time", "y", "x"), name="wave", attrs=attrs)
    return da.rio.write_crs(CRS).rio.write_transform()
