"""A model fitted once on an archive of series: :func:`fit_interpolator`, :func:`load_interpolator`
and the fitted :class:`ArchiveInterpolator`.

A pair cannot supervise the frames between its ends; a series can. Training examples are
windows of the archive's series, frame ``t`` and frame ``t + K`` as inputs and the frames
between them as targets, ``K`` over a range of time steps. Each window is rendered by ``flow``
(the stationary velocity of :mod:`xlatent.motion.svf`, fitted once per window and cached) and
the network of :mod:`xlatent.model.synthesis` weighs that rendering against a second hypothesis,
``flow`` along TV-L1's motion (estimated on 2 x 2 block means): latents of both ends carried along the motion, decoded with the
evidence of where the motion is wrong. Untrained, it renders the mean of the two hypotheses, and
the network is applied only where it is trusted:

- the time-blocked validation windows (the last ``val_fraction`` of each series, never trained
  on) must show a gain over ``flow`` (``model.skill``); otherwise the model returns ``flow``'s
  frames, exactly;
- a pair must fall inside what the model has seen: window length in the archive's time steps and
  speed in cells per time step within the trained range (with some slack), grid spacing within
  25 %; otherwise that pair gets the two hypotheses weighed by a criterion computed from the pair
  alone, how much of the change each motion explains
  (:func:`~xlatent.archive.windows.outside_weight`: ``flow``'s frames where its motion is exact),
  and ``xlatent_gate`` in the attributes says why and with which weights.

The model records the variable, units, value transform, grid spacing and time step it was
trained on: other units are a :class:`~xlatent.exceptions.UnitsMismatchError`, another spacing or
time step an :class:`~xlatent.exceptions.ArchiveMismatchWarning`.

Modules: :mod:`~xlatent.archive.windows` (which windows, their hypotheses and cache),
:mod:`~xlatent.archive.model` (the fitted model: gate, forward pass, save and load),
:mod:`~xlatent.archive.fit` (:func:`fit_interpolator`), :mod:`~xlatent.archive.pretrained` (the
models shipped with xlatent, :func:`pretrained_interpolator`).
"""

from xlatent.archive.fit import fit_interpolator
from xlatent.archive.model import ArchiveInterpolator, load_interpolator
from xlatent.archive.pretrained import PRETRAINED, pretrained_interpolator
from xlatent.archive.windows import window_pairs

__all__ = ["PRETRAINED", "ArchiveInterpolator", "fit_interpolator", "load_interpolator", "pretrained_interpolator",
           "window_pairs"]
