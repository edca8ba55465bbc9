"""Files in and out: open any raster xarray or rioxarray reads, write NetCDF atomically with the
CRS link kept, and keep frames and flow together in one file.

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
import re
import signal
import tempfile
import threading
import warnings
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xlatent._dask import bands
from xlatent.exceptions import InputError, InputFileError, TimeNotDateWarning, UnknownVariableError
from xlatent.geo import scalar_time, time_coord_name, time_dim

# GDAL rasters read with rioxarray; everything else goes to xarray first.
RASTER_SUFFIXES = {".tif", ".tiff", ".gtiff", ".cog", ".vrt", ".jp2", ".img", ".asc", ".png", ".jpg", ".jpeg"}
FLOW_TIME = "stage_time"  # time axis of the flow in a combined result file
FLOW_FRACTION = "stage_fraction"
# Dataset-level attributes of outputs (the rest belongs to the variables).
_GLOBAL_KEYS = ("Conventions", "history")


def _is_global(key: str) -> bool:
    return key in _GLOBAL_KEYS or key.startswith("xlatent_")


# ---------------------------------------------------------------------------------------------
# Reading


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


# ---------------------------------------------------------------------------------------------
# Writing


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM for the length of the block, then deliver them.

    For the few steps that must happen together or not at all (create a temporary file and
    note it, rename it onto the target, remove it): a signal arriving in between would leave a
    partial or orphaned file. Outside the main thread (where Python delivers no signal) it does
    nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is None:  # installed outside Python: leave it alone
            continue
        previous[sig] = handler
        signal.signal(sig, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            handler = previous[held[0]]
            if callable(handler):
                handler(held[0], None)  # Python's default for SIGINT raises KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                signal.raise_signal(held[0])


@contextmanager
def atomic_write(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    The temporary file is in the same folder (so the final ``os.replace`` is atomic) and keeps
    ``path``'s suffix, or ``suffix`` when given (writers that pick a format by suffix still
    work). Any exception, Ctrl-C included, removes it and leaves an existing ``path`` untouched;
    a Ctrl-C during the creation, the rename or the removal waits for it to end
    (:func:`uninterrupted`).
    """
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    tmp = None
    with naming(path):
        try:
            with uninterrupted():
                fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
                os.close(fd)
            yield Path(tmp)
            with uninterrupted():
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it the usual mode
                os.replace(tmp, path)
        except BaseException:
            if tmp is not None:
                with uninterrupted(), suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise


@contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise an error that names one of the hidden temporary files or folders beside ``path``
    (``.<stem>.<random>.tmp<suffix>``, written by :func:`atomic_write`, :func:`atomic_store` and the
    NetCDF staging store) as the same error naming ``path``: the user never asked for the other."""
    try:
        yield
    except Exception as err:
        renamed = _renamed(err, Path(path))
        if renamed is None:
            raise
        raise renamed.with_traceback(err.__traceback__) from err.__cause__


def _temporary_names(path: Path) -> re.Pattern:
    """Temporary names beside ``path`` (and paths inside such a temporary store), in any text."""
    stem = re.escape(f".{path.stem}.")
    name = re.escape(f".{path.name}.")
    return re.compile(rf"[^\s'\"]*?(?:{stem}[^/\\\s'\"]*?\.tmp|{name}[^/\\\s'\"]*?\.old)[^/\\\s'\"]*")


def _renamed(err: Exception, path: Path) -> Exception | None:
    """``err`` with the temporary names replaced by ``path``; None when it names none."""
    pattern = _temporary_names(path)
    user = str(path)
    if isinstance(err, OSError) and type(err).__module__ == "builtins" and err.errno is not None and err.strerror:
        names = [str(n) for n in (err.filename, err.filename2) if n is not None]
        if not any(pattern.search(n) for n in names):
            return None
        return OSError(err.errno, err.strerror, user)  # the subclass for errno: PermissionError...
    text = str(err)
    if not pattern.search(text):
        return None
    try:
        return type(err)(pattern.sub(lambda m: user, text))
    except Exception:  # noqa: BLE001  built from other arguments: leave the error as it is
        return None


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


@contextmanager
def atomic_store(path: Path) -> Iterator[Path]:
    """:func:`atomic_write` for a folder store (Zarr): a temporary folder beside ``path``,
    moved onto it only if the block succeeds (an existing store is replaced then)."""
    import shutil

    with naming(path):
        with uninterrupted():
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent))
            tmp.rmdir()  # the writer creates it
        try:
            yield tmp
            with uninterrupted():  # the old store moved aside and the new one in: both, or neither
                if path.exists():
                    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                    os.replace(path, old / path.name)
                    os.replace(tmp, path)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(tmp, path)
        except BaseException:
            with uninterrupted():
                shutil.rmtree(tmp, ignore_errors=True)
            raise


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
