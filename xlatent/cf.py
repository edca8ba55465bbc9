"""CF metadata of the outputs: what moves (``kind``), history, and earth-relative vectors.

Kept apart from :mod:`xlatent.geo` (grids, CRS, units) because it is about naming and
annotating results by the CF conventions, and about turning grid-relative ``u``/``v`` into
eastward/northward components, which :mod:`xlatent.geo` does not need.

Standard names were checked against the CF standard name table (``x``/``y`` names are
"along the grid x-axis, positive with increasing x"; ``eastward``/``northward`` are
earth-relative): https://cfconventions.org/Data/cf-standard-names/current/build/cf-standard-name-table.html
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable
from datetime import datetime, timezone
from typing import NamedTuple

import numpy as np
import xarray as xr

from xlatent import geo
from xlatent._version import __version__
from xlatent.exceptions import CRSError, InputTypeError, UnknownKindError

CONVENTIONS = "CF-1.8"
PHYSICAL_UNITS = "m s-1"


class _Names(NamedTuple):
    words: str  # for long_name
    x: str  # grid-relative standard names
    y: str
    east: str  # earth-relative standard names
    north: str


KINDS: dict[str, _Names] = {
    "sea_ice": _Names("sea ice velocity", "sea_ice_x_velocity", "sea_ice_y_velocity",
                      "eastward_sea_ice_velocity", "northward_sea_ice_velocity"),
    "sea_water": _Names("sea water velocity", "sea_water_x_velocity", "sea_water_y_velocity",
                        "eastward_sea_water_velocity", "northward_sea_water_velocity"),
    "air": _Names("wind", "x_wind", "y_wind", "eastward_wind", "northward_wind"),
}

EARTH_NAMES = ("u_east", "v_north")  # variable names of earth-relative components

# The per-cell maps a method may return with its motion (``MethodResult.maps``), by variable
# name: their CF attributes. A new map is one entry here and one in the method's result.
MAPS: dict[str, dict] = {
    "confidence": {
        "long_name": "confidence of the motion estimate", "units": "1",
        "valid_range": np.array([0.0, 1.0], "f4"),
        "comment": "1: the two images carried half-way along the motion agree and the texture pins the motion; "
                   "0: they disagree, the texture is flat, or the path leaves the grid. Mask u/v where it is low.",
    },
}


def check_kind(kind: str | None) -> str | None:
    """Return ``kind`` if it is None or known; raise :class:`UnknownKindError` otherwise."""
    if kind is None or kind in KINDS:
        return kind
    raise UnknownKindError(
        f"Unknown kind={kind!r}. Valid kinds: {', '.join(map(repr, KINDS))}, or None (no "
        "standard_name). kind says what moves, and sets the CF standard_name of u and v."
    )


def _kind_of(standard_name: str | None) -> str | None:
    for kind, names in KINDS.items():
        if standard_name in names[1:]:
            return kind
    return None


def describe_flow(flow: xr.Dataset, kind: str | None, geographic: bool, x_dim: Hashable = "x",
                  y_dim: Hashable = "y") -> xr.Dataset:
    """Set ``long_name`` and (with ``kind``) ``standard_name`` of ``u`` and ``v``, in place.

    On a longitude/latitude grid the components are already eastward/northward and get those
    names. ``standard_name`` needs physical units: with grid-cell units a warning says why none
    was set.
    """
    check_kind(kind)
    what = KINDS[kind].words if kind else "velocity"
    axes = ((flow.u, "x", x_dim, "eastward"), (flow.v, "y", y_dim, "northward"))
    for var, axis, dim, earth in axes:
        if geographic:
            var.attrs["long_name"] = f"{earth} {what} (earth-relative)"
        else:
            var.attrs["long_name"] = (
                f"{what} along {axis} (grid-relative, positive toward increasing {dim} coordinate)"
            )
    if kind is None:
        return flow
    if flow.u.attrs.get("units") != PHYSICAL_UNITS:
        warnings.warn(
            f"kind={kind!r}: no standard_name set, because the flow is in "
            f"{flow.u.attrs.get('units')!r}, not m s-1 (CF standard names need physical units). "
            "Give both inputs a scalar time coord and a CRS (or metre/degree coords).",
            UserWarning,
            stacklevel=3,
        )
        return flow
    names = KINDS[kind]
    flow.u.attrs["standard_name"] = names.east if geographic else names.x
    flow.v.attrs["standard_name"] = names.north if geographic else names.y
    return flow


def history_line(call: str) -> str:
    """One ``history`` entry: ISO 8601 UTC timestamp, then what was done."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{stamp}: xlatent {__version__} {call}"


def append_history(previous: object, call: str) -> str:
    """``previous`` history (kept as it was) with a new line for ``call`` appended (CF 2.6.2)."""
    line = history_line(call)
    previous = "" if previous is None else str(previous).rstrip("\n")
    return f"{previous}\n{line}" if previous else line


def call_repr(name: str, **arguments: object) -> str:
    """``name(a=1, b='x')`` for the history, leaving out arguments that are None."""
    args = ", ".join(f"{k}={v!r}" for k, v in arguments.items() if v is not None)
    return f"{name}({args})"


# ---------------------------------------------------------------------------------------------
# Earth-relative vectors


def _pyproj_crs(da: xr.DataArray):
    crs = geo._crs(da)
    if crs is None:
        return None
    from pyproj import CRS

    return CRS.from_user_input(crs)  # rioxarray gives rasterio's CRS


