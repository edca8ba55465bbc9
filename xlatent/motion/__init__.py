"""Motion between two images, pysteps-style: estimators chosen by name.

:func:`get_method` gives the estimator registered under a name and :func:`available` the
names; :func:`estimate` (:mod:`xlatent.motion.estimators`) runs one on a pair with the
transform and the coarsening that every caller shares (the ``flow`` method, the latent model's
starting field, the forecast, the chunked path). :mod:`xlatent.motion.svf` holds the stationary
velocity fit: its objective, data term and confidence map are also read by the engine.

An estimator is a function ``(a, b, **options) -> (2, H, W)``: ``a`` and ``b`` are ``(H, W)``
images as the estimator sees them (:func:`~xlatent.motion.estimators.motion_space`), the result
is in grid cells (column, row). Add one with :func:`~xlatent.motion.base.register`
in :mod:`xlatent.motion.estimators`.
"""

from xlatent.motion.base import (
    TRANSFORMS,
    Estimator,
    EstimatorFn,
    available,
    check_options,
    get_method,
    register,
    spec,
)

# isort: split
# the built-in estimators register themselves on import, after the registry exists
from xlatent.motion.estimators import estimate, motion_space

__all__ = ["TRANSFORMS", "Estimator", "EstimatorFn", "available", "check_options", "estimate", "get_method",
           "motion_space", "register", "spec"]
