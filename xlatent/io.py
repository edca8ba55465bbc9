"""Files in and out: open any raster xarray or rioxarray reads, write NetCDF atomically with the
CRS link kept, and keep frames and flow together in one file. Reading is :mod:`xlatent.reading`,
writing whole or not at all :mod:`xlatent.atomic`; every name is importable from here.

- :func:`open_image`: NetCDF/HDF5 (``decode_coords="all"``), Zarr, GeoTIFF and other GDAL
  formats (``rioxarray.open_rasterio(mask_and_scale=True)``) -> one DataArray image.
- :func:`to_netcdf`: ``obj.to_netcdf`` that merges the ``grid_mapping`` into the user's
  ``encoding=`` and writes to a temporary file then renames it: no half-written file, ever.
- :func:`to_zarr`: the same for Zarr stores, with dask-backed variables computed and written
  band by band (memory bounded by one band, for scenes larger than memory).
- :func:`save_result` / :func:`open_result`: frames and flow in one NetCDF file or Zarr store
  (the flow on its own ``stage_time`` axis), as written by the command line.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xlatent._dask import bands
from xlatent.atomic import atomic_store, atomic_write, naming, uninterrupted
from xlatent.exceptions import InputError, InputFileError, UnknownVariableError
from xlatent.reading import RASTER_SUFFIXES, ZARR_MARKERS, is_zarr_store, open_image

__all__ = [
    "FLOW_FRACTION", "FLOW_TIME", "RASTER_SUFFIXES", "ZARR_MARKERS", "atomic_store", "atomic_write", "is_zarr_store",
    "naming", "netcdf_encoding", "open_image", "open_result", "result_dataset", "save_result", "to_netcdf", "to_zarr",
    "uninterrupted",
]

FLOW_TIME = "stage_time"  # time axis of the flow in a combined result file
FLOW_FRACTION = "stage_fraction"
# Dataset-level attributes of outputs (the rest belongs to the variables).
_GLOBAL_KEYS = ("Conventions", "history")


def _is_global(key: str) -> bool:
    return key in _GLOBAL_KEYS or key.startswith("xlatent_")


# ---------------------------------------------------------------------------------------------
# Writing


def _as_dataset(obj: xr.DataArray | xr.Dataset) -> xr.Dataset:
    if isinstance(obj, xr.Dataset):
        return obj.copy(deep=False)
    if not isinstance(obj, xr.DataArray):
        raise TypeError(f"Expected an xarray DataArray or Dataset, got {type(obj).__name__}.")
    name = obj.name if obj.name is not None else "__xarray_dataarray_variable__"  # xr.open_dataarray's
    ds = obj.to_dataset(name=name)
    ds.attrs = {k: v for k, v in obj.attrs.items() if _is_global(k)}  # CF wants them global
    return ds


def netcdf_encoding(ds: xr.Dataset, encoding: Mapping[Hashable, Mapping[str, Any]] | None = None) -> dict:
    """``encoding`` (a copy) with each data variable's ``grid_mapping`` merged in, so that the CRS
    link survives compression settings and the like, and no ``_FillValue`` on float coordinates."""
    merged = {name: dict(value) for name, value in (encoding or {}).items()}
    for name, var in ds.data_vars.items():
        gm = var.encoding.get("grid_mapping")
        if gm and "grid_mapping" not in var.attrs and gm in ds.variables:
            merged.setdefault(name, {}).setdefault("grid_mapping", gm)
    for name, var in ds.coords.items():  # CF: coordinates hold no missing values, so no _FillValue
        if np.issubdtype(var.dtype, np.floating) and "_FillValue" not in var.encoding and "_FillValue" not in var.attrs:
            merged.setdefault(name, {}).setdefault("_FillValue", None)
    return merged


def to_netcdf(
    obj: xr.DataArray | xr.Dataset,
    path: str | os.PathLike,
    encoding: Mapping[Hashable, Mapping[str, Any]] | None = None,
    *,
    band: int | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> Path:
    """Write a DataArray or Dataset to NetCDF, keeping the CRS link, atomically.

    Same as ``obj.to_netcdf(path, encoding=encoding, **kwargs)`` except that

    - each variable's ``grid_mapping`` is merged into ``encoding`` (xarray drops it when
      ``encoding`` names the variable without it, e.g. for compression), so ``rio.crs`` and
      cf-xarray find the CRS after ``xr.open_dataset(path, decode_coords="all")``;
    - for a DataArray, ``Conventions``, ``history`` and ``xlatent_*`` provenance are also written
      as global attributes, where CF and most tools look for them;
    - the file is written under a temporary name in the same folder and renamed when complete:
      an error or interruption leaves no partial file, and an existing file stays as it was;
    - dask-backed variables of several chunks are first computed band by band into a temporary
      Zarr store beside ``path`` (as :func:`to_zarr`, memory bounded by one band; it needs
      their size in free disk space too), then copied into the file chunk by chunk.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        What to write (frames, flow, anything).
    path : str or path-like
        Target file; its folder must exist.
    encoding : dict, optional
        Per-variable encoding, e.g. ``{"u": {"zlib": True, "complevel": 4}}``.
    band : int, optional
        Chunk rows per band for dask-backed variables (see :func:`to_zarr`).
    progress : bool, default True
        A progress bar over the bands (tqdm).
    **kwargs
        Passed to ``to_netcdf`` (``format=``, ``engine=``, ``unlimited_dims=``...). ``mode="a"``
        and ``compute=False`` are refused: neither can be atomic.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if kwargs.get("mode", "w") != "w":
        raise InputError("xlatent.to_netcdf writes whole files (mode='w'); to append, call obj.to_netcdf(path, mode='a').")
    if kwargs.get("compute", True) is not True:
        raise InputError("xlatent.to_netcdf writes at once (compute=True); for a delayed write call obj.to_netcdf.")
    ds = _as_dataset(obj)
    enc = netcdf_encoding(ds, encoding)
    path = Path(path)
    with atomic_write(path) as tmp, _staged(ds, path, band, progress) as staged:
        staged.to_netcdf(tmp, encoding=enc, **kwargs)
    return path


