"""The checks on the arguments of the public functions (:func:`xlatent.interpolate`,
:func:`xlatent.fit`, :class:`xlatent.LatentInterpolator`, the forecast and the archive model),
made before any input is read: steps and fractions, flags, seed, blend, patch sizes, the
method's options and the :class:`~xlatent.config.LatentConfig` fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from xlatent import geo
from xlatent.config import LatentConfig
from xlatent.exceptions import ConfigError, InputError
from xlatent.motion import check_options

BLENDS = ("transport", "symmetric", "residual")


def fractions_of_steps(steps: int) -> np.ndarray:
    """``steps + 1`` fractions from 0 to 1 for ``steps`` intervals, a whole number >= 1."""
    whole = isinstance(steps, (int, np.integer)) or (isinstance(steps, (float, np.floating)) and float(steps).is_integer())
    if isinstance(steps, (bool, np.bool_)) or not whole or steps < 1:
        raise InputError(f"steps must be a whole number >= 1 (intervals between the inputs), got {steps!r}.")
    return np.linspace(0.0, 1.0, int(steps) + 1)


def given_fractions(fractions: Any) -> np.ndarray:
    """``fractions=`` of :func:`interpolate`: a non-empty 1-D sequence of numbers in [0, 1]."""
    try:
        values = np.asarray(fractions, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if values.ndim != 1 or values.size == 0 or not np.all((values >= 0) & (values <= 1)):
        raise ConfigError(f"fractions must be a non-empty 1-D sequence of numbers in [0, 1] (0: first, 1: last), "
                          f"got {fractions!r}.")
    return values


def patch_sizes(value, stride, grid: geo.Grid, shape: tuple[int, int], config: LatentConfig):
    """Patch and stride in (rows, columns) from an int, a dim-keyed dict or the config."""

    def per_axis(v, default):
        if v is None:
            return default, default
        if isinstance(v, Mapping):
            unknown = set(v) - {grid.y_dim, grid.x_dim}
            if unknown:
                raise InputError(f"patch/stride keys {sorted(map(str, unknown))} are not spatial dims "
                                 f"({grid.y_dim!r}, {grid.x_dim!r}).")
            return int(v.get(grid.y_dim, default)), int(v.get(grid.x_dim, default))
        return int(v), int(v)

    explicit = value is not None
    patch = per_axis(value, config.patch)
    if explicit and (patch[0] > shape[0] or patch[1] > shape[1]):
        raise InputError(
            f"patch {patch} is larger than the image ({shape[0]} x {shape[1]} cells). "
            "Pass a smaller patch= or select a larger area."
        )
    multiple = config.alignment
    patch = tuple(max(multiple, min(p, s) // multiple * multiple) for p, s in zip(patch, shape))
    return patch, per_axis(stride, config.stride)


def config_with(config: LatentConfig | None, options: Mapping[str, Any]) -> LatentConfig:
    """``config`` (or the default one) with ``options`` (:class:`LatentConfig` fields) replaced, checked."""
    if config is not None and not isinstance(config, LatentConfig):
        raise ConfigError(f"config must be an xlatent.LatentConfig or None, got {type(config).__name__}.")
    base = config or LatentConfig()
    if options:
        LatentConfig.from_dict({**base.to_dict(), **options})  # validates the names
        base = replace(base, **options)
    return base


def method_options(method: str, spec, options: Mapping[str, Any]) -> tuple[dict, dict]:
    """Split ``**options`` into the method's own and :class:`LatentConfig` fields, and check the
    values of the method's own."""
    own = {k: v for k, v in options.items() if k in spec.options}
    rest = {k: v for k, v in options.items() if k not in spec.options}
    if rest and not spec.trained:
        known = ", ".join(sorted(spec.options)) or "none"
        raise ConfigError(f"Option(s) {sorted(rest)} do not apply to method={method!r} (its options: {known}).")
    if "motion" in own or "motion_transform" in own:
        check_options(own.get("motion", "tvl1"), own.get("motion_transform", "auto"))
    grid = own.get("ot_grid")
    if "ot_grid" in own and (isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2):
        raise ConfigError(f"ot_grid must be a whole number >= 2 (cells a side of the OT grid), got {grid!r}.")
    return own, rest


def check_flags(**flags: Any) -> None:
    """Refuse a flag (by name) that is not True or False."""
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"{name} must be True or False, got {value!r}.")


def check_blend(blend: Any) -> None:
    """Refuse a ``blend`` not in :data:`BLENDS`."""
    if blend not in BLENDS:
        raise ConfigError(f"Unknown blend {blend!r}: use one of {', '.join(map(repr, BLENDS))}.")


def check_seed(seed: Any) -> None:
    """Refuse a seed that is not None or a whole number >= 0."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ConfigError(f"seed must be None or a whole number >= 0, got {seed!r}.")


def check_sizes(**sizes: Any) -> None:
    """``patch``/``stride``: None, a whole number >= 1, or such numbers keyed by dim name (the
    names are checked against the dims once the inputs are read)."""
    for name, value in sizes.items():
        values = list(value.values()) if isinstance(value, Mapping) else [value]
        for v in values:
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise ConfigError(f"{name} must be a whole number >= 1 or a dict of them by dim name, got {value!r}.")
