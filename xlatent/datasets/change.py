"""Synthetic 2 m temperature-like series that change in place: a diurnal cycle over "land".

A fixed land pattern warms by day and cools by night while the weather over it stays put
(``diurnal``) or drifts slowly (``diurnal_drift``, ``diurnal_projected``). No motion explains
the warming: a method that bends the field to move warm air where it warmed does worse than
the plain linear blend (issue 23). The truth is analytic at every time, so the frames between
the ends are exact, and so is the velocity (the drift of the weather; zero over the warming).

Examples
--------
>>> from xlatent import datasets
>>> case = datasets.load("diurnal", size=32)
>>> case.first.dims
('latitude', 'longitude')
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xlatent.datasets.grid import SyntheticCase

IN_PLACE = ("diurnal", "diurnal_drift", "diurnal_projected")

_START = np.datetime64("2024-07-01T03:00", "ns")  # the window runs from 03 to 15 UTC (local at lon 0)
_INTERVAL = np.timedelta64(12, "h").astype("timedelta64[ns]")
_SECONDS = _INTERVAL / np.timedelta64(1, "s")
_DEG = 0.25  # ERA5's grid spacing, degrees
_LAT0, _LON0 = 52.0, -4.0  # north-west cell centre of the lat/lon cases
_CELL = 25_000.0  # metres, the projected case (ETRS89 / LAEA Europe)
_X0, _Y0 = 3_300_000.0, 3_400_000.0  # its north-west cell centre
_AMPLITUDE = 6.0  # K, half the diurnal range over land
_DRIFT = (4.0, 1.0)  # cells east, north over the 12 h (about 2 m s-1 at 0.25 deg)


def _modes(rng: np.random.Generator, n: int, wavelengths: tuple[float, float]):
    """Random Fourier modes (wave vectors in radians per cell, phases), red spectrum."""
    lam = np.exp(rng.uniform(np.log(wavelengths[0]), np.log(wavelengths[1]), n))
    angle = rng.uniform(0, 2 * np.pi, n)
    k = 2 * np.pi / lam
    return k * np.cos(angle), k * np.sin(angle), rng.uniform(0, 2 * np.pi, n), lam


def _evaluate(modes, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Unit-variance sum of the modes at cell positions ``px`` (east), ``py`` (north)."""
    kx, ky, phase, lam = modes
    amp = lam / np.sqrt(np.sum(lam**2) / 2)
    return sum(a * np.cos(x * px + y * py + p) for x, y, p, a in zip(kx, ky, phase, amp))


def _diurnal(t: np.ndarray) -> np.ndarray:
    """Diurnal factor in [-1, 1] at fraction ``t`` of the window: minimum at 03, maximum at 15 UTC."""
    hours = 3.0 + 12.0 * t
    return -np.cos(2 * np.pi * (hours - 3.0) / 24.0)