@contextmanager
def _staged(ds: xr.Dataset, path: Path, band: int | None, progress: bool) -> Iterator[xr.Dataset]:
    """``ds``, its dask-backed variables first written band by band to a temporary Zarr store
    beside ``path`` and read back from it: writing the NetCDF file is then one independent
    read-and-write per chunk, whatever the graph that computed them (see :func:`to_zarr`)."""
    lazy = [name for name, var in ds.data_vars.items() if var.chunks is not None]
    if not lazy or all(n == 1 for name in lazy for n in ds[name].data.numblocks):
        yield ds
        return
    import shutil

    store = None
    with naming(path):
        try:
            with uninterrupted():
                store = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", suffix=".tmp.zarr", dir=path.parent))
            _write_zarr(ds[lazy].drop_encoding(), store, {}, band, progress, {}, path.name)
            back = xr.open_zarr(store, chunks={}, decode_times=False, decode_timedelta=False)
            yield ds.assign({name: ds[name].copy(data=back[name].data) for name in lazy})
        finally:
            if store is not None:
                with uninterrupted():
                    shutil.rmtree(store, ignore_errors=True)


def to_zarr(
    obj: xr.DataArray | xr.Dataset,
    path: str | os.PathLike,
    encoding: Mapping[Hashable, Mapping[str, Any]] | None = None,
    *,
    band: int | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> Path | str:
    """Write a DataArray or Dataset to a Zarr store, dask-backed variables band by band.

    ``obj.to_zarr(path)`` computes every chunk of every variable in one dask graph; when one
    task feeds several chunks (frames and ``u``/``v`` from the same model block) and the chunks
    read overlapping inputs, dask's ordering keeps results and inputs in memory across the whole
    scene (xarray issue 10745; benchmarks/SCALE.md). Here the store's metadata and the small
    variables are written first, then the dask-backed variables in bands of ``band`` chunk rows
    along their outermost chunked dimension, one ``to_zarr(region=...)`` per band: memory is
    bounded by one band whatever the scene's size, on the threaded scheduler or a
    ``dask.distributed`` cluster (the active scheduler runs each band).

    As :func:`to_netcdf`, the ``grid_mapping`` is merged into ``encoding`` (the CRS survives),
    and a local store is written under a temporary name in the same folder and renamed when
    complete: an error or interruption leaves no partial store and an existing one untouched.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        What to write: frames, flow, or :func:`result_dataset` of both.
    path : str or path-like
        Target store (a folder, e.g. ``"frames.zarr"``), or a URL (``s3://...``, written in
        place, not atomically).
    encoding : dict, optional
        Per-variable encoding, e.g. ``{"frames": {"compressors": ...}}``.
    band : int, optional
        Chunk rows per band. Default: the fewest rows that give every dask thread (or
        cluster thread) four chunks to work on, at least 8 chunks.
    progress : bool, default True
        A progress bar over the bands (tqdm).
    **kwargs
        Passed to the first ``to_zarr`` call (``zarr_format=``, ``consolidated=``,
        ``storage_options=``...). ``mode`` other than ``"w"``, ``region``, ``append_dim``
        and ``compute=False`` are refused.

    Returns
    -------
    pathlib.Path or str
        ``path``.
    """
    for key in ("region", "append_dim"):
        if kwargs.get(key) is not None:
            raise InputError(f"xlatent.to_zarr writes whole stores; for {key}= call obj.to_zarr(path, {key}=...).")
    if kwargs.pop("mode", "w") != "w":
        raise InputError("xlatent.to_zarr writes whole stores (mode='w'); to append, call obj.to_zarr(path, mode='a').")
    if kwargs.pop("compute", True) is not True:
        raise InputError("xlatent.to_zarr writes at once (compute=True); for a delayed write call obj.to_zarr.")
    ds = _as_dataset(obj)
    enc = netcdf_encoding(ds, encoding)
    if "://" in str(path):
        _write_zarr(ds, str(path), enc, band, progress, kwargs, str(path))
        return str(path)
    path = Path(path)
    with atomic_store(path) as tmp:
        _write_zarr(ds, tmp, enc, band, progress, kwargs, path.name)
    return path


def _write_zarr(ds: xr.Dataset, target, encoding: dict, band: int | None, progress: bool, kwargs: dict,
                label: str) -> None:
    lazy = [name for name, var in ds.data_vars.items() if var.chunks is not None]
    ds = ds.unify_chunks() if lazy else ds
    biggest = max(lazy, key=lambda name: ds[name].size, default=None)
    dim = biggest and next((d for d, c in zip(ds[biggest].dims, ds[biggest].chunks) if len(c) > 1), None)
    if dim is None:  # nothing lazy, or one chunk row: written at once
        ds.to_zarr(target, mode="w", encoding=encoding, **kwargs)
        return
    small = {name: var.compute() for name, var in ds.variables.items() if var.chunks is not None and dim not in var.dims}
    ds = ds.assign_coords({n: v for n, v in small.items() if n in ds.coords})  # no band axis:
    ds = ds.assign({n: v for n, v in small.items() if n not in ds.coords})  # loaded whole, small
    ds.to_zarr(target, mode="w", compute=False, encoding=encoding, **kwargs)  # metadata, numpy data
    from tqdm.auto import tqdm

    per_row = int(np.prod([len(c) for d, c in zip(ds[biggest].dims, ds[biggest].chunks) if d != dim]))
    parts = bands(ds.chunksizes[dim], per_row, band)
    banded = ds.drop_vars([name for name in ds.variables if dim not in ds[name].dims])
    for lo, hi in tqdm(parts, desc=f"xlatent writing {label}", unit="band", disable=not progress or len(parts) < 2,
                       leave=False):
        part = banded.isel({dim: slice(lo, hi)})
        part.to_zarr(target, mode="r+", region={dim: slice(lo, hi)}, storage_options=kwargs.get("storage_options"))


def result_dataset(frames: xr.DataArray, flow: xr.Dataset | None = None) -> xr.Dataset:
    """Frames and flow as one Dataset: the frames variable on ``time``, ``u``/``v`` on
    ``stage_time`` (with ``stage_fraction``), shared spatial coords and CRS, provenance global."""
    name = frames.name if frames.name is not None and str(frames.name) not in ("u", "v", "u_east", "v_north") else "frames"
    var = frames.copy(deep=False).rename(name)
    var.attrs = {k: v for k, v in frames.attrs.items() if not _is_global(k)}
    ds = var.to_dataset()
    attrs = {k: v for k, v in frames.attrs.items() if _is_global(k)}
    if flow is not None:
        renames = {"time": FLOW_TIME, "interp_fraction": FLOW_FRACTION}
        staged = flow.rename({k: v for k, v in renames.items() if k in flow.variables})
        if FLOW_TIME in staged.coords:
            staged[FLOW_TIME].attrs = {**staged[FLOW_TIME].attrs, "long_name": "middle of each advection stage"}
        if FLOW_FRACTION in staged.coords:
            staged[FLOW_FRACTION].attrs = {"long_name": "interp_fraction at the middle of each advection stage", "units": "1"}
        ds = xr.merge([ds, staged], combine_attrs="override", compat="override", join="exact")
        attrs = {**{k: v for k, v in flow.attrs.items() if _is_global(k)}, **attrs}
    ds.attrs = attrs
    return ds


def save_result(
    frames: xr.DataArray,
    flow: xr.Dataset | None,
    path: str | os.PathLike,
    encoding: Mapping[Hashable, Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> Path | str:
    """Write frames and flow to one NetCDF file or Zarr store, atomically (read back with
    :func:`open_result`).

    Layout: the frames variable (the input's name, else ``frames``) on ``time``; ``u`` and ``v``
    on their own ``stage_time`` axis (advection stages, stamped at their midpoints) with a
    ``stage_fraction`` coord; one ``spatial_ref`` grid mapping for all; ``Conventions``,
    ``history`` and provenance as global attributes. ``xr.open_dataset(path,
    decode_coords="all")`` reads it as one Dataset.

    A ``path`` ending in ``.zarr`` is written with :func:`to_zarr`: dask-backed frames and flow
    (from inputs opened with ``chunks=``) are computed and stored band by band, in memory
    bounded by one band, however large the scene. Other paths go to :func:`to_netcdf` (one
    dask graph: prefer Zarr for scenes larger than memory). ``**kwargs`` go to that function.
    """
    if Path(str(path)).suffix.lower() == ".zarr":
        return to_zarr(result_dataset(frames, flow), path, encoding=encoding, **kwargs)
    return to_netcdf(result_dataset(frames, flow), path, encoding=encoding, **kwargs)


def open_result(path: str | os.PathLike, **kwargs: Any) -> tuple[xr.DataArray, xr.Dataset | None]:
    """Read a file written by :func:`save_result` (or ``xlatent interpolate``) back as
    ``(frames, flow)``, the same shapes and names :func:`xlatent.interpolate` returns."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"No such file: {path}")
    ds = xr.open_dataset(path, decode_coords="all", **kwargs)
    flow_vars = [v for v in ds.data_vars if FLOW_TIME in ds[v].dims]
    frame_vars = [v for v in ds.data_vars if v not in flow_vars and "time" in ds[v].dims and ds[v].ndim >= 2]
    # time-independent maps of the flow (the motion's ``confidence``) go back with u/v
    flow_vars += [v for v in ds.data_vars if v not in flow_vars and v not in frame_vars and ds[v].ndim >= 2]
    if len(frame_vars) != 1:
        raise UnknownVariableError(f"{path.name} is not an xlatent result file (frames variables found: {frame_vars}).")
    attrs = {k: v for k, v in ds.attrs.items() if _is_global(k)}
    frames = ds[frame_vars[0]]
    frames = frames.drop_vars([c for c in frames.coords if FLOW_TIME in frames[c].dims])
    frames.attrs = {**frames.attrs, **attrs}
    if not flow_vars:
        return frames, None
    renames = {FLOW_TIME: "time", FLOW_FRACTION: "interp_fraction"}
    flow = ds[flow_vars].rename({k: v for k, v in renames.items() if k in ds.variables})
    flow.attrs = dict(attrs)
    return frames, flow
