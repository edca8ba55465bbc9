"""Checks on the inputs as rasters: a numeric DataArray, spatial coords that are a grid, two images
on one grid with one CRS and times in order, and the warning when they have no CRS."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from xlatent.exceptions import (
    CRSNotFoundWarning,
    GridMismatchError,
    InputError,
    InputTypeError,
    NoCRSWarning,
    TimeOrderError,
)
from xlatent.geo.crs import _crs
from xlatent.geo.dims import Grid
from xlatent.geo.spacing import cell_size_m, coord_values, is_geographic
from xlatent.geo.times import DUPLICATE_GAP_S, human_duration, scalar_time, seconds_between


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
