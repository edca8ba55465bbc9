"""The two validated images a method runs on (:class:`Pair`), and the one way to make them,
numpy or dask alike (:func:`prepare`): the checks, the statistics and the normalisation."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xlatent import geo
from xlatent.exceptions import InputError

MIN_SIZE = 16  # cells a side, at least: the U-Nets' pooling needs them
FILL_SAMPLE = 2**20  # cells of a lazy input sampled, at most, for the undeclared-fill-value check


@dataclass
class Pair:
    """Two validated images, normalised, with their masks and geo context.

    ``first``/``last`` are ``(C, H, W)`` float32 and ``valid_first``/``valid_last`` ``(H, W)``
    bool, numpy arrays in memory or dask arrays (:mod:`xlatent.chunked`); ``source`` is the input
    whose coords and attrs the outputs take. ``value_range`` (per channel, original units) is
    given by the dask backend, which measures it in its one statistics pass, and computed on
    first use otherwise.
    """

    source: xr.DataArray
    grid: geo.Grid
    t_last: Any
    first: Any
    last: Any
    valid_first: Any
    valid_last: Any
    mean: np.ndarray
    std: np.ndarray
    measured_range: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def mask(self) -> Any:
        """Cells valid in both images."""
        return self.valid_first & self.valid_last

    @property
    def value_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel min and max over the valid cells of both inputs (original units)."""
        if self.measured_range is not None:
            return self.measured_range
        c = self.first.shape[0]
        vals = [np.concatenate((self.first[k][self.valid_first], self.last[k][self.valid_last])) for k in range(c)]
        kind = np.float64 if self.source.dtype == np.float64 else np.float32  # as the frames are scaled back
        std, mean = np.asarray(self.std, kind), np.asarray(self.mean, kind)
        lo = np.array([v.min() for v in vals], dtype=kind) * std + mean
        hi = np.array([v.max() for v in vals], dtype=kind) * std + mean
        return lo, hi


def check_size(shape: tuple[int, ...]) -> None:
    """Refuse an image smaller than :data:`MIN_SIZE` cells a side (``shape``: ``(..., H, W)``)."""
    if min(shape[-2:]) < MIN_SIZE:
        raise InputError(
            f"Image of {shape[-2]} x {shape[-1]} cells is too small: xlatent needs at least "
            f"{MIN_SIZE} x {MIN_SIZE}. Select a larger area."
        )


def check_common(any_common: bool) -> None:
    """Refuse a pair with no cell valid in both images."""
    if not any_common:
        raise InputError(
            "The two images have no valid cell in common (NaN where the other has data): "
            "nothing to learn the motion from. Check that they cover the same area."
        )


def usable_spread(std: np.ndarray) -> np.ndarray:
    """The per-channel spread to normalise by, on both backends: 1 where it is zero, not finite or
    too small for float32 (a constant channel keeps its values, shifted by the mean)."""
    std = np.asarray(std, dtype=np.float64)
    ok = np.isfinite(std) & (std > np.finfo(np.float32).tiny)
    return np.where(ok, std, 1.0)


def is_lazy(obj: Any) -> bool:
    """Whether ``obj`` is a dask-backed DataArray."""
    return isinstance(obj, xr.DataArray) and obj.chunks is not None


