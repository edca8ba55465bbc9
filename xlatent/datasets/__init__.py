"""Synthetic image pairs with known truth, and the forecasting sequences.

Each pair is a texture (:mod:`~xlatent.datasets.textures`: SAR-like sea ice, log-normal,
rain-like...) moved by a motion solved exactly (:mod:`~xlatent.datasets.kinematics`) on a 1 km
polar stereographic grid (EPSG:3413) observed twice, 12 hours apart
(:mod:`~xlatent.datasets.grid`), with the true in-between frames and the true velocity at every
frame time (:mod:`~xlatent.datasets.cases`). :func:`wave_equation` gives the paper's WaveEq
sequences for forecasting (:mod:`~xlatent.datasets.wave`); :data:`IN_PLACE` fields that warm and cool
in place with or without drift (:mod:`~xlatent.datasets.change`).

Examples
--------
>>> from xlatent import datasets
>>> case = datasets.load("rotation", size=64)
>>> case.first.dims, case.frames.sizes["time"]
(('y', 'x'), 7)
"""

from xlatent.datasets.cases import (
    ANALYTIC,
    CASES,
    CURVED,
    analytic,
    growing_blobs,
    load,
    new_features,
    rotation,
    translation,
)
from xlatent.datasets.change import IN_PLACE, diurnal, diurnal_drift, diurnal_projected, in_place
from xlatent.datasets.grid import SyntheticCase
from xlatent.datasets.textures import TEXTURES
from xlatent.datasets.wave import wave_equation

__all__ = ["ANALYTIC", "CASES", "CURVED", "IN_PLACE", "TEXTURES", "SyntheticCase", "analytic", "diurnal", "diurnal_drift",
           "diurnal_projected", "growing_blobs", "in_place", "load", "new_features", "rotation", "translation",
           "wave_equation"]
