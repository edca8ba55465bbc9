"""Where the work runs, chosen once per pair of inputs: in memory (numpy) or chunk by chunk (dask).

Both backends have one interface, used by :mod:`xlatent.api` without asking which it has:

- ``prepare(first, last, x_dim, y_dim, mean, std)``: validate and normalise the pair, a
  :class:`~xlatent.pair.Pair`;
- ``method(name, spec)``: the function that runs a registered method on this backend's arrays;
- ``fit(core, pair, patch, stride, seed, progress)``: train the latent model on the pair;
- ``fields(core, pair, progress)``: the model's stage fields ``(N, 2, H, W)``;
- ``frames(core, pair, fractions, exact_endpoints, blend, progress, fields)``: frames
  ``(K, C, H, W)`` and the fields they were rendered with.

:func:`for_inputs` picks one: dask-backed inputs (opened with ``chunks=``) go to the dask
backend when the method can run lazily (``lazy`` in its registration), else they are loaded,
with a warning, and run in memory. dask itself is imported only when a dask backend is made.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from xlatent import geo, input_checks
from xlatent.exceptions import InputError
from xlatent.methods.base import MethodFn, MethodSpec
from xlatent.pair import Pair, check_common, check_size, usable_spread

__all__ = ["InMemory", "for_inputs", "is_lazy", "prepare"]


def is_lazy(obj: Any) -> bool:
    """Whether ``obj`` is a dask-backed DataArray."""
    return isinstance(obj, xr.DataArray) and obj.chunks is not None


class InMemory:
    """Numpy arrays, the whole scene at once (tiled inside the model)."""

    name = "memory"

    def prepare(self, first, last, x_dim=None, y_dim=None, mean=None, std=None) -> Pair:
        """Validate ``first``/``last`` and normalise them (with ``mean``/``std`` when given)."""
        geo.check_input(first, "first")
        geo.check_input(last, "last")
        grid = geo.describe(first, x_dim=x_dim, y_dim=y_dim)
        geo.check_pair(first, last, grid)
        a = geo.to_array(first, grid, "first")
        b = geo.to_array(last, grid, "last")
        check_size(a.shape)
        va, vb = np.isfinite(a).all(axis=0), np.isfinite(b).all(axis=0)
        check_common(bool((va & vb).any()))
        if mean is None:
            mean, std = _moments(a, b)
        mean = np.asarray(mean, dtype=np.float32)
        std = np.asarray(std, dtype=np.float32)
        return Pair(first, grid, geo.scalar_time(last), _normalise(a, va, mean, std, "first"),
                    _normalise(b, vb, mean, std, "last"), va, vb, mean, std)

    def method(self, name: str, spec: MethodSpec) -> MethodFn:
        """The registered function."""
        return spec.fn

    def fit(self, core, pair: Pair, patch, stride, seed=0, progress=True):
        """Train ``core`` on the pair; its history."""
        return core.fit(pair.first, pair.last, pair.mask, patch, stride, seed=seed, progress=progress)

    def fields(self, core, pair: Pair, progress=True) -> np.ndarray:
        """Stage fields ``(N, 2, H, W)`` of ``core`` on the pair."""
        return core.fields(pair.first, pair.last, progress)

    def motion(self, core, pair: Pair, progress=True) -> tuple[np.ndarray, dict, dict]:
        """Stage fields of ``core`` on the pair with the choice between trained and starting motion
        applied (:meth:`xlatent.engine.LatentCore.motion`), what was decided, and the per-cell
        maps (``confidence``)."""
        return core.motion(pair.first, pair.last, pair.mask, progress)

    def frames(self, core, pair: Pair, fractions, exact_endpoints=True, blend="transport", progress=True,
               fields=None) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(K, C, H, W)`` at ``fractions``, and ``fields`` (computed when not given)."""
        fields = self.fields(core, pair, progress) if fields is None else fields
        return core.frames(pair.first, pair.last, fields, fractions, exact_endpoints, progress, blend), fields


