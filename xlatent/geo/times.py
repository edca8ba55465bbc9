"""Geo handling: spatial dims, CRS, grid spacing, time gap, physical units, CF attributes.

This is the only module that knows about coordinates and reference systems; the model and
the methods work on plain ``(channel, row, column)`` arrays in grid-index space.
"""

from __future__ import annotations

import datetime
import re
import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xlatent.exceptions import (
    CRSError,
    CRSNotFoundWarning,
    GridMismatchError,
    InputError,
    InputTypeError,
    NoCRSWarning,
    NonFiniteWarning,
    SpatialDimsError,
    SpeedWarning,
    TimeNotDateWarning,
    TimeOrderError,
)
from xlatent.input_checks import check_fill_values

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), for lat/lon grids

_X_NAMES = ("x", "lon", "longitude", "easting", "xc", "rlon", "projection_x_coordinate")
_Y_NAMES = ("y", "lat", "latitude", "northing", "yc", "rlat", "projection_y_coordinate")
_METRE_UNITS = {"m", "metre", "metres", "meter", "meters"}
_KM_UNITS = {"km", "kilometre", "kilometres", "kilometer", "kilometers"}
_DEGREE_UNITS = {"degrees_east", "degree_east", "degrees_north", "degree_north", "degrees", "degree"}


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


def check_input(da: Any, label: str) -> None:
    """Raise a clear error unless ``da`` is a numeric DataArray with some finite data."""
    if not isinstance(da, xr.DataArray):
        raise InputTypeError(
            f"{label} must be an xarray.DataArray, got {type(da).__name__}. "
            "For a Dataset, pick a variable: ds['name']."
        )
    if not (np.issubdtype(da.dtype, np.integer) or np.issubdtype(da.dtype, np.floating)):
        raise InputTypeError(
            f"{label} has dtype {da.dtype}; xlatent needs real numbers (integer or float). "
            "Convert it, e.g. da.astype('float32')."
        )


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


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def utc_datetime64(values: Any) -> np.ndarray:
    """``values`` as ``datetime64[ns]`` when they are Python/pandas datetimes (object dtype, as
    xarray holds timezone-aware times) or a coord of pandas' timezone-aware dtype: aware ones
    converted to UTC, naive ones taken as they are; anything else returned unchanged (as an
    array)."""
    if isinstance(values, xr.DataArray):
        import pandas as pd

        if isinstance(values.dtype, pd.DatetimeTZDtype) and values.ndim == 1:
            index = pd.DatetimeIndex(values.to_index())
            return index.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[ns]")
        values = values.values
    arr = np.asarray(values)
    if arr.dtype != object or arr.size == 0 or not all(isinstance(v, datetime.datetime) for v in arr.flat):
        return arr
    import pandas as pd

    stamps = [pd.Timestamp(v) for v in arr.flat]
    stamps = [t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t for t in stamps]
    return np.array([t.to_datetime64() for t in stamps], dtype="datetime64[ns]").reshape(arr.shape)


def _holds_dates(values: Any) -> bool:
    """Whether ``values`` (one or many) are dates as they stand: ``datetime64`` (timezone-aware
    Python/pandas datetimes count, see :func:`utc_datetime64`) or cftime datetimes (judged by the
    first)."""
    arr = utc_datetime64(values)
    if np.issubdtype(arr.dtype, np.datetime64):
        return True
    return arr.dtype == object and arr.size > 0 and hasattr(arr.flat[0], "calendar")  # cftime.datetime


def _is_time_value(value: Any) -> bool:
    """Whether ``value`` is a date as it stands: ``datetime64``, or one cftime datetime."""
    return _holds_dates(value) and (np.ndim(value) == 0 or np.asarray(value).dtype != object)


def time_dim(da: xr.DataArray) -> Hashable | None:
    """The dim holding dates: ``time``, or the only dim whose coord is datetime/cftime or, left
    undecoded (``decode_times=False``), numbers with CF ``units`` ``"<unit> since <date>"`` or
    marked ``axis="T"`` / ``standard_name="time"``."""
    if "time" in da.dims:
        return "time"
    found = [d for d in da.dims if d in da.coords and da.sizes[d] > 0 and _is_time_coord(da[d])]
    return found[0] if len(found) == 1 else None


def _is_time_coord(coord: xr.DataArray) -> bool:
    attrs = coord.attrs
    declared = " since " in str(attrs.get("units", "")) or attrs.get("axis") == "T" or attrs.get("standard_name") == "time"
    return _holds_dates(coord) or (declared and np.issubdtype(coord.dtype, np.number))


