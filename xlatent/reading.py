"""Files in: one image (a DataArray) from any raster xarray or rioxarray reads
(:func:`open_image`), its variable, time step and timestamp chosen, a damaged file named."""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xlatent.exceptions import InputError, InputFileError, TimeNotDateWarning, UnknownVariableError
from xlatent.geo import scalar_time, time_coord_name, time_dim

# GDAL rasters read with rioxarray; everything else goes to xarray first.
RASTER_SUFFIXES = {".tif", ".tiff", ".gtiff", ".cog", ".vrt", ".jp2", ".img", ".asc", ".png", ".jpg", ".jpeg"}


def open_image(
    path: str | os.PathLike,
    variable: str | None = None,
    *,
    time_index: int | None = None,
    timestamp: str | np.datetime64 | None = None,
    chunks: Any = None,
    engine: str | None = None,
) -> xr.DataArray:
    """Open one image (or a time series of images) from a file, decoded and with its CRS.

    Parameters
    ----------
    path : str or path-like
        A NetCDF/HDF5 file, a Zarr store, or a GeoTIFF (or any raster GDAL reads).
    variable : str, optional
        The variable to read from a NetCDF/Zarr file; optional when the file holds only one
        gridded variable. GeoTIFFs hold a single variable; their bands become the channel dim
        ``band`` (a single band is dropped).
    time_index : int, optional
        Select this position along the file's time dim (negative counts from the end).
        Without it, a time dim of length 1 is squeezed and a longer one is kept.
    timestamp : str or numpy.datetime64, optional
        Set the image's time (e.g. ``"2024-03-01T12:00"``) when the file has none (GeoTIFF):
        with a time on both images the flow comes out in ``m s-1``.
    chunks : optional
        Passed to xarray/rioxarray to open lazily with dask. Without it the image is read into
        memory and the file is closed.
    engine : str, optional
        xarray backend (``"netcdf4"``, ``"h5netcdf"``, ``"zarr"``...), when guessing fails.

    Returns
    -------
    xarray.DataArray
        NaN where the file says no-data, ``scale_factor``/``add_offset`` applied, CRS in
        ``rio.crs`` and a ``spatial_ref`` coord (when the file has one).

    Raises
    ------
    InputFileError
        The file does not exist or no reader can open it.
    UnknownVariableError
        ``variable`` is not in the file, or the file holds several and none was named (the
        message lists them).
    InputError
        ``time_index`` out of range or given for a file without a time dim; bad ``timestamp``.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"No such file: {path}")
    if path.is_dir() and engine is None and not is_zarr_store(path):
        raise InputFileError(
            f"{path} is a folder, not a Zarr store (it holds no zarr.json, .zgroup nor .zarray): "
            "give an image file (NetCDF, GeoTIFF...) or a Zarr store."
        )
    zarr = path.is_dir() or path.suffix.lower() == ".zarr" or engine == "zarr"
    if path.suffix.lower() in RASTER_SUFFIXES and engine is None:
        da = _open_raster(path, variable, chunks)
    else:
        try:
            ds = _open_dataset(path, chunks, "zarr" if zarr else engine)
        except Exception as xr_err:  # not a format xarray reads: let GDAL try
            if zarr and isinstance(xr_err, ImportError):
                raise InputFileError(f"Cannot read the Zarr store {path}: it needs the zarr package: "
                                     "pip install 'xlatent[zarr]'.") from xr_err
            if zarr or engine is not None:
                raise InputFileError(f"Cannot read {path}: {xr_err}") from xr_err
            try:
                da = _open_raster(path, variable, chunks)
            except InputFileError:
                raise InputFileError(f"Cannot read {path} with xarray ({xr_err}) nor with rioxarray/GDAL.") from xr_err
        else:
            da = _pick_variable(ds, variable, path)
    da = _select_time(da, time_index, path)
    if timestamp is not None:
        da = _set_time(da, timestamp, path)
    if chunks is None:
        da = _load(da, path)
    return da


def _load(da: xr.DataArray, path: Path) -> xr.DataArray:
    """``da`` read into memory and its file closed; a file whose header opens but whose data
    cannot be read (truncated, damaged) is an :class:`~xlatent.exceptions.InputFileError`."""
    try:
        da = da.load()
    except MemoryError:
        raise
    except Exception as err:  # rasterio's RasterioIOError, netCDF4's RuntimeError, zlib's error...
        da.close()
        raise InputFileError(
            f"Cannot read the data of {path}: the file is truncated or damaged ({type(err).__name__}: {err}). "
            "Download or copy it again."
        ) from err
    da.close()
    return da


def _open_dataset(path: Path, chunks, engine) -> xr.Dataset:
    """``xr.open_dataset`` with the grid mapping attached; times that xarray cannot decode
    (``"months since"``, a calendar without cftime) are read as numbers with a warning rather
    than making the file unreadable."""
    try:
        return xr.open_dataset(path, decode_coords="all", chunks=chunks, engine=engine)
    except ValueError as err:
        if "decode_times=False" not in str(err):
            raise
        warnings.warn(
            f"{path.name}: its times cannot be decoded ({err}); they are read as numbers, so the flow is per "
            "interval rather than per second. Decode them yourself (e.g. install cftime) to get m s-1.",
            TimeNotDateWarning,
            stacklevel=4,
        )
        return xr.open_dataset(path, decode_coords="all", decode_times=False, chunks=chunks, engine=engine)


ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray", ".zmetadata")  # Zarr v3, v2 group/array, consolidated v2


def is_zarr_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a local folder with Zarr metadata at its top (v2 or v3)."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in ZARR_MARKERS)


def _open_raster(path: Path, variable: str | None, chunks: Any) -> xr.DataArray:
    import rioxarray

    try:
        obj = rioxarray.open_rasterio(path, mask_and_scale=True, chunks=chunks)
    except Exception as err:
        raise InputFileError(f"Cannot read {path} as a raster (rioxarray/GDAL): {err}") from err
    if isinstance(obj, list):  # several subdatasets of different shapes (HDF4/HDF5)
        obj = xr.merge(obj, compat="override")
    if isinstance(obj, xr.Dataset):
        return _pick_variable(obj, variable, path)
    if variable is not None and variable != obj.name:
        raise UnknownVariableError(
            f"{path.name} is a single-variable raster (bands: {obj.sizes.get('band', 1)}); "
            f"it has no variable {variable!r}. Leave the variable out."
        )
    if "band" in obj.dims and obj.sizes["band"] == 1:
        obj = obj.squeeze("band", drop=True)
    return obj


def _gridded(ds: xr.Dataset) -> list[Hashable]:
    """Data variables that can be images: at least two dims, not a cell-bounds variable named by
    another's ``bounds`` attr (grid mappings and scalars have fewer dims)."""
    variables = ds.variables.values()
    bounds = {var.attrs.get("bounds") for var in variables} | {var.encoding.get("bounds") for var in variables}
    return [name for name, var in ds.data_vars.items() if var.ndim >= 2 and name not in bounds]


