"""The registry of motion estimators (:func:`register`, :func:`get_method`, :func:`available`)
and the check of the options that name one; the built-in estimators register on import of
:mod:`xlatent.motion`, which imports :mod:`xlatent.motion.estimators`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from xlatent.exceptions import ConfigError

TRANSFORMS = ("auto", "log", "none")

EstimatorFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Estimator:
    """A registered motion estimator: its function and the keyword options it accepts."""

    fn: EstimatorFn
    options: tuple[str, ...] = ()


_REGISTRY: dict[str, Estimator] = {}


def register(name: str, options: tuple[str, ...] = ()) -> Callable[[EstimatorFn], EstimatorFn]:
    """Decorator adding a motion estimator under ``name``.

    Parameters
    ----------
    name : str
        The name users pass as ``motion=`` (or ``flow_prior=``).
    options : tuple of str
        The keywords of :func:`~xlatent.motion.estimators.estimate` the estimator takes
        (others are not passed to it).

    Returns
    -------
    callable
        The decorator; it returns the function unchanged.
    """

    def wrap(fn: EstimatorFn) -> EstimatorFn:
        _REGISTRY[name] = Estimator(fn, tuple(options))
        return fn

    return wrap


def available() -> tuple[str, ...]:
    """Names of the registered estimators, in registration order."""
    return tuple(_REGISTRY)


def get_method(name: str) -> EstimatorFn:
    """The estimator registered as ``name``; a :class:`~xlatent.exceptions.ConfigError` listing
    the known names otherwise."""
    return spec(name).fn


def spec(name: str, what: str = "motion") -> Estimator:
    """The registered :class:`Estimator` ``name`` (``what`` names the option in the error)."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ConfigError(f"Unknown {what} {name!r}: use one of {', '.join(map(repr, available()))}.")
    return _REGISTRY[name]


def check_options(estimator: str, transform: str, what: str = "motion") -> None:
    """Raise :class:`~xlatent.exceptions.ConfigError` for an unknown estimator or transform.

    Parameters
    ----------
    estimator : str
        One of :func:`available`.
    transform : str
        One of :data:`TRANSFORMS`.
    what : str
        The option's name in the message (``"motion"``, ``"flow_prior"``...).
    """
    spec(estimator, what)
    if transform not in TRANSFORMS:
        raise ConfigError(f"Unknown motion_transform {transform!r}: use one of {', '.join(map(repr, TRANSFORMS))}.")
