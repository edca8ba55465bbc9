"""Interpolation methods behind one contract, chosen by name with ``method=``.

A method takes the two images as normalised, NaN-free ``(C, H, W)`` float32 arrays plus the
validity mask, the wanted fractions and the per-channel ``mean``/``std`` that undo the
normalisation (keywords), and returns frames ``(K, C, H, W)`` and, when it has
one, the motion as per-stage fields ``(N, 2, H, W)`` in grid cells per unit of
``interp_fraction`` (index space: column, row), with per-cell maps ``(H, W)`` such as the
motion's ``confidence`` (``maps``). Geo handling stays in :mod:`xlatent.geo`.

This module holds that contract and the registry (:func:`register`, :func:`spec`); the
built-in methods register on import of :mod:`xlatent.methods`, which imports them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xlatent.exceptions import UnknownMethodError
from xlatent.normalise import physical  # noqa: F401  (the methods read it from here)


@dataclass
class MethodResult:
    """What a method returns (see the module docstring for shapes and units)."""

    frames: np.ndarray
    fields: np.ndarray | None
    info: dict[str, Any] = field(default_factory=dict)
    fitted: Any = None
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-cell ``(H, W)`` maps that go with the motion, by output variable name (``confidence``):
    the xarray edge turns each into a CF variable of the flow Dataset (:data:`xlatent.cf.MAPS`
    describes them)."""


MethodFn = Callable[..., MethodResult]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its function, its own options (with defaults), whether it is
    trained with a :class:`~xlatent.LatentConfig` (whose fields are then options too), whether
    it runs on the torch ``device=`` it is given (else on the CPU), and whether it runs on
    dask-backed inputs without loading them (``lazy``): chunk by chunk by the function that
    ``chunked`` names (``"module:function"``, see :mod:`xlatent.chunked`), or as it is on dask
    arrays (``chunked`` None)."""

    fn: MethodFn
    options: dict[str, Any]
    trained: bool
    uses_device: bool = False
    lazy: bool = False
    chunked: str | None = None

    def lazy_fn(self) -> MethodFn:
        """The function that runs the method on dask-backed inputs: its chunk-by-chunk counterpart,
        imported on first use (``import xlatent`` loads no dask), or the method itself."""
        if self.chunked is None:
            return self.fn
        module, name = self.chunked.split(":")
        return getattr(importlib.import_module(module), name)


_REGISTRY: dict[str, MethodSpec] = {}


def register(name: str, options: dict[str, Any] | None = None, trained: bool = False,
             uses_device: bool | None = None, lazy: bool | str = False) -> Callable[[MethodFn], MethodFn]:
    """Decorator adding a method to the registry under ``name``.

    Parameters
    ----------
    name : str
        The name users pass as ``method=``.
    options : dict, optional
        The keywords the method accepts besides the common ones, with their defaults.
    trained : bool
        The method also takes every :class:`~xlatent.LatentConfig` field.
    uses_device : bool, optional
        The method runs on the torch ``device=`` it is given (default: ``trained``).
    lazy : bool or str
        The method runs on dask-backed inputs without loading them: ``True`` as it is on dask
        arrays, or ``"module:function"``, its chunk-by-chunk counterpart (e.g.
        ``"xlatent.chunked:flow"``), kept with the method here as xESMF keeps a regridder with
        its blockwise function. Others load lazy inputs, with a warning.

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.
    """

    def wrap(fn: MethodFn) -> MethodFn:
        _REGISTRY[name] = MethodSpec(fn, dict(options or {}), trained, trained if uses_device is None else uses_device,
                                     bool(lazy), lazy if isinstance(lazy, str) else None)
        return fn

    return wrap


def spec(name: str) -> MethodSpec:
    """The method registered as ``name``; a clear error listing the known names otherwise."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise UnknownMethodError(f"Unknown method {name!r}. Available: {', '.join(available())}.")
    return _REGISTRY[name]


def get(name: str) -> MethodFn:
    """The function of the method registered as ``name``."""
    return spec(name).fn


def available() -> list[str]:
    """Names of the registered methods."""
    return sorted(_REGISTRY)
