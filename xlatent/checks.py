"""The checks of numeric options shared by the configurations, the methods and the forecast: one
rule and one message for a whole number, one for a real number."""

from __future__ import annotations

from typing import Any

import numpy as np

from xlatent.exceptions import ConfigError


def whole(name: str, value: Any, low: int, *, floats: bool = False, prefix: str = "",
          exc: type[Exception] = ConfigError) -> int:
    """``value`` as an int when it is a whole number >= ``low``; ``exc`` naming ``name`` otherwise.

    Parameters
    ----------
    name : str
        The option's name in the message.
    value : Any
        What the user passed. Booleans are refused.
    low : int
        The least value allowed.
    floats : bool
        Accept a float holding a whole number (``400.0``): the configuration fields do, as read
        from JSON or a command line; the arguments of a call (``horizon=``, ``ot_steps=``) do not.
    prefix : str
        Put before "a whole number" in the message (``"None or "``).
    exc : type
        The exception raised (a :class:`~xlatent.exceptions.XlatentError` subclass).

    Returns
    -------
    int
    """
    kinds = (int, np.integer, float, np.floating) if floats else (int, np.integer)
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, kinds)
    if ok and isinstance(value, (float, np.floating)):
        ok = bool(np.isfinite(value)) and float(value).is_integer()
    if not ok or value < low:
        raise exc(f"{name} must be {prefix}a whole number >= {low}, got {value!r}.")
    return int(value)


def real(name: str, value: Any, low: float, strict: bool, prefix: str = "") -> float:
    """``value`` as a float when it is a finite number above ``low`` (or equal, unless ``strict``);
    a :class:`~xlatent.exceptions.ConfigError` naming ``name`` otherwise."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    if not ok or not np.isfinite(value) or value < low or (strict and value == low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise ConfigError(f"{name} must be {prefix}a finite number {bound}, got {value!r}.")
    return float(value)