def lon_lat_axes(da: xr.DataArray, grid) -> bool:
    """Whether the grid's x/y axes point east/north: a plain geographic CRS (a rotated pole is
    geographic too, but derived, and its axes are not east/north), or lon/lat coords without CRS."""
    crs = _pyproj_crs(da)
    if crs is None:
        return geo.is_geographic(da, grid)
    return bool(crs.is_geographic and not crs.is_derived)


def north_angle(crs, x: np.ndarray, y: np.ndarray, step: float) -> np.ndarray:
    """Angle (radians) from the grid's +y axis to true north at points ``(x, y)`` of ``crs``,
    positive clockwise (toward +x). Zero where grid north is true north.

    The geodesic azimuth (pyproj ``Geod``, on the CRS's own ellipsoid) of a short step ``step``
    (grid units) along +y from each point. Works for any CRS pyproj transforms, rotated poles
    included; equals minus PROJ's meridian convergence for conformal map projections.
    """
    from pyproj import Transformer

    geodetic = crs.geodetic_crs
    while geodetic.is_derived and geodetic.source_crs is not None:  # a rotated pole's own lon/lat
        geodetic = geodetic.source_crs
    to_geo = Transformer.from_crs(crs, geodetic, always_xy=True)
    lon0, lat0 = to_geo.transform(x, y)
    lon1, lat1 = to_geo.transform(x, np.asarray(y) + step)
    azimuth, _, _ = geodetic.get_geod().inv(lon0, lat0, lon1, lat1)
    return -np.radians(np.asarray(azimuth))


def to_earth_relative(flow: xr.Dataset, *, x_dim: Hashable | None = None, y_dim: Hashable | None = None) -> xr.Dataset:
    """Rotate grid-relative ``u``/``v`` to eastward/northward components.

    Parameters
    ----------
    flow : xarray.Dataset
        A flow from :func:`xlatent.interpolate`: ``u`` toward +x and ``v`` toward +y coordinate,
        with a CRS (``rio.crs``, e.g. reopened with ``decode_coords="all"``).
    x_dim, y_dim : str, optional
        Spatial dims, when they cannot be told from the data.

    Returns
    -------
    xarray.Dataset
        A copy with ``u_east`` (eastward) and ``v_north`` (northward) instead of ``u``/``v``,
        same units, dims, coords and CRS; ``standard_name`` becomes the eastward/northward name
        when ``u`` had one (``sea_ice_x_velocity`` -> ``eastward_sea_ice_velocity``), and
        ``history`` records the call. Speed is unchanged: each vector is rotated by the local
        angle between grid north and true north, the geodesic azimuth of the grid's +y axis
        (exact for conformal projections such as polar stereographic, Mercator or Lambert
        conformal, and for rotated poles; where a projection shears angles, e.g. equal-area
        ones, +y gets its true bearing and +x is taken perpendicular to it).

    Raises
    ------
    CRSError
        If the flow has no CRS and is not on a longitude/latitude grid.

    Examples
    --------
    >>> earth = xlatent.to_earth_relative(flow)          # doctest: +SKIP
    >>> earth = flow.latentdyn.to_earth_relative()       # the same, as an accessor
    """
    if not isinstance(flow, xr.Dataset) or "u" not in flow or "v" not in flow:
        raise InputTypeError("to_earth_relative needs a Dataset with grid-relative 'u' and 'v' "
                             "(a flow from xlatent.interpolate).")
    y_name, x_name = geo.spatial_dims(flow.u, x_dim=x_dim, y_dim=y_dim)
    grid = geo.Grid(y_name, x_name, None, None)
    crs = _pyproj_crs(flow.u)
    if lon_lat_axes(flow.u, grid):
        angle = None  # longitude/latitude axes: already eastward/northward
    elif crs is None:
        raise CRSError(
            "The flow has no CRS, so grid north cannot be related to true north. Reopen it with "
            "xr.open_dataset(path, decode_coords='all'), or set one: flow.rio.write_crs('EPSG:3413')."
        )
    else:
        xs = np.asarray(flow[grid.x_dim].values, dtype=float)
        ys = np.asarray(flow[grid.y_dim].values, dtype=float)
        xx, yy = np.meshgrid(xs, ys)
        step = 1e-3 * (np.abs(np.diff(ys)).min() if ys.size > 1 else 1.0)  # 1/1000 of a cell
        dtype = np.result_type(flow.u.dtype, np.float32)
        angle = xr.DataArray(north_angle(crs, xx, yy, step).astype(dtype), dims=(grid.y_dim, grid.x_dim))

    u, v = flow.u, flow.v
    if angle is None:
        east, north = u.copy(), v.copy()
    else:
        cos, sin = np.cos(angle), np.sin(angle)
        east = (u * cos - v * sin).transpose(*u.dims)
        north = (u * sin + v * cos).transpose(*v.dims)
    kind = _kind_of(u.attrs.get("standard_name"))
    what = KINDS[kind].words if kind else "velocity"
    for new, old, word, std in ((east, u, "eastward", "east"), (north, v, "northward", "north")):
        new.attrs = {k: val for k, val in old.attrs.items() if k != "standard_name"}
        new.attrs["long_name"] = f"{word} {what} (earth-relative)"
        if kind:
            new.attrs["standard_name"] = getattr(KINDS[kind], std)
        new.encoding = {k: val for k, val in old.encoding.items() if k in ("grid_mapping", "dtype", "zlib", "complevel")}
    out = flow.drop_vars(["u", "v"]).assign({EARTH_NAMES[0]: east, EARTH_NAMES[1]: north})
    out.attrs = dict(flow.attrs)
    out.attrs["history"] = append_history(flow.attrs.get("history"), "to_earth_relative()")
    return out
