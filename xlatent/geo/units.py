"""Physical units of the motion: index-space displacement rates to coordinate directions and
m s-1, and the warning on speeds no flow reaches."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from xlatent.exceptions import SpeedWarning
from xlatent.geo.dims import Grid
from xlatent.geo.spacing import _axis_sign, cell_size_m, coord_values


def flow_in_coordinates(
    u: np.ndarray, v: np.ndarray, da: xr.DataArray, grid: Grid, seconds: float | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Convert index-space displacement rates to coordinate space and physical units.

    ``u``, ``v`` are grid cells per unit of ``interp_fraction`` toward increasing column/row.
    Returns u (toward +x coordinate), v (toward +y coordinate) and their units: ``m s-1`` when
    both the cell size and the time gap are known, otherwise the index-space rate.
    """
    sx = _axis_sign(coord_values(da, grid.x_dim, grid)) if grid.x_dim in da.coords else 1.0
    sy = _axis_sign(np.asarray(da[grid.y_dim].values)) if grid.y_dim in da.coords else 1.0
    u, v = u * sx, v * sy
    size = cell_size_m(da, grid)
    if size is None or not seconds:
        return u.astype(np.float32), v.astype(np.float32), "grid_cells per unit interp_fraction"
    return (u * size[0] / seconds).astype(np.float32), (v * size[1] / seconds).astype(np.float32), "m s-1"


# Faster than sound at sea level three times over: no flow in the atmosphere or ocean moves
# an image feature this fast, so the time coords or the grid spacing must be wrong.
MAX_SPEED = 1000.0  # m s-1


def _check_speed(u, v, da: xr.DataArray, grid: Grid, seconds: float) -> None:
    """Warn (:class:`SpeedWarning`) when the motion is faster than :data:`MAX_SPEED`. In-memory
    flows are checked cell by cell; a lazy (dask) flow is never computed for it: the bound
    is then what one cell of motion in the time gap already means."""
    silence = ("Silence with warnings.filterwarnings('ignore', "
               "category=xlatent.exceptions.SpeedWarning).")
    if isinstance(u, np.ndarray) and isinstance(v, np.ndarray):
        with np.errstate(invalid="ignore"):
            speed = np.hypot(u.astype(np.float64), v.astype(np.float64))
        top = float(np.nanmax(speed)) if np.isfinite(speed).any() else 0.0
        what = f"The largest speed is {top:.3g} m s-1"
    else:
        size = cell_size_m(da, grid)
        top = float(min(np.min(size[0]), np.min(size[1]))) / seconds
        what = f"One cell of motion in {seconds:.3g} s between the images is already {top:.3g} m s-1"
    if top > MAX_SPEED:
        warnings.warn(
            f"{what}, above {MAX_SPEED:g} m s-1 (faster than any flow in the atmosphere or ocean): "
            f"check the time coords of the two images ({seconds:.3g} s apart) and the grid spacing. "
            + silence,
            SpeedWarning,
            stacklevel=5,
        )
