"""Archive models shipped with xlatent, loaded by name: :func:`pretrained_interpolator`.

Each was fitted once, with :func:`xlatent.fit_interpolator`'s defaults, on public data, and is
scored on sources it never saw (``docs/archive.md``, "A shipped model"). It is never used
unless asked for: ``model=xlatent.pretrained_interpolator()``, or ``--model radar-rain-2km`` on
the command line.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from xlatent.archive.model import ArchiveInterpolator, load_interpolator
from xlatent.exceptions import ConfigError

# name -> (file in xlatent/archive/weights/, what it was fitted on)
PRETRAINED = {
    "radar-rain-2km": ("radar-rain-2km.pt",
                       "rainfall rate (mm h-1), 2 km cells, 5-minute steps: three MeteoSwiss radar days "
                       "(pysteps example data, 2015-05-15, 2016-07-11, 2017-01-31), 120 frames of 128 x 128"),
}


def pretrained_interpolator(name: str = "radar-rain-2km", device: str = "auto") -> ArchiveInterpolator:
    """An archive model shipped with xlatent, ready for ``model=``.

    Parameters
    ----------
    name : str
        One of :data:`PRETRAINED`: ``"radar-rain-2km"``, rainfall rate in mm h-1 on cells of about
        2 km at 5-minute steps (its gate keeps its network off on grids more than 25 % finer or
        coarser, on pairs outside 3-12 of its time steps apart, or faster than it has seen: there
        the two hypotheses are weighed by how much of the change each motion explains).
    device : str
        ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"``...

    Returns
    -------
    ArchiveInterpolator
        ``trained_on`` and ``skill`` say what it was fitted on and how it did on held-out windows.

    Raises
    ------
    ConfigError
        For a name xlatent does not ship.
    """
    if name not in PRETRAINED:
        raise ConfigError(f"No shipped model is called {name!r}; the shipped ones are {sorted(PRETRAINED)}. "
                          "A model file of your own: xlatent.load_interpolator(path).")
    ref = resources.files("xlatent.archive").joinpath("weights", PRETRAINED[name][0])
    with resources.as_file(ref) as path:
        return load_interpolator(path, device=device)


def named_or_file(model: str | Path, device: str = "auto") -> ArchiveInterpolator:
    """The shipped model called ``model`` (:data:`PRETRAINED`) unless a file of that name exists,
    else the model file at ``model`` (:func:`~xlatent.archive.load_interpolator`): what
    ``--model`` on the command line takes."""
    if str(model) in PRETRAINED and not Path(model).exists():
        return pretrained_interpolator(str(model), device=device)
    return load_interpolator(model, device=device)
