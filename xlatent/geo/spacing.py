"""Grid spacing: the coordinates along each axis (longitudes unwrapped across the antimeridian),
whether the grid is longitude/latitude, and the cell size in metres."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from xlatent.geo.crs import _crs
from xlatent.geo.dims import Grid

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), for lat/lon grids
_METRE_UNITS = {"m", "metre", "metres", "meter", "meters"}
_KM_UNITS = {"km", "kilometre", "kilometres", "kilometer", "kilometers"}
_DEGREE_UNITS = {"degrees_east", "degree_east", "degrees_north", "degree_north", "degrees", "degree"}


def coord_values(da: xr.DataArray, dim: Hashable, grid: Grid) -> np.ndarray:
    """The float values of spatial coord ``dim``; longitudes that cross the antimeridian
    (170 ... 180, -180 ... -170) unwrapped to a monotonic axis (170 ... 190) for the computation
    (the outputs keep the input's coords)."""
    values = np.asarray(da[dim].values, dtype=float)
    if dim != grid.x_dim or values.size < 3 or not np.isfinite(values).all() or not is_geographic(da, grid):
        return values
    steps = np.diff(values)
    if (steps > 0).all() or (steps < 0).all() or not (np.abs(steps) > 180).any():
        return values
    unwrapped = np.unwrap(values, period=360.0)
    steps = np.diff(unwrapped)
    return unwrapped if (steps > 0).all() or (steps < 0).all() else values


def _axis_sign(coord: np.ndarray) -> float:
    return -1.0 if coord.size > 1 and coord[-1] < coord[0] else 1.0


def _coord_units(da: xr.DataArray, dim: Hashable) -> str:
    if dim not in da.coords:
        return ""
    return str(da[dim].attrs.get("units", "")).strip().lower()


def cell_size_m(da: xr.DataArray, grid: Grid) -> tuple[np.ndarray, np.ndarray] | None:
    """Cell size in metres along x and y, shaped to broadcast over ``(row, column)``.

    Projected CRS in metres, coordinates with metre/km units, or lat/lon in degrees (converted on
    the sphere, x spacing shrinking with cos(latitude)). None when the grid spacing is unknown.
    """
    y, x = grid.y_dim, grid.x_dim
    if x not in da.coords or y not in da.coords or da.sizes[x] < 2 or da.sizes[y] < 2:
        return None
    xs = coord_values(da, x, grid)
    ys = np.asarray(da[y].values, dtype=float)
    dx = np.abs(np.gradient(xs))[None, :]
    dy = np.abs(np.gradient(ys))[:, None]
    crs = _crs(da)
    ux, uy = _coord_units(da, x), _coord_units(da, y)
    if is_geographic(da, grid):
        rad = np.pi / 180.0
        return EARTH_RADIUS_M * np.cos(ys * rad)[:, None] * dx * rad, EARTH_RADIUS_M * dy * rad
    factor = None
    if crs is not None and crs.is_projected:
        factor = crs.linear_units_factor[1] if crs.linear_units_factor else None
    elif ux in _METRE_UNITS and uy in _METRE_UNITS:
        factor = 1.0
    elif ux in _KM_UNITS and uy in _KM_UNITS:
        factor = 1000.0
    if factor is None:
        return None
    return dx * factor, dy * factor


def is_geographic(da: xr.DataArray, grid: Grid) -> bool:
    """Whether the grid is longitude/latitude (a geographic CRS, or degree/lon-named coords)."""
    crs = _crs(da)
    if crs is not None:
        return bool(crs.is_geographic)
    return _coord_units(da, grid.x_dim) in _DEGREE_UNITS or str(grid.x_dim).lower() in ("lon", "longitude")
