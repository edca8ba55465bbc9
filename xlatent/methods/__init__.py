"""Interpolation methods behind one contract, chosen by name with ``method=``.

A method takes the two images as normalised, NaN-free ``(C, H, W)`` float32 arrays plus the
validity mask and the wanted fractions, and returns frames ``(K, C, H, W)`` and, when it has
one, the motion as per-stage fields ``(N, 2, H, W)`` in grid cells per unit of
``interp_fraction`` (index space: column, row). Geo handling stays in :mod:`xlatent.geo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from xlatent.exceptions import UnknownMethodError


@dataclass
class MethodResult:
    """What a method returns (see the module docstring for shapes and units)."""

    frames: np.ndarray
    fields: np.ndarray | None
    info: dict[str, Any] = field(default_factory=dict)
    fitted: Any = None


MethodFn = Callable[..., MethodResult]
_REGISTRY: dict[str, MethodFn] = {}


def register(name: str) -> Callable[[MethodFn], MethodFn]:
    """Decorator adding a method to the registry under ``name``."""

    def wrap(fn: MethodFn) -> MethodFn:
        _REGISTRY[name] = fn
        return fn

    return wrap


def get(name: str) -> MethodFn:
    """The method registered as ``name``; a clear error listing the known names otherwise."""
    _load_builtins()
    if name not in _REGISTRY:
        raise UnknownMethodError(f"Unknown method {name!r}. Available: {', '.join(available())}.")
    return _REGISTRY[name]


def available() -> list[str]:
    """Names of the registered methods."""
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    from xlatent.methods import flow, latent, linear  # noqa: F401  (register on import)