def cf_time_values(coord: xr.DataArray) -> np.ndarray:
    """The values of the time coord ``coord`` (any shape), decoded like xarray does when they
    are numbers with CF ``units`` ``"<unit> since <date>"`` (a file opened with
    ``decode_times=False``); timezone-aware ones converted to UTC (:func:`utc_datetime64`); as
    they are otherwise (xarray decoded them already)."""
    values = utc_datetime64(coord)
    if np.issubdtype(values.dtype, np.number) and " since " in str(coord.attrs.get("units", "")):
        values = np.asarray(xr.decode_cf(xr.Dataset(coords={"t": coord.variable.copy(deep=False)}))["t"].values)
    return values


def _decode_time(coord: xr.DataArray):
    """The date held by the scalar coord ``coord``, or None when it holds none.

    ``datetime64`` (as ``datetime64[ns]``) and cftime values as they are; a number with CF
    ``units`` of the form ``"<unit> since <date>"`` (and optional ``calendar``), as left by
    ``decode_times=False``, decoded like xarray does; an ISO 8601 string (``"2024-03-01T12:00"``,
    a trailing ``Z`` or offset converted to UTC) parsed to ``datetime64[ns]``.
    """
    value = cf_time_values(coord)
    if np.issubdtype(value.dtype, np.datetime64):
        return value.astype("datetime64[ns]")[()]
    if _is_time_value(value):
        return value.item()
    text = value.item() if value.dtype.kind in "US" or value.dtype == object else None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if isinstance(text, str) and _ISO_DATE.match(text.strip()):
        import pandas as pd

        stamp = pd.Timestamp(text.strip())
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return np.datetime64(stamp.to_datetime64(), "ns")
    return None


def _safe_decode(coord: xr.DataArray):
    try:
        return _decode_time(coord)
    except (ValueError, TypeError, OverflowError):  # CF units that do not decode: not a date
        return None


def time_coord_name(da: xr.DataArray) -> Hashable | None:
    """Name of the scalar time coordinate: ``time`` if it holds a date, else the only scalar coord
    holding a date (``valid_time``...), else None. Numbers with CF time ``units`` and ISO 8601
    strings count as dates (see :func:`scalar_time`)."""
    scalar = [n for n, c in da.coords.items() if c.ndim == 0 and _safe_decode(c) is not None]
    if "time" in scalar:
        return "time"
    return scalar[0] if len(scalar) == 1 else None


def scalar_time(da: xr.DataArray):
    """The scalar time of an image: ``datetime64[ns]``, a cftime datetime, or None.

    A number with CF ``units``/``calendar`` attributes (a file opened with ``decode_times=False``)
    is decoded; an ISO 8601 string is parsed. Anything else is no date (see
    :func:`undated_time_note`).
    """
    name = time_coord_name(da)
    return None if name is None else _decode_time(da.coords[name])


def _looks_like_time(name: Hashable, coord: xr.DataArray) -> bool:
    return (str(name).lower() == "time" or coord.attrs.get("standard_name") == "time"
            or coord.attrs.get("axis") == "T")


def undated_time_note(da: Any, label: str) -> str | None:
    """Why the scalar time coord of ``da`` is not used as a date, or None when there is nothing
    to say (it has a date, or no time coord at all)."""
    if not isinstance(da, xr.DataArray) or time_coord_name(da) is not None:
        return None
    for name, coord in da.coords.items():
        if coord.ndim != 0 or not _looks_like_time(name, coord):
            continue
        value = coord.values.item() if coord.size == 1 else coord.values
        units = coord.attrs.get("units")
        if np.issubdtype(coord.dtype, np.number) and " since " in str(units):
            why = f"a number ({value!r}) whose units {units!r} do not decode to a date"
        elif np.issubdtype(coord.dtype, np.number) and units is not None:
            why = f"a number ({value!r}) with units {units!r}, not CF time units ('hours since 2024-01-01')"
        elif np.issubdtype(coord.dtype, np.number):
            why = f"a number ({value!r}) without CF units"
        else:
            why = f"{value!r}, not an ISO 8601 date"
        return f"The {name!r} coord of {label} is {why}"
    return None