class Dask:
    """Dask arrays, chunk by chunk, never loaded whole (:mod:`xlatent.chunked`)."""

    name = "dask"

    def __init__(self) -> None:
        from xlatent import chunked  # dask: imported when dask-backed inputs come

        self._chunked = chunked

    def prepare(self, first, last, x_dim=None, y_dim=None, mean=None, std=None) -> Pair:
        """Validate and normalise lazily, statistics in one pass (:func:`xlatent.chunked.prepare`)."""
        return self._chunked.prepare(first, last, x_dim, y_dim, mean, std)

    def method(self, name: str, spec: MethodSpec) -> MethodFn:
        """The method's chunked counterpart named in its registration, or the function itself (it
        runs on dask arrays)."""
        return spec.lazy_fn()

    def fit(self, core, pair: Pair, patch, stride, seed=0, progress=True):
        """Train ``core`` on windows sampled from the pair; its history."""
        return self._chunked.fit_core(core, pair.first, pair.last, pair.mask, patch, stride, seed=seed, progress=progress)

    def fields(self, core, pair: Pair, progress=True):
        """Stage fields of ``core``, lazily, chunk by chunk."""
        return self._chunked.fields(core, pair.first, pair.last)

    def motion(self, core, pair: Pair, progress=True) -> tuple[Any, dict, dict]:
        """Stage fields of ``core``, lazily, chunk by chunk: the trained motion of each chunk (the
        choice between it and the starting field and the confidence map are made in memory only)."""
        return self.fields(core, pair, progress), {}, {}

    def frames(self, core, pair: Pair, fractions, exact_endpoints=True, blend="transport", progress=True,
               fields=None):
        """Frames and the stage fields, lazily, from one task per chunk (see :func:`xlatent.chunked.frames`)."""
        return self._chunked.frames(core, pair.first, pair.last, fractions, exact_endpoints, blend, flow=fields)


def for_inputs(first, last, method: str | None = None, spec: MethodSpec | None = None) -> tuple[Any, Any, Any]:
    """The backend for these inputs, and the inputs it runs on.

    Parameters
    ----------
    first, last : xarray.DataArray
        The inputs, in memory or dask-backed.
    method : str, optional
        The method's name, for the warning.
    spec : MethodSpec, optional
        The method's registration; None for the latent model (:func:`xlatent.fit`), which runs
        on both backends.

    Returns
    -------
    backend : InMemory or Dask
    first, last : xarray.DataArray
        As given, or loaded into memory when dask-backed but the method has no lazy path
        (with a ``UserWarning``).
    """
    first, last = input_checks.same_backing(first, last)  # one lazy, one not: both lazy
    if not (is_lazy(first) or is_lazy(last)):
        return InMemory(), first, last
    if spec is None or spec.lazy:
        return Dask(), first, last
    warnings.warn(
        f"method={method!r} has no chunked (dask) path (it solves one problem over the whole scene): "
        f"the inputs are loaded into memory. Use method='latent', 'advection' or 'flow' for scenes "
        f"larger than memory, or load the inputs yourself to silence this warning.",
        UserWarning,
        stacklevel=3,
    )
    return InMemory(), first.compute(), last.compute()


def prepare(first, last, x_dim=None, y_dim=None, mean=None, std=None) -> Pair:
    """The pair on the backend its inputs call for (see :func:`for_inputs`)."""
    backend, first, last = for_inputs(first, last)
    return backend.prepare(first, last, x_dim, y_dim, mean, std)


def _moments(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over the finite cells of both (float64, so that
    no square overflows); a spread of zero, or too small for float32, becomes 1."""
    both = np.concatenate((a, b), axis=2).astype(np.float64)
    return np.nanmean(both, axis=(1, 2)), usable_spread(np.nanstd(both, axis=(1, 2)))



def _normalise(x: np.ndarray, valid: np.ndarray, mean: np.ndarray, std: np.ndarray, label: str) -> np.ndarray:
    """``(x - mean) / std`` in float64, 0 where not ``valid``, as float32: NaN-free and finite,
    which the methods (and torch's ``grid_sample``) rely on."""
    with np.errstate(invalid="ignore", over="ignore"):
        z = (np.asarray(x, dtype=np.float64) - mean[:, None, None]) / std[:, None, None]
        z = np.where(valid[None], z, 0.0).astype(np.float32)
    if not np.isfinite(z).all():
        raise InputError(
            f"{label} has values too far from the model's mean ({mean.tolist()}) and spread "
            f"({std.tolist()}) to normalise in float32: apply the model to data of the kind it was fitted on."
        )
    return z
