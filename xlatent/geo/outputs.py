"""Building the outputs: frames and ``u``/``v`` fields wrapped like the input (coords, time, attrs),
per-cell maps added, and the input's CRS written with a grid-mapping link on every variable."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from xlatent.geo.crs import _crs, _grid_mapping_name
from xlatent.geo.dims import Grid
from xlatent.geo.times import seconds_between, time_coord_name
from xlatent.geo.units import _check_speed, flow_in_coordinates
from xlatent.geo.values import PACKING_ATTRS


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