def warn_undated(first: Any, last: Any, stacklevel: int = 3) -> None:
    """Warn (:class:`~xlatent.exceptions.TimeNotDateWarning`) when an input has a time coord
    that is not a date: the result then falls back to fractions and grid cells."""
    notes = [n for n in (undated_time_note(first, "first"), undated_time_note(last, "last")) if n]
    if not notes:
        return
    warnings.warn(
        "; ".join(notes) + ". It is not used: frames get fractions 0..1 instead of dates and u/v are "
        "in grid cells per unit interp_fraction, not m s-1. Give it CF units "
        "(da.time.attrs['units'] = 'hours since 2024-01-01'), a datetime64 value or an ISO 8601 string, "
        "or silence this with warnings.filterwarnings('ignore', category=xlatent.exceptions.TimeNotDateWarning).",
        TimeNotDateWarning,
        stacklevel=stacklevel,
    )


# Two times closer than this are one time stamped twice (a duplicate), not an interval: no
# imagery of the Earth is taken a millisecond apart, while clock rounding and merged files give
# such pairs.
DUPLICATE_GAP_S = 1e-3

_UNITS_NS = (("d", 86_400 * 10**9), ("h", 3_600 * 10**9), ("min", 60 * 10**9), ("s", 10**9), ("ms", 10**6),
             ("µs", 10**3), ("ns", 1))


def human_duration(gap: Any) -> str:
    """A time step in words: ``"1 h"``, ``"10 min"``, ``"1 ns"``, ``"59 min 59.999999999 s"``.

    ``gap`` is a ``numpy.timedelta64``, a ``datetime.timedelta`` or a plain number (returned as
    it is, with no unit)."""
    if isinstance(gap, datetime.timedelta):
        gap = np.timedelta64(gap)
    if not isinstance(gap, np.timedelta64):
        return f"{gap:g}" if isinstance(gap, (int, float, np.number)) else str(gap)
    if np.isnat(gap):
        return "NaT"
    ns = int(gap.astype("timedelta64[ns]").astype(np.int64))
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    unit, size = next(((u, n) for u, n in _UNITS_NS if ns >= n), _UNITS_NS[-1])
    if ns % size == 0:
        return f"{sign}{ns // size} {unit}"
    parts = []
    for unit, size in _UNITS_NS[:3]:
        if ns >= size:
            parts.append(f"{ns // size} {unit}")
            ns %= size
    parts.append(f"{ns / 1e9:.9f}".rstrip("0").rstrip(".") + " s")
    return sign + " ".join(parts)


def seconds_between(t0, t1) -> float:
    """Seconds from ``t0`` to ``t1`` (both ``datetime64`` or both cftime, as :func:`scalar_time`
    returns them)."""
    gap = t1 - t0
    if isinstance(gap, np.timedelta64):
        return float(gap / np.timedelta64(1, "s"))
    return gap.total_seconds()


def check_coords(da: xr.DataArray, grid: Grid, label: str) -> None:
    """Raise :class:`InputError` unless the spatial coords of ``da`` are a grid: finite,
    strictly monotonic (a swapped column moves the data, not the grid) and, on a lon/lat grid,
    latitudes within ±90 (the cell size would come out negative)."""
    for dim in (grid.y_dim, grid.x_dim):
        if dim not in da.coords or not np.issubdtype(da[dim].dtype, np.number):
            continue
        values = coord_values(da, dim, grid)
        bad = ~np.isfinite(values)
        if bad.any():
            raise InputError(
                f"Coordinate {dim!r} of {label} has {int(bad.sum())} NaN or inf value(s): the grid is not "
                f"defined there. Give every cell a coordinate, or drop those: da.isel({dim}=np.isfinite(da[{dim!r}]))."
            )
        steps = np.diff(values)
        if values.size > 1 and not ((steps > 0).all() or (steps < 0).all()):
            at = int(np.argmax(steps <= 0) if steps[0] > 0 else np.argmax(steps >= 0)) + 1
            raise InputError(
                f"Coordinate {dim!r} of {label} is not strictly monotonic (it turns back or repeats at "
                f"index {at}): the cells are not in grid order. If the cells are, fix the coordinate's values; "
                f"otherwise put them in order: da.sortby({dim!r}), or drop the duplicates."
            )
    if grid.y_dim in da.coords and np.issubdtype(da[grid.y_dim].dtype, np.number) and is_geographic(da, grid):
        top = float(np.abs(np.asarray(da[grid.y_dim].values, dtype=float)).max())
        if top > 90.0:
            raise InputError(
                f"Latitude coordinate {grid.y_dim!r} of {label} reaches {top:g}, beyond ±90: these are not "
                "latitudes in degrees. If the grid is projected, give it its CRS (da.rio.write_crs(...)) or "
                "coordinate units in metres; otherwise fix the coordinate."
            )


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