def prepare(first: xr.DataArray, last: xr.DataArray, x_dim: str | None = None, y_dim: str | None = None,
            mean: Any = None, std: Any = None) -> Pair:
    """Validate ``first``/``last`` and normalise them: the :class:`Pair` a method runs on.

    One path for numpy and dask inputs, with one set of rules; on dask (either input
    dask-backed; the other is then chunked alike) every statistic comes from one pass of dask
    reductions computed together, and the normalised arrays stay lazy.

    - geo checks (:func:`xlatent.geo.check_input`, :func:`~xlatent.geo.check_pair`), then the
      size (:func:`check_size`);
    - values decoded (:func:`xlatent.geo.decoded_data`: packing undone, declared no-data as NaN),
      in float64: finite values beyond float32's range stay finite, to be named;
    - per input: ``inf`` taken as missing with a warning, magnitudes beyond
      :data:`xlatent.geo.MAX_MAGNITUDE` refused, undeclared fill values refused (judged on every
      cell in memory, on a regular sample of at most :data:`FILL_SAMPLE` cells of a lazy input:
      never a whole scene in one task), at least one finite value;
    - a valid cell in common (:func:`check_common`);
    - per-channel mean and spread over the finite cells of both (float64; a spread of zero, or
      too small for float32, becomes 1: :func:`usable_spread`), unless ``mean``/``std`` are given;
    - ``(x - mean) / std`` in float64, 0 where a cell is missing, as float32; with given moments,
      a value that normalises to a non-finite number is refused (with the data's own moments
      none can: no value lies more than sqrt(cells) spreads from the mean).

    The value range the frames are clipped to (:attr:`Pair.value_range`) is measured in the same
    pass on dask; in memory it is computed from the normalised arrays on first use.

    Parameters
    ----------
    first, last : xarray.DataArray
        The two images, in memory or dask-backed.
    x_dim, y_dim : str, optional
        The spatial dims, when they cannot be guessed (:func:`xlatent.geo.describe`).
    mean, std : array-like, optional
        Per-channel moments to normalise with (a fitted model's); measured when not given.

    Returns
    -------
    Pair
        Normalised float32 ``(C, H, W)`` arrays (numpy, or dask when an input is) and their masks.
    """
    geo.check_input(first, "first")
    geo.check_input(last, "last")
    grid = geo.describe(first, x_dim=x_dim, y_dim=y_dim)
    geo.check_pair(first, last, grid)
    lazy = is_lazy(first) or is_lazy(last)
    a = _raster(first, grid, None) if is_lazy(first) or not lazy else None
    b = _raster(last, grid, a)
    a = _raster(first, grid, b) if a is None else a
    check_size(a.shape)
    if mean is not None:
        mean, std = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
    stats, valid, normalised = _statistics(a, b, lazy, mean, std)
    for label, key, source in (("first", "a", first), ("last", "b", last)):
        geo.warn_infinite(label, int(stats[f"inf_{key}"]), stacklevel=4)
        geo.refuse_huge(label, int(stats[f"huge_{key}"]), np.unique([stats[f"huge_lo_{key}"], stats[f"huge_hi_{key}"]]))
        geo.check_fills(np.where(np.isinf(stats[f"sample_{key}"]), np.nan, stats[f"sample_{key}"]), label, source)
        if not stats[f"any_{key}"]:
            raise InputError(
                f"{label} has no finite value (all NaN or inf): nothing to interpolate. "
                "Check the variable, the nodata value and the area you selected."
            )
    check_common(bool(stats["common"]))
    if mean is None:
        mean = np.asarray(stats["mean"], dtype=np.float32)
        std = np.asarray(usable_spread(stats["std"]), dtype=np.float32)
        normalised = {key: _normalised(x, valid[key], mean, std) for key, x in (("a", a), ("b", b))}
    for label, key in (("first", "a"), ("last", "b")):
        if stats.get(f"unfit_{key}") if lazy else not np.isfinite(normalised[key]).all():
            raise InputError(
                f"{label} has values too far from the model's mean ({mean.tolist()}) and spread "
                f"({std.tolist()}) to normalise in float32: apply the model to data of the kind it was fitted on."
            )
    measured = (np.fmin(stats["lo_a"], stats["lo_b"]), np.fmax(stats["hi_a"], stats["hi_b"])) if lazy else None
    source = first if is_lazy(first) or not lazy else last  # the lazy one gives the outputs' chunks
    return Pair(source, grid, geo.scalar_time(last), normalised["a"], normalised["b"], valid["a"], valid["b"],
                mean, std, measured)