def in_place(name: str, size: int = 128, steps: int = 6, seed: int = 0):
    """A temperature-like series that warms in place over a fixed land pattern.

    The field is ``285 K`` minus a north-south gradient (0.08 K per cell), plus weather (random
    smooth modes of 12-64 cells, 2 K RMS) and a diurnal cycle over land (a fixed pattern with
    coasts about 1.5 cells wide, ``6 K`` amplitude, coldest at 03 and warmest at 15 UTC: the
    window runs from 03 to 15 UTC, where the hours between depart most from a linear blend).

    Parameters
    ----------
    name : {"diurnal", "diurnal_drift", "diurnal_projected"}
        ``"diurnal"``: ERA5-like 0.25 deg latitude/longitude grid (EPSG:4326), still weather;
        ``"diurnal_drift"``: the same with the weather drifting 4 cells east and 1 north over
        the window; ``"diurnal_projected"``: the drifting case on a 25 km ETRS89 / LAEA Europe
        grid (EPSG:3035).
    size : int, default 128
        Number of rows and columns.
    steps : int, default 6
        Number of intervals between the ends; ``frames`` holds ``steps + 1`` images.
    seed : int, default 0
        Seed of the land pattern and the weather.

    Returns
    -------
    xlatent.datasets.SyntheticCase
        ``first``/``last`` 12 h apart, the true frames and the true velocity (m s-1: the
        weather's drift, which carries the weather but not the land's warming).
    """
    import rioxarray  # noqa: F401  (registers the ``.rio`` accessor)


    if name not in IN_PLACE:
        raise ValueError(f"unknown in-place case {name!r}; valid are {', '.join(IN_PLACE)}")
    if size < 4 or steps < 1:
        raise ValueError(f"need size >= 4 and steps >= 1, got size={size}, steps={steps}")
    rng = np.random.default_rng(seed)
    land_modes, weather_modes = _modes(rng, 24, (24.0, 96.0)), _modes(rng, 48, (12.0, 64.0))
    idx = np.arange(size, dtype=float)
    px, py = idx[None, :], -idx[:, None]  # cells east and north of the north-west corner
    land = 0.5 * (1 + np.tanh(_evaluate(land_modes, px, py) / 0.5 / 1.5))  # coasts ~1.5 cells
    land = land * np.ones((size, size))
    drift = (0.0, 0.0) if name == "diurnal" else _DRIFT
    fractions = np.linspace(0.0, 1.0, steps + 1)
    frames = [285.0 + 0.08 * py + 2.0 * _evaluate(weather_modes, px - drift[0] * t, py - drift[1] * t)
              + _AMPLITUDE * _diurnal(t) * land for t in fractions]

    ns = np.round(fractions * _INTERVAL.astype(np.int64)).astype(np.int64)
    coords = {"time": ("time", _START + ns.astype("timedelta64[ns]")), "interp_fraction": ("time", fractions)}
    if name == "diurnal_projected":
        ydim, xdim, crs = "y", "x", "EPSG:3035"
        coords["y"] = ("y", _Y0 - _CELL * idx, {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"})
        coords["x"] = ("x", _X0 + _CELL * idx, {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"})
        dx = np.full((size, size), _CELL)
    else:
        ydim, xdim, crs = "latitude", "longitude", "EPSG:4326"
        lat = _LAT0 - _DEG * idx
        coords["latitude"] = ("latitude", lat, {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"})
        coords["longitude"] = ("longitude", _LON0 + _DEG * idx,
                               {"standard_name": "longitude", "units": "degrees_east", "axis": "X"})
        metres = np.deg2rad(_DEG) * 6_371_008.8
        dx = np.broadcast_to(metres * np.cos(np.deg2rad(lat))[:, None], (size, size))
    dims = ("time", ydim, xdim)
    stack = xr.DataArray(np.stack(frames).astype(np.float32), coords=coords, dims=dims, name="t2m",
                         attrs={"units": "K", "long_name": "synthetic 2 m temperature", "standard_name": "air_temperature"})
    stack = stack.rio.set_spatial_dims(x_dim=xdim, y_dim=ydim).rio.write_crs(crs).rio.write_transform()
    dy = _CELL if name == "diurnal_projected" else np.deg2rad(_DEG) * 6_371_008.8
    u = np.broadcast_to(drift[0] * dx / _SECONDS, (len(fractions), size, size)).astype(np.float32)
    v = np.full((len(fractions), size, size), drift[1] * dy / _SECONDS, dtype=np.float32)
    flow = xr.Dataset({"u": (dims, u, {"units": "m s-1", "long_name": "true velocity toward +x"}),
                       "v": (dims, v, {"units": "m s-1", "long_name": "true velocity toward +y (north)"})},
                      coords=stack.drop_vars("spatial_ref").coords)
    flow = flow.rio.set_spatial_dims(x_dim=xdim, y_dim=ydim).rio.write_crs(crs)
    first, last = (stack.isel(time=i).drop_vars("interp_fraction") for i in (0, -1))
    description = {"diurnal": "land warms 12 K in place from 03 to 15 UTC, still weather (0.25 deg)",
                   "diurnal_drift": "land warms 12 K in place, weather drifts 4 cells east, 1 north (0.25 deg)",
                   "diurnal_projected": "land warms 12 K in place, weather drifts (25 km LAEA grid)"}[name]
    return SyntheticCase(first, last, stack, flow, name, description)


def diurnal(size: int = 128, steps: int = 6, seed: int = 0):
    """:func:`in_place` ``("diurnal")``: warming in place on a 0.25 deg grid, still weather."""
    return in_place("diurnal", size, steps, seed)


def diurnal_drift(size: int = 128, steps: int = 6, seed: int = 0):
    """:func:`in_place` ``("diurnal_drift")``: warming in place under drifting weather, 0.25 deg."""
    return in_place("diurnal_drift", size, steps, seed)


def diurnal_projected(size: int = 128, steps: int = 6, seed: int = 0):
    """:func:`in_place` ``("diurnal_projected")``: the drifting case on a 25 km projected grid."""
    return in_place("diurnal_projected", size, steps, seed)
