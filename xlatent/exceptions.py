"""Exceptions raised by xlatent.

Every error derives from :class:`XlatentError`, and from the matching built-in
(``ValueError`` or ``TypeError``) so that generic ``except ValueError`` code keeps working.
Messages say what is wrong and how to fix it. Warnings are named ``UserWarning`` subclasses, so
that one kind can be silenced alone: ``warnings.filterwarnings("ignore", category=...)``.
"""

from __future__ import annotations


class XlatentError(Exception):
    """Base class of every error raised by xlatent."""


class InputError(XlatentError, ValueError):
    """An input array cannot be used as it is (NaN only, too small, bad ``steps``...)."""


class FillValueError(InputError):
    """An input holds an undeclared fill (no-data) value: a value repeated over many cells, far
    outside the range of the others (-9999, 1e4, -3.4e38...). Declare it (``_FillValue``) or mask
    it (``da.where``)."""


class InputTypeError(XlatentError, TypeError):
    """An input has the wrong type or dtype (not a DataArray, not numeric...)."""


class GridMismatchError(XlatentError, ValueError):
    """The two inputs are not on the same grid (shape, dims, coordinates or CRS)."""


class SpatialDimsError(XlatentError, ValueError):
    """The spatial dimensions could not be found or are ambiguous."""


class TimeOrderError(XlatentError, ValueError):
    """The ``time`` of the last image is not after the ``time`` of the first."""


class ModelFileError(XlatentError, OSError):
    """A saved model cannot be read (missing file, bad or foreign format)."""


class UnknownMethodError(XlatentError, ValueError):
    """``method=`` names no registered interpolation method."""


class ConfigError(XlatentError, ValueError):
    """An option is unknown, does not apply to the method, or has a bad value (``blend``,
    ``inference_dtype``, a :class:`xlatent.LatentConfig` field...)."""


class DeviceError(XlatentError, ValueError):
    """The requested torch device is not a device name, or is not available here."""


class XlatentWarning(UserWarning):
    """Base class of the warnings xlatent issues about the data; silence them all with
    ``warnings.filterwarnings("ignore", category=xlatent.exceptions.XlatentWarning)``."""


class TimeNotDateWarning(XlatentWarning):
    """An input's ``time`` coordinate is not a date (a number without CF ``units``, or text that
    is not an ISO 8601 date): frames get fractions and the motion is in grid cells per unit
    ``interp_fraction``."""


class IgnoredOptionWarning(XlatentWarning):
    """An option was given that the chosen method does not use (``device=`` for a CPU method)."""


class UnknownKindError(XlatentError, ValueError):
    """``kind=`` names no known moving medium (``sea_ice``, ``sea_water``...)."""


class InputFileError(XlatentError, OSError):
    """An input file is missing or cannot be read as a raster."""


class UnknownVariableError(XlatentError, ValueError):
    """The requested variable is not in the file (or the file holds several and none was named)."""


class CRSError(XlatentError, ValueError):
    """The operation needs a coordinate reference system the data does not have."""


class CRSNotFoundWarning(XlatentWarning):
    """An input names a grid-mapping variable that is not attached to it, so its CRS is unknown
    and distances and speeds are in grid cells."""


class NoCRSWarning(XlatentWarning):
    """The inputs have no coordinate reference system: the outputs carry none, and the motion is
    in the units the coordinates allow (``m s-1`` for metre or degree coordinates with times,
    else grid cells). Write one with ``da.rio.write_crs(...)``."""


class NonFiniteWarning(XlatentWarning):
    """An input holds ``inf`` cells: they are treated as missing, like NaN."""


class SpeedWarning(XlatentWarning):
    """The motion converted to ``m s-1`` is faster than anything in the atmosphere or ocean:
    the time coords or the grid spacing are likely wrong."""
class IrregularTimeError(InputError):
    """A series to forecast from is not at one regular time step (or has no ``time`` dim)."""


class SeriesTooShortError(InputError):
    """A series to forecast from has fewer than ``context + 1`` frames."""


class SeriesError(InputError):
    """A series cannot be used as it is: no dated ``time`` dim, times not strictly increasing,
    fewer than two frames."""


class OutsideSpanError(InputError):
    """Times were requested outside the span of the series (interpolation does not extrapolate)."""


class NotARateError(InputError):
    """An accumulation was asked of a variable whose ``units`` are not a rate (``mm h-1``...)."""


class GapWarning(XlatentWarning):
    """A series has gaps longer than ``max_gap``: the frames and motion inside them are NaN."""
class UnitsMismatchError(InputError):
    """A fitted archive model is applied to data in other units than it was trained on."""


class ArchiveMismatchWarning(XlatentWarning):
    """A fitted archive model is applied on another grid spacing or time step than it was
    trained on: its network is gated off where the pair falls outside what it has seen."""
