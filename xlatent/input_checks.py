"""Checks on the inputs made before any work: undeclared fill values, the size of what a call
would produce against the memory there is, and a pair with one input lazy and the other not.

The geo side of validation (dims, coords, CRS, time) lives in :mod:`xlatent.geo`; these are the
checks on values and sizes, shared by :mod:`xlatent.api`, :mod:`xlatent.forecast` and the
backends.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr

from xlatent.exceptions import FillValueError, InputError

# A value is taken for an undeclared fill (no-data) value when at least this share of an input's
# finite cells hold it, it is the input's smallest or largest value, and it lies further from all
# the other values than FILL_GAP times their whole range: no measured field has such a lone,
# heavily repeated extreme, while -9999, -999, 1e4 or -3.4e38 beside the data always are.
FILL_SHARE = 0.005
FILL_GAP = 3.0


def find_fill_value(values: np.ndarray) -> tuple[float, int] | None:
    """The undeclared fill value of ``values`` and how many cells hold it, or None.

    Parameters
    ----------
    values : numpy.ndarray
        Decoded values (NaN where missing), any shape.

    Returns
    -------
    (value, count) or None
        The smallest or largest finite value when at least :data:`FILL_SHARE` of the finite
        cells hold it and it lies more than :data:`FILL_GAP` times the range of the other values
        away from them; else None.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2:
        return None
    lo, hi = finite.min(), finite.max()
    if lo == hi:
        return None
    for value in (lo, hi):
        count = int(np.count_nonzero(finite == value))
        if count < max(2, FILL_SHARE * finite.size) or count > finite.size - 2:
            continue
        if value == lo:  # the other values' range, without copying them
            rest_lo, rest_hi = np.min(finite, where=finite > lo, initial=np.inf), hi
        else:
            rest_lo, rest_hi = lo, np.max(finite, where=finite < hi, initial=-np.inf)
        spread = float(rest_hi - rest_lo)
        gap = float(min(abs(value - rest_lo), abs(value - rest_hi)))
        if spread > 0 and gap > FILL_GAP * spread:
            return float(value), count
    return None


def check_fill_values(values: np.ndarray, label: str) -> None:
    """Raise :class:`~xlatent.exceptions.FillValueError` when ``values`` hold an undeclared fill
    value (see :func:`find_fill_value`); the message names it and how to declare it."""
    found = find_fill_value(values)
    if found is None:
        return
    value, count = found
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite) & (finite != value)]
    share = count / (count + finite.size)
    raise FillValueError(
        f"{label} has {count} cells ({share:.1%}) at {value:.7g}, far outside the range of its other values "
        f"({finite.min():.4g} to {finite.max():.4g}): an undeclared fill (no-data) value, which would be taken "
        f"for data and give a wrong motion. Declare it, e.g. da.attrs['_FillValue'] = {value:.7g} or "
        f"da.rio.write_nodata({value:.7g}), or mask it: da = da.where(da != {value:.7g}). If these cells are real "
        f"data, say that the input has no fill value: da.attrs['_FillValue'] = np.nan."
    )


# ---------------------------------------------------------------------------------------------
# Output size

# The frames are built in float32, scaled back to the data's units and masked: about this many
# copies of the output are alive at once in memory.
WORKING_COPIES = 3


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (psutil when installed, else
    ``/proc/meminfo``'s ``MemAvailable``, else ``os.sysconf``); None when none of these tells."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"  # pragma: no cover


def check_output_size(source: Any, steps: int) -> None:
    """Refuse, before any work, ``steps + 1`` frames of ``source`` that cannot fit in memory.

    In memory, the frames of the whole image are held at once; for a dask-backed ``source`` the
    output goes to disk chunk by chunk, so one chunk's frames must fit. Raises
    :class:`~xlatent.exceptions.InputError` with the size when :data:`WORKING_COPIES` times
    that exceeds :func:`available_memory`.
    """
    if not isinstance(source, xr.DataArray):
        return  # not an input at all: geo.check_input names it
    cells = _cells_per_task(source)
    frames = (int(steps) + 1) * cells * 4  # float32
    need = WORKING_COPIES * frames
    free = available_memory()
    if free is None or need <= free:
        return
    lazy = source.chunks is not None
    where = "each dask chunk's frames" if lazy else "the frames"
    fix = ("Use fewer steps, or smaller chunks (da.chunk(...))" if lazy else
           "Use fewer steps, a smaller area, or open the inputs lazily with chunks= and write with "
           "xlatent.save_result(..., 'out.zarr')")
    raise InputError(
        f"steps={steps} asks for {int(steps) + 1} frames: {where} take {_human(frames)} and the computation "
        f"about {_human(need)}, more than the {_human(free)} of memory available. {fix}."
    )


def _cells_per_task(source: xr.DataArray) -> int:
    if source.chunks is None:
        return int(source.size)
    return int(np.prod([max(sizes) for sizes in source.chunks]))


# ---------------------------------------------------------------------------------------------
# Lazy and in-memory inputs together


def same_backing(first: Any, last: Any) -> tuple[Any, Any]:
    """``first`` and ``last``, the in-memory one chunked like the dask-backed one when only one of
    them is lazy (a user opening one file with ``chunks=``), so that both run on one backend."""
    lazy = [isinstance(x, xr.DataArray) and x.chunks is not None for x in (first, last)]
    if lazy[0] == lazy[1] or not all(isinstance(x, xr.DataArray) for x in (first, last)):
        return first, last
    model, other = (first, last) if lazy[0] else (last, first)
    if set(other.dims) != set(model.dims):
        return first, last  # the grid check names the difference
    sizes: dict[Hashable, Any] = dict(zip(model.dims, model.chunks))
    if any(other.sizes[d] != sum(sizes[d]) for d in model.dims):
        return first, last
    other = other.chunk({d: sizes[d] for d in other.dims})
    return (model, other) if lazy[0] else (other, model)


__all__ = ["FILL_GAP", "FILL_SHARE", "available_memory", "check_fill_values", "check_output_size",
           "find_fill_value", "same_backing"]
