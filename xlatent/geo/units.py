"""Physical units: of the motion (index-space displacement rates to coordinate directions and
m s-1, and the warning on speeds no flow reaches) and of the values (the rates that have totals,
and whether two spellings name one unit)."""

from __future__ import annotations

import re
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


# mm of depth per (unit of the rate x second), keyed by the units written without spaces,
# "**", "^" or "." (so "mm h-1", "mm h^-1", "mm.h-1" and "mm/h" all read "mmh-1" or "mm/h")
RATES = {
    **dict.fromkeys(("mmh-1", "mm/h", "mmhr-1", "mm/hr", "mm/hour", "mmperhour"), 1 / 3600),
    **dict.fromkeys(("mmmin-1", "mm/min"), 1 / 60),
    **dict.fromkeys(("mms-1", "mm/s"), 1.0),
    **dict.fromkeys(("mmd-1", "mm/d", "mmday-1", "mm/day"), 1 / 86400),
    **dict.fromkeys(("kgm-2s-1", "kg/m2/s", "kg/m^2/s", "kgm-2/s"), 1.0),  # 1 kg m-2 of water is 1 mm
    **dict.fromkeys(("ms-1", "m/s"), 1000.0),
}


def _spelled(units: object) -> str:
    """``units`` without spaces, ``**``, ``^`` or ``.``: ``"mm h-1"`` and ``"mm.h^-1"`` read ``"mmh-1"``."""
    return re.sub(r"[\s.^]|\*\*", "", str(units or ""))


def mm_per_second(units: object) -> float | None:
    """Millimetres per second of one unit of a rate written ``units`` (``"mm h-1"``, ``"mm/h"``,
    ``"kg m-2 s-1"``...: :data:`RATES`, case aside); None when ``units`` is not such a rate."""
    return RATES.get(_spelled(units).lower())


def same_units(a: object, b: object) -> bool:
    """Whether ``a`` and ``b`` are two spellings of one unit: the same once spaces, ``**``, ``^``
    and ``.`` are set aside (``"K"`` and ``"K "``), or two rates of the same size (``"mm h-1"`` and
    ``"mm/h"``; not ``"mm h-1"`` and ``"mm s-1"``)."""
    if _spelled(a) == _spelled(b):
        return True
    ra, rb = mm_per_second(a), mm_per_second(b)
    return ra is not None and ra == rb