def check_pair(first: xr.DataArray, last: xr.DataArray, grid: Grid) -> None:
    """Raise :class:`GridMismatchError` unless both rasters share dims, shape, coords and CRS
    (and :class:`InputError` unless their spatial coords are a grid, see :func:`check_coords`)."""
    hint = " Put both on one grid first, e.g. last = last.rio.reproject_match(first)."
    if first.dims != last.dims:
        raise GridMismatchError(f"Dims differ: {first.dims} vs {last.dims}." + hint)
    if first.shape != last.shape:
        raise GridMismatchError(f"Shapes differ: {first.shape} vs {last.shape}." + hint)
    check_coords(first, grid, "first")
    check_coords(last, grid, "last")
    for dim in first.dims:
        if dim in first.coords and dim in last.coords:
            a, b = first[dim].values, last[dim].values
            numeric = np.issubdtype(a.dtype, np.number) and np.issubdtype(b.dtype, np.number)
            if numeric:
                a, b = a.astype(float), b.astype(float)
                # float32 vs float64 storage of the same grid must pass: tolerance of 1e-3 cell
                gaps = np.abs(np.diff(a))
                step = np.nanmin(gaps) if gaps.size and np.isfinite(gaps).any() else 1.0
                both = np.isfinite(a) & np.isfinite(b)
                nan_differs = bool((np.isnan(a) != np.isnan(b)).any())
                diff = np.abs(a[both] - b[both]).max() if both.any() else 0.0
                scale = np.abs(a[both]).max() if both.any() else 0.0
                same = not nan_differs and diff <= 1e-3 * step + 1e-9 * scale
            else:
                same = np.array_equal(a, b)
            if not same:
                detail = ""
                if numeric:
                    detail = " (NaN in one where the other has a value)" if nan_differs else f" (up to {diff:.6g} apart)"
                if dim not in (grid.y_dim, grid.x_dim):
                    raise GridMismatchError(
                        f"Coordinate {dim!r} of the extra dim differs between the inputs{detail}. If it "
                        f"is a leftover length-1 dim, drop it: da.squeeze({dim!r})."
                    )
                raise GridMismatchError(f"Coordinate {dim!r} differs between the inputs{detail}." + hint)
    crs_a, crs_b = _crs(first), _crs(last)
    if (crs_a is None) != (crs_b is None) or (crs_a is not None and crs_a != crs_b):
        raise GridMismatchError(f"CRS differs: {crs_a} vs {crs_b}." + hint)
    _check_times(grid.time, scalar_time(last))
    if crs_a is None:
        warn_no_crs(first, last, grid, stacklevel=5)


def _check_times(t0, t1) -> None:
    if (t0 is None) != (t1 is None):
        which = "first" if t0 is not None else "last"
        warnings.warn(
            f"Only the {which} image has a time coordinate: frames get fractions 0..1 instead of "
            "dates, and the flow is in grid cells, not m s-1. Give both a scalar time coord.",
            UserWarning,
            stacklevel=6,
        )
    if t0 is None or t1 is None:
        return
    if type(t0) is not type(t1):
        raise TimeOrderError(f"The two time coords are of different kinds ({type(t0).__name__}, {type(t1).__name__}); "
                             "decode both the same way.")
    for label, t in (("first", t0), ("last", t1)):
        if isinstance(t, np.datetime64) and np.isnat(t):
            raise TimeOrderError(
                f"The time of the {label} image is NaT (not a time). Set it, e.g. "
                f"{label} = {label}.assign_coords(time=np.datetime64('2024-01-01T06:00')), or drop the "
                "time coord of both (frames then get fractions 0..1, the flow grid cells)."
            )
    if t1 == t0 or abs(seconds_between(t0, t1)) < DUPLICATE_GAP_S:
        apart = "" if t1 == t0 else f", only {human_duration(t1 - t0)} apart: one time stamped twice"
        raise TimeOrderError(
            f"Both images have the same time ({t0}{apart}): there is no interval to interpolate over. "
            "Pass two different time steps, e.g. da.isel(time=0) and da.isel(time=1)."
        )
    if not t1 > t0:
        raise TimeOrderError(
            f"time of the last image ({t1}) is not after the first ({t0}). "
            "Swap the arguments: first.latentdyn.interpolate(last) goes forward in time."
        )


