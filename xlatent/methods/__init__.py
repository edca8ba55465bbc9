"""Interpolation methods behind one contract (:mod:`xlatent.methods.base`), chosen by name with
``method=``; importing this package registers the built-in ones."""

from xlatent.methods.base import (
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

__all__ = ["MethodFn", "MethodResult", "MethodSpec", "available", "get", "physical", "register", "spec",
           "advection", "dynamic_ot", "flow", "latent", "linear", "ot", "ot_autoencoder"]
