"""Time: the scalar time of an image and the dim of dates, decoded however the input holds them
(``datetime64``, cftime, CF ``"<unit> since <date>"`` numbers, ISO 8601 strings, timezone-aware
datetimes); the time gap in seconds and in words."""

from __future__ import annotations

import datetime
import re
import warnings
from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from xlatent.exceptions import TimeNotDateWarning

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