def _register_rio() -> None:
    """Register rioxarray's ``.rio`` accessor (a dependency; imported on first need so that
    ``import xlatent`` stays light)."""
    import rioxarray  # noqa: F401


_WKT_ATTRS = ("crs_wkt", "spatial_ref")


def read_crs(obj: xr.DataArray | xr.Dataset):
    """The CRS of ``obj`` (a ``rasterio.crs.CRS``) or None, rioxarray registered on the way: the
    same answer whether or not the caller imported rioxarray (see :func:`_crs`)."""
    return _crs(obj)


def _crs(da: xr.DataArray):
    """The CRS of ``da`` (a ``rasterio.crs.CRS``), or None when it declares none.

    Read by rioxarray from the grid-mapping coordinate (its WKT or CF parameters) or a ``crs``
    attr; a CF grid mapping rioxarray cannot read is tried with ``pyproj.CRS.from_cf`` (its
    parameters alone when its WKT is broken). A declared grid mapping that none of these reads is
    a :class:`~xlatent.exceptions.CRSError`: the CRS is never dropped silently.
    """
    _register_rio()
    error = None
    try:
        crs = da.rio.crs
    except Exception as err:  # rasterio's CRSError on a broken WKT or crs attr, RioXarrayError
        crs, error = None, err
    if crs is not None:
        return crs
    mapping = _grid_mapping_attrs(da)
    if mapping is None and error is None:
        return None
    found, cf_error = _crs_from_cf(mapping) if mapping is not None else (None, None)
    if found is not None:
        return found
    cause = error or cf_error
    where = f"grid mapping {_grid_mapping_name(da)!r}" if mapping is not None else "'crs' attribute"
    raise CRSError(
        f"The {where} of the input cannot be read as a coordinate reference system ({cause}). "
        "Fix it, e.g. da.rio.write_crs('EPSG:3413'), or drop it to work in grid cells: "
        "da.drop_vars('spatial_ref') / del da.attrs['crs']."
    ) from cause


def warn_no_crs(first: xr.DataArray, last: xr.DataArray, grid: Grid, stacklevel: int = 2) -> None:
    """Say once per call that the inputs have no CRS, in the units the motion then comes out in.

    :class:`~xlatent.exceptions.CRSNotFoundWarning` when ``first`` names a grid-mapping variable
    it does not carry (what ``xr.open_dataset(path)["var"]`` gives: xarray attaches grid mappings
    only with ``decode_coords="all"``), else :class:`~xlatent.exceptions.NoCRSWarning`. Call it
    only when neither input has a CRS.
    """
    dated = grid.time is not None and scalar_time(last) is not None
    sized = cell_size_m(first, grid) is not None
    if sized and dated:
        units = "m s-1 (from the coordinates' units)"
    else:
        why = "no time on both inputs" if sized else "the grid spacing is unknown without a CRS or coordinate units"
        units = f"grid cells per unit interp_fraction ({why})"
    name = first.attrs.get("grid_mapping")
    if isinstance(name, str) and name not in first.coords:
        warnings.warn(
            f"The input names the grid mapping {name!r} but does not carry it, so its CRS is unknown: the outputs "
            f"carry none and u/v are in {units}. Open the file with xr.open_dataset(path, decode_coords='all'), "
            f"attach it with ds.set_coords({name!r}) before selecting the variable, or drop the reference "
            f"(da.attrs.pop('grid_mapping')) to silence this.",
            CRSNotFoundWarning,
            stacklevel=stacklevel + 1,
        )
        return
    warnings.warn(
        f"The inputs have no CRS (coordinate reference system): the outputs carry none and u/v are in {units}. "
        "Write one on both inputs, e.g. first = first.rio.write_crs('EPSG:4326') for longitude/latitude (or the "
        "EPSG code of their projection), or silence this with "
        "warnings.filterwarnings('ignore', category=xlatent.exceptions.NoCRSWarning).",
        NoCRSWarning,
        stacklevel=stacklevel + 1,
    )


def _grid_mapping_name(da: xr.DataArray) -> Hashable:
    return da.encoding.get("grid_mapping", da.attrs.get("grid_mapping", "spatial_ref"))


def _grid_mapping_attrs(da: xr.DataArray) -> dict | None:
    """Attributes of the grid-mapping coordinate when they describe a CRS, else None."""
    name = _grid_mapping_name(da)
    if not isinstance(name, Hashable) or name not in da.coords:
        return None
    attrs = dict(da.coords[name].attrs)
    return attrs if "grid_mapping_name" in attrs or any(k in attrs for k in _WKT_ATTRS) else None