def _statistics(a: Any, b: Any, lazy: bool, mean: np.ndarray | None, std: np.ndarray | None) -> tuple[dict, dict, dict]:
    """What :func:`prepare` checks and normalises with, per input (``a``: first, ``b``: last):
    counts of ``inf`` and of huge values, the extremes of these, a sample for the fill check,
    whether any value is finite, the value range (dask only) and, with given moments, whether
    every value normalises finitely (``unfit``); for both, a valid cell in common and, unless
    given, the moments. On dask, computed together in one pass. Also the validity masks and,
    with given moments, the normalised arrays (numpy or lazy)."""
    if lazy:
        import dask
        import dask.array as xp
    else:
        xp = np
    step = max(2, int(np.ceil(np.sqrt(a.shape[-2] * a.shape[-1] / FILL_SAMPLE)))) if lazy else 1
    wanted, valid, normalised = {}, {}, {}
    with warnings.catch_warnings():  # all-NaN slices (numpy meets them here): the caller checks
        warnings.simplefilter("ignore", RuntimeWarning)
        for key, x in (("a", a), ("b", b)):
            number = xp.isfinite(x)
            huge = number & (abs(x) > geo.MAX_MAGNITUDE)
            finite = number & ~huge
            valid[key] = finite.all(axis=0)
            huge_values = xp.where(huge, x, np.nan)
            wanted.update({
                f"inf_{key}": xp.isinf(x).sum(), f"huge_{key}": huge.sum(), f"any_{key}": finite.any(),
                f"huge_lo_{key}": xp.nanmin(huge_values), f"huge_hi_{key}": xp.nanmax(huge_values),
                f"sample_{key}": x[:, ::step, ::step],
            })
            if lazy:  # the range the frames are clipped to (in memory: Pair.value_range, on first use)
                inside = xp.where(valid[key][None], x, np.nan)
                wanted[f"lo_{key}"], wanted[f"hi_{key}"] = xp.nanmin(inside, axis=(1, 2)), xp.nanmax(inside, axis=(1, 2))
            if mean is not None:
                normalised[key] = _normalised(x, valid[key], mean, std)
                if lazy:  # in the one pass (in memory the caller looks at the arrays)
                    wanted[f"unfit_{key}"] = ~xp.isfinite(normalised[key]).all()
        wanted["common"] = (valid["a"] & valid["b"]).any()
        if mean is None:
            both = xp.concatenate((a, b), axis=2)
            both = xp.where(xp.isfinite(both), both, np.nan).astype(np.float64)
            wanted["mean"], wanted["std"] = xp.nanmean(both, axis=(1, 2)), xp.nanstd(both, axis=(1, 2))
        stats = dict(zip(wanted, dask.compute(*wanted.values()))) if lazy else wanted
    return stats, valid, normalised


def _raster(obj: xr.DataArray, grid: geo.Grid, like: Any = None) -> Any:
    """``obj`` as a float64 ``(channel, row, column)`` array, decoded (:func:`xlatent.geo.decoded_data`):
    numpy for an in-memory input, dask for a lazy one (the channels in one chunk, the chunks of
    ``like`` when given); an in-memory input beside a lazy ``like`` is chunked as it."""
    order = ([grid.channel_dim] if grid.channel_dim is not None else []) + [grid.y_dim, grid.x_dim]
    obj = obj.transpose(*order)
    lazy = is_lazy(obj) or like is not None and not isinstance(like, np.ndarray)
    if not lazy:
        values = np.array(geo.decoded_data(obj, np.asarray(obj.values)), dtype=np.float64, copy=True)
        return values[None] if values.ndim == 2 else values
    import dask.array as dask_array

    arr = obj.data
    if not isinstance(arr, dask_array.Array):  # one input lazy, the other in memory
        arr = dask_array.from_array(np.asarray(arr), chunks=like.chunks if like is not None else "auto")
    arr = geo.decoded_data(obj, arr)
    if arr.ndim == 2:
        arr = arr[None]
    arr = arr.rechunk({0: -1})
    return arr if like is None else arr.rechunk(like.chunks)


def _normalised(x: Any, valid: Any, mean: np.ndarray, std: np.ndarray) -> Any:
    """``(x - mean) / std`` in float64, 0 where not ``valid``, as float32 (numpy or dask): NaN-free,
    which the methods (and torch's ``grid_sample``) rely on."""
    with np.errstate(invalid="ignore", over="ignore"):
        z = (x - mean[:, None, None]) / std[:, None, None]
        return np.where(valid[None], z, 0.0).astype(np.float32)
