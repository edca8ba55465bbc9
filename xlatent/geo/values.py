"""The values of an input raster: packing (``scale_factor``/``add_offset``) undone, declared no-data
as NaN, infinite values taken as missing, undeclared fill values refused; the ``(channel, row,
column)`` array the methods get."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from xlatent.exceptions import InputError, NonFiniteWarning
from xlatent.geo.dims import Grid
from xlatent.input_checks import check_fill_values

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
    values = decoded_data(da, np.asarray(da.values))
    return np.array(values, dtype=np.float64, copy=True)


def decoded_data(da: xr.DataArray, raw):
    """:func:`decoded_values` on ``raw``, the data of ``da`` (numpy or dask: a dask array stays
    lazy), float64; ``raw`` itself, cast, when ``da`` declares no packing or no-data value."""
    fills = _fill_values(da)
    scale = float(da.attrs.get("scale_factor", 1.0))
    offset = float(da.attrs.get("add_offset", 0.0))
    if not fills and scale == 1.0 and offset == 0.0:
        return raw.astype(np.float64)
    missing = raw != raw  # False where the raw value is a number (NaN stays NaN below)
    for value in fills:
        missing = missing | (raw == (np.asarray(value).astype(raw.dtype) if np.issubdtype(raw.dtype, np.floating) else value))
    return np.where(missing, np.nan, raw.astype(np.float64) * scale + offset)


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