def _crs_from_cf(attrs: dict) -> tuple[Any, Exception | None]:
    """``(rasterio CRS, None)`` from CF grid-mapping attributes, or ``(None, the error)``."""
    import pyproj
    from rasterio.crs import CRS

    error = None
    params = {k: v for k, v in attrs.items() if k not in _WKT_ATTRS}
    for candidate in (attrs, params):  # a broken WKT: the CF parameters alone
        if candidate is params and "grid_mapping_name" not in params:
            break
        try:
            return CRS.from_wkt(pyproj.CRS.from_cf(candidate).to_wkt()), None
        except Exception as err:  # pyproj's CRSError, rasterio's CRSError
            error = error or err
    return None, error


# Attributes that only make sense on packed (undecoded) values; never carried to decoded outputs.
PACKING_ATTRS = ("scale_factor", "add_offset", "_FillValue", "missing_value", "nodata", "fill_value",
                 "nodatavals", "valid_range", "valid_min", "valid_max", "_Unsigned")


def _fill_values(da: xr.DataArray) -> list:
    """No-data values declared in the attrs of an *undecoded* array (decoded arrays keep them in
    ``encoding`` and hold NaN already): ``_FillValue``, ``missing_value``, rioxarray's ``nodata``."""
    found = []
    for key in ("_FillValue", "missing_value", "nodata", "fill_value"):
        if key in da.attrs and da.attrs[key] is not None:
            found.extend(np.atleast_1d(np.asarray(da.attrs[key], dtype=float)).tolist())
    return [v for v in found if np.isfinite(v)]


def decoded_values(da: xr.DataArray) -> np.ndarray:
    """``da``'s values with no-data as NaN and ``scale_factor``/``add_offset`` applied, when the
    array still carries them in its attrs (opened with ``mask_and_scale=False``); float64, a copy.

    The no-data test is on the packed values, as CF prescribes; the input is never modified.
    float64 keeps finite values beyond float32's range finite, so that they can be named.
    """
    raw = np.asarray(da.values)
    fills = _fill_values(da)
    scale = float(da.attrs.get("scale_factor", 1.0))
    offset = float(da.attrs.get("add_offset", 0.0))
    if not fills and scale == 1.0 and offset == 0.0:
        return np.array(raw, dtype=np.float64, copy=True)
    missing = np.zeros(raw.shape, dtype=bool)
    for value in fills:
        missing |= raw == (np.asarray(value).astype(raw.dtype) if np.issubdtype(raw.dtype, np.floating) else value)
    values = raw.astype(np.float64) * scale + offset
    values[missing] = np.nan
    return values


# Larger magnitudes are taken for undeclared fill values (9.96921e36 is netCDF's default for
# float, -3.4028235e38 a common GeoTIFF nodata), never for data: an error asks to declare them.
MAX_MAGNITUDE = 1e30


def to_array(da: xr.DataArray, grid: Grid, label: str) -> np.ndarray:
    """The raster as a float64 ``(channel, row, column)`` numpy array (a copy), no-data as NaN and
    packing (``scale_factor``/``add_offset``) undone if the array still carries them.

    ``inf`` cells are treated as missing (NaN) with a :class:`~xlatent.exceptions.NonFiniteWarning`;
    finite values beyond :data:`MAX_MAGNITUDE` raise :class:`InputError` (undeclared no-data).
    """
    order = ([grid.channel_dim] if grid.channel_dim is not None else []) + [grid.y_dim, grid.x_dim]
    values = decoded_values(da.transpose(*order))
    if values.ndim == 2:
        values = values[None]
    infinite = np.isinf(values)
    warn_infinite(label, int(infinite.sum()), stacklevel=5)
    values[infinite] = np.nan
    with np.errstate(invalid="ignore"):
        huge = np.abs(values) > MAX_MAGNITUDE
    refuse_huge(label, int(huge.sum()), np.unique(values[huge])[:3])
    check_fills(values, label, da)
    if not np.isfinite(values).any():
        raise InputError(
            f"{label} has no finite value (all NaN or inf): nothing to interpolate. "
            "Check the variable, the nodata value and the area you selected."
        )
    return values


