"""Motion estimates between two images: the estimators (:mod:`xlatent.motion.estimators`) and
the stationary velocity fit (:mod:`xlatent.motion.svf`)."""
