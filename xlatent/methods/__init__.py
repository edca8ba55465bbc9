"""Interpolation methods behind one contract (:mod:`xlatent.methods.base`), chosen by name with
``method=``; importing this package registers the built-in ones."""

from dataclasses import replace

from xlatent.methods.base import (
    _REGISTRY,
    MethodFn,
    MethodResult,
    MethodSpec,
    available,
    get,
    physical,
    register,
    spec,
)

# isort: split
# the built-in methods register themselves on import, after the registry exists
from xlatent.methods import (
    advection,
    dynamic_ot,
    flow,
    latent,
    linear,
    ot,
    ot_autoencoder,
)

# TODO(lead): pass lazy=True to @register("latent") in methods/latent.py after the merge, then remove this
_REGISTRY["latent"] = replace(_REGISTRY["latent"], lazy=True)

__all__ = ["MethodFn", "MethodResult", "MethodSpec", "available", "get", "physical", "register", "spec",
           "advection", "dynamic_ot", "flow", "latent", "linear", "ot", "ot_autoencoder"]