def check_fills(values: np.ndarray, label: str, da: xr.DataArray) -> None:
    """Raise :class:`~xlatent.exceptions.FillValueError` when a channel of ``values`` (channels
    first, decoded from ``da``) holds an undeclared fill value
    (:func:`xlatent.input_checks.check_fill_values`). An input that declares a fill value in its attrs
    (``_FillValue``, ``missing_value``, ``nodata``; NaN included, to say it has none) is trusted."""
    if any(key in da.attrs for key in ("_FillValue", "missing_value", "nodata", "fill_value")):
        return
    for k in range(values.shape[0]):
        check_fill_values(values[k], label if values.shape[0] == 1 else f"{label} (channel {k})")


def warn_infinite(label: str, count: int, stacklevel: int = 2) -> None:
    """Warn (:class:`NonFiniteWarning`) that ``count`` infinite cells of ``label`` are taken as missing."""
    if count:
        warnings.warn(
            f"{label} has {count} infinite value(s) (inf or -inf): treated as missing, like NaN. "
            "Mask them yourself to silence this, e.g. da.where(np.isfinite(da)), or "
            "warnings.filterwarnings('ignore', category=xlatent.exceptions.NonFiniteWarning).",
            NonFiniteWarning,
            stacklevel=stacklevel + 1,
        )


def refuse_huge(label: str, count: int, examples) -> None:
    """Raise :class:`InputError` when ``label`` has ``count`` finite values beyond :data:`MAX_MAGNITUDE`."""
    if not count:
        return
    shown = ", ".join(f"{float(v):.7g}" for v in np.atleast_1d(examples))
    raise InputError(
        f"{label} has {count} value(s) of magnitude above {MAX_MAGNITUDE:g} ({shown}): an undeclared "
        "no-data (fill) value, not data. Declare it, e.g. da.attrs['_FillValue'] = value or "
        "da.rio.write_nodata(value), or mask it: da.where(abs(da) < 1e30)."
    )


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


def _template_coords(da: xr.DataArray, grid: Grid) -> dict:
    keep = {grid.y_dim, grid.x_dim} | ({grid.channel_dim} if grid.channel_dim is not None else set())
    return {
        name: coord.variable.copy(deep=False)
        for name, coord in da.coords.items()
        if name not in ("time", time_coord_name(da)) and set(coord.dims) <= keep
    }


_TIME_ATTRS = {"standard_name": "time", "axis": "T"}


def _time_coords(grid: Grid, t_last, fractions: np.ndarray) -> dict:
    frac_attrs = {"long_name": "fraction of the interval from first to last image", "units": "1"}
    frac = xr.Variable("time", fractions.astype(np.float64), frac_attrs)
    if grid.time is None or t_last is None:
        return {"time": ("time", fractions.astype(np.float64), {"long_name": "interp_fraction"}), "interp_fraction": frac}
    if isinstance(grid.time, np.datetime64):
        gap = (t_last - grid.time).astype("timedelta64[ns]").astype(np.int64)
        stamps = grid.time + (np.round(fractions * gap)).astype("timedelta64[ns]")
        return {"time": ("time", stamps.astype("datetime64[ns]"), dict(_TIME_ATTRS)), "interp_fraction": frac}
    import datetime

    seconds = seconds_between(grid.time, t_last)
    stamps = np.array([grid.time + datetime.timedelta(seconds=float(f) * seconds) for f in fractions], dtype=object)
    return {"time": ("time", stamps, dict(_TIME_ATTRS)), "interp_fraction": frac}


def write_crs_like(obj, source: xr.DataArray, grid: Grid):
    """Give ``obj`` the CRS of ``source`` with a ``grid_mapping`` link on every variable, to a
    grid-mapping coordinate named as the source's (``spatial_ref``, ``crs``...; one, never a
    stale copy next to a new one)."""
    crs = _crs(source)
    if crs is None:
        return obj
    gm = _grid_mapping_name(source)
    if gm not in source.coords:  # a CRS read from a ``crs`` attribute: the rioxarray default
        gm = "spatial_ref"
    try:
        obj = obj.rio.set_spatial_dims(x_dim=grid.x_dim, y_dim=grid.y_dim)
    except Exception:
        pass
    with warnings.catch_warnings():  # pyproj's note on CF export of some projections (EPSG:21781)
        warnings.filterwarnings("ignore", message=".*lost in conversion to CF", category=UserWarning)
        obj = obj.rio.write_crs(crs, grid_mapping_name=gm)
    if gm in source.coords:  # keep GeoTransform and friends when present
        obj = obj.assign_coords({gm: source.coords[gm].variable.copy(deep=False)})
    try:
        obj = obj.rio.write_coordinate_system()
    except Exception:
        pass
    for dim, axis in ((grid.x_dim, "X"), (grid.y_dim, "Y")):
        if dim in obj.coords and "axis" not in obj[dim].attrs:
            # lets rioxarray/cf-xarray find lat/lon dims after reopening; a copy, never the input's
            var = obj[dim].variable.copy(deep=False)
            var.attrs = {**var.attrs, "axis": axis}
            obj = obj.assign_coords({dim: var})
    targets = obj.data_vars.values() if isinstance(obj, xr.Dataset) else [obj]
    for var in targets:
        var.encoding["grid_mapping"] = gm
        var.attrs.pop("grid_mapping", None)
    return obj


