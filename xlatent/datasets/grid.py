"""The grid, the time and the container shared by the synthetic cases (:mod:`xlatent.datasets`):
1 km cells of a polar stereographic grid (EPSG:3413), observed 12 hours apart."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

CRS = "EPSG:3413"
CELL = 1000.0  # grid spacing in metres
X_UL, Y_UL = -500_000.0, 500_000.0  # upper-left corner of the grid, metres
START = np.datetime64("2024-03-01T00:00", "ns")

INTERVAL = np.timedelta64(12, "h").astype("timedelta64[ns]")
SECONDS = INTERVAL / np.timedelta64(1, "s")  # 43200.0


def grid_coords(idx: np.ndarray, fractions: np.ndarray) -> dict:
    """Coords of a case: ``time`` (12 h from :data:`START`), ``interp_fraction`` and projected
    ``y`` (north-up) / ``x`` cell centres in metres for the cell indices ``idx``."""
    ns = np.round(fractions * INTERVAL.astype(np.int64)).astype(np.int64)
    return {
        "time": ("time", START + ns.astype("timedelta64[ns]")),
        "interp_fraction": ("time", fractions),
        "y": ("y", Y_UL - CELL / 2 - CELL * idx, {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}),
        "x": ("x", X_UL + CELL / 2 + CELL * idx, {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}),
    }


def georeferenced(obj):
    """``obj`` with the cases' CRS and its affine transform written (rioxarray, imported here so
    that ``import xlatent.datasets`` stays light)."""
    import rioxarray  # noqa: F401  (registers the ``.rio`` accessor)

    return obj.rio.write_crs(CRS).rio.write_transform()


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
