"""Where the work runs, chosen once per pair of inputs: in memory (numpy) or chunk by chunk (dask).

Both backends have one interface, used by :mod:`xlatent.api` without asking which it has:

- ``prepare(first, last, x_dim, y_dim, mean, std)``: validate and normalise the pair, a
  :class:`~xlatent.pair.Pair`: one function for both (:func:`xlatent.pair.prepare`);
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

from xlatent import input_checks
from xlatent.methods.base import MethodFn, MethodSpec
from xlatent.pair import Pair, is_lazy
from xlatent.pair import prepare as prepare_pair

__all__ = ["InMemory", "for_inputs", "is_lazy", "prepare"]


class _Backend:
    """What both backends share: the one way in (:func:`xlatent.pair.prepare`)."""

    name = ""
    # ``prepare(first, last, x_dim, y_dim, mean, std)``: validate and normalise the pair, numpy
    # arrays in memory, dask arrays (statistics in one pass) when an input is dask-backed. The
    # function itself, not a wrapper: the warnings it gives point at the caller's line.
    prepare = staticmethod(prepare_pair)


class InMemory(_Backend):
    """Numpy arrays, the whole scene at once (tiled inside the model)."""

    name = "memory"

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


class Dask(_Backend):
    """Dask arrays, chunk by chunk, never loaded whole (:mod:`xlatent.chunked`)."""

    name = "dask"

    def __init__(self) -> None:
        from xlatent import chunked  # dask: imported when dask-backed inputs come

        self._chunked = chunked

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