def denormalise(frames: Any, mean: np.ndarray, std: np.ndarray, dtype: Any) -> Any:
    """Normalised ``(time, channel, row, column)`` frames (numpy or dask) back in the data's units:
    in float64 for float64 inputs, so that their precision is not cut to float32's 7 digits of the
    values themselves (the model's float32 then costs about 1e-7 of the data's spread), else in
    float32."""
    kind = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    std = np.asarray(std, dtype=kind)[None, :, None, None]
    mean = np.asarray(mean, dtype=kind)[None, :, None, None]
    return frames.astype(kind) * std + mean


def frames_to_xarray(
    frames: np.ndarray,
    source: xr.DataArray,
    grid: Grid,
    t_last: np.datetime64 | None,
    fractions: np.ndarray,
    attrs: dict,
) -> xr.DataArray:
    """Wrap ``(time, channel, row, column)`` frames like ``source``, with time and CRS."""
    dims = ["time"] + ([grid.channel_dim] if grid.channel_dim is not None else []) + [grid.y_dim, grid.x_dim]
    data = frames if grid.channel_dim is not None else frames[:, 0]
    dtype = source.dtype if np.issubdtype(source.dtype, np.floating) else np.float32
    out = xr.DataArray(data.astype(dtype), dims=dims, name=source.name)
    out = out.assign_coords(_template_coords(source, grid)).assign_coords(_time_coords(grid, t_last, fractions))
    order = ["time"] + [d for d in source.dims if d in dims]
    out = out.transpose(*order)
    kept = {k: v for k, v in source.attrs.items() if k not in PACKING_ATTRS}  # values are decoded
    out.attrs = {**kept, **attrs}
    return write_crs_like(out, source, grid)


def flow_to_xarray(
    u: np.ndarray,
    v: np.ndarray,
    source: xr.DataArray,
    grid: Grid,
    t_last: np.datetime64 | None,
    fractions: np.ndarray,
    attrs: dict,
) -> xr.Dataset:
    """Wrap index-space stage fields ``(stage, row, column)`` as a CF-style ``u``/``v`` Dataset."""
    seconds = None
    if grid.time is not None and t_last is not None:
        seconds = seconds_between(grid.time, t_last)
    uc, vc, units = flow_in_coordinates(u, v, source, grid, seconds)
    if units == "m s-1":
        _check_speed(uc, vc, source, grid, seconds)
    dims = ("time",) + tuple(d for d in source.dims if d in (grid.y_dim, grid.x_dim))
    if dims[1:] != (grid.y_dim, grid.x_dim):
        uc, vc = uc.transpose(0, 2, 1), vc.transpose(0, 2, 1)
    ds = xr.Dataset({"u": (dims, uc, {"units": units}), "v": (dims, vc, {"units": units})})  # names: xlatent.cf
    ds = ds.assign_coords(_template_coords(source, grid)).assign_coords(_time_coords(grid, t_last, fractions))
    ds = ds.drop_vars([c for c in ds.coords if grid.channel_dim is not None and grid.channel_dim in ds[c].dims])
    ds.attrs = dict(attrs)
    return write_crs_like(ds, source, grid)


def add_map(ds: xr.Dataset, name: str, values: np.ndarray, source: xr.DataArray, grid: Grid, attrs: dict) -> xr.Dataset:
    """``ds`` with a time-independent ``(row, column)`` field added as ``name`` on the source's
    spatial dims (in the source's dim order), with ``attrs`` and the CRS link of every variable."""
    dims = tuple(d for d in source.dims if d in (grid.y_dim, grid.x_dim))
    if dims != (grid.y_dim, grid.x_dim):
        values = values.T
    ds = ds.assign({name: (dims, values, dict(attrs))})
    return write_crs_like(ds, source, grid)
