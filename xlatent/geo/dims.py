"""Spatial dims: which dims of a raster are its rows and columns, which its channels, and the
:class:`Grid` that tells the rest of the library."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from xlatent.exceptions import SpatialDimsError
from xlatent.geo.crs import _register_rio
from xlatent.geo.times import scalar_time

_X_NAMES = ("x", "lon", "longitude", "easting", "xc", "rlon", "projection_x_coordinate")
_Y_NAMES = ("y", "lat", "latitude", "northing", "yc", "rlat", "projection_y_coordinate")


@dataclass(frozen=True)
class Grid:
    """What the rest of the library needs to know about an input raster.

    Attributes
    ----------
    y_dim, x_dim : str
        Names of the row and column dimensions.
    channel_dim : str or None
        The extra non-spatial dimension treated as image channels (``band``...), if any.
    time : numpy.datetime64 or None
        Scalar ``time`` coordinate of the image, if it has one.
    """

    y_dim: Hashable
    x_dim: Hashable
    channel_dim: Hashable | None
    time: np.datetime64 | None


def spatial_dims(da: xr.DataArray, x_dim: str | None = None, y_dim: str | None = None) -> tuple:
    """Find the ``(y_dim, x_dim)`` of a raster.

    Order of precedence: explicit ``x_dim``/``y_dim``; rioxarray; cf-xarray axes; common names.
    """
    for given, what in ((x_dim, "x_dim"), (y_dim, "y_dim")):
        if given is not None and given not in da.dims:
            raise SpatialDimsError(
                f"{what}={given!r} is not a dimension of the array (dims: {tuple(da.dims)})."
            )
    found_x, found_y = x_dim, y_dim
    if found_x is None or found_y is None:
        rx, ry = _rio_dims(da)
        found_x, found_y = found_x or rx, found_y or ry
    if found_x is None or found_y is None:
        cx, cy = _cf_dims(da)
        found_x, found_y = found_x or cx, found_y or cy
    if found_x is None:
        found_x = next((d for d in da.dims if str(d).lower() in _X_NAMES), None)
    if found_y is None:
        found_y = next((d for d in da.dims if str(d).lower() in _Y_NAMES), None)
    if found_x is None or found_y is None or found_x == found_y:
        raise SpatialDimsError(
            f"Cannot tell which dimensions are spatial among {tuple(da.dims)}. "
            "Pass x_dim= and y_dim= (e.g. x_dim='lon', y_dim='lat'), or name them x/y."
        )
    return found_y, found_x


def _rio_dims(da: xr.DataArray) -> tuple:
    _register_rio()  # the same answer whether or not the caller imported rioxarray
    try:
        return da.rio.x_dim, da.rio.y_dim
    except Exception:  # rioxarray raises its own errors when it finds none
        return None, None


def _cf_dims(da: xr.DataArray) -> tuple:
    try:
        import cf_xarray  # noqa: F401  (registers .cf)

        axes = da.cf.axes
    except Exception:
        return None, None
    xs = [d for d in axes.get("X", []) if d in da.dims]
    ys = [d for d in axes.get("Y", []) if d in da.dims]
    return (xs[0] if len(xs) == 1 else None), (ys[0] if len(ys) == 1 else None)


def describe(da: xr.DataArray, x_dim: str | None = None, y_dim: str | None = None) -> Grid:
    """Resolve spatial dims, the channel dim and the scalar time of a raster."""
    y, x = spatial_dims(da, x_dim=x_dim, y_dim=y_dim)
    extra = [d for d in da.dims if d not in (y, x)]
    if len(extra) > 1:
        raise SpatialDimsError(
            f"Expected one image: dims ({y!r}, {x!r}) plus at most one channel dim, got "
            f"{tuple(da.dims)}. Select a single slice, e.g. da.isel({extra[0]}=0)."
        )
    if extra and str(extra[0]) == "time":
        raise SpatialDimsError(
            "The input still has a 'time' dimension: pass two single images, "
            "e.g. first = da.isel(time=0), last = da.isel(time=6)."
        )
    return Grid(y, x, extra[0] if extra else None, scalar_time(da))
