"""Names of the motion estimators and transforms, and their check: the lowest layer, so that the
configuration and the methods both validate against one list."""

from __future__ import annotations

from xlatent.exceptions import ConfigError

ESTIMATORS = ("tvl1", "vet", "lk", "svf")
TRANSFORMS = ("auto", "log", "none")


def check_options(estimator: str, transform: str, what: str = "motion") -> None:
    """Raise :class:`~xlatent.exceptions.ConfigError` for an unknown estimator or transform.

    Parameters
    ----------
    estimator : str
        One of :data:`ESTIMATORS`.
    transform : str
        One of :data:`TRANSFORMS`.
    what : str
        The option's name in the message (``"motion"``, ``"flow_prior"``...).
    """
    if estimator not in ESTIMATORS:
        raise ConfigError(f"Unknown {what} {estimator!r}: use one of {', '.join(map(repr, ESTIMATORS))}.")
    if transform not in TRANSFORMS:
        raise ConfigError(f"Unknown motion_transform {transform!r}: use one of {', '.join(map(repr, TRANSFORMS))}.")