def _pick_variable(ds: xr.Dataset, variable: str | None, path: Path) -> xr.DataArray:
    candidates = _gridded(ds)
    if variable is None:
        if len(candidates) == 1:
            return ds[candidates[0]]
        listed = ", ".join(map(str, candidates)) or "none"
        raise UnknownVariableError(
            f"{path.name} holds {len(candidates)} gridded variables ({listed}): name one "
            "(variable= in Python, --variable on the command line)."
        )
    if variable not in ds.data_vars:
        listed = ", ".join(map(str, candidates or list(ds.data_vars))) or "none"
        raise UnknownVariableError(f"{path.name} has no variable {variable!r}. Variables in the file: {listed}.")
    return ds[variable]


def _select_time(da: xr.DataArray, index: int | None, path: Path) -> xr.DataArray:
    dim = time_dim(da)
    if index is None:
        return da.isel({dim: 0}) if dim is not None and da.sizes[dim] == 1 else da
    if dim is None:
        raise InputError(f"{path.name} has no time dim (dims: {tuple(da.dims)}): a time index cannot be used.")
    n = da.sizes[dim]
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not -n <= index < n:
        raise InputError(f"Time index {index!r} is out of range for {path.name}: {dim!r} has {n} steps (0..{n - 1}).")
    return da.isel({dim: int(index)})


def _set_time(da: xr.DataArray, timestamp: Any, path: Path) -> xr.DataArray:
    dim = time_dim(da)
    if dim is not None:
        raise InputError(f"{path.name} already has a time dim {dim!r}: select a step instead of setting a timestamp.")
    try:
        value = np.datetime64(timestamp, "ns")
    except ValueError as err:
        raise InputError(f"Cannot read {timestamp!r} as a date and time; use ISO 8601, e.g. 2024-03-01T12:00.") from err
    if np.isnat(value):
        raise InputError(f"Timestamp {timestamp!r} is not a date.")
    name = time_coord_name(da)
    if name is not None:
        warnings.warn(f"{path.name}: its time {scalar_time(da)} is replaced by {value}.", UserWarning, stacklevel=3)
        da = da.drop_vars(name)
    return da.assign_coords(time=value)
