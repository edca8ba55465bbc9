"""Forecasting the next frames of a series: :func:`forecast`, :func:`fit_forecaster`, :class:`Forecaster`.

Three methods through one call. ``"latent"``: the PDE-driven spatiotemporal disentanglement of
Donà et al. (ICLR 2021; :mod:`xlatent.model.forecast`), trained on sliding windows of the series
(random spatial patches, so large scenes train). ``"flow"``: semi-Lagrangian extrapolation of the
last frame along the motion estimated from the last two (the library's TV-L1 estimate; pysteps'
``extrapolation.semilagrangian`` is the reference convention: a steady field, departure points
traced back one step at a time, the last frame interpolated once). ``"persistence"``: the last
frame repeated.

xarray in, xarray out; validation and geo handling from :mod:`xlatent.geo`, provenance and the
training loop shared with the interpolator.
"""

from xlatent.forecast.config import ForecastConfig
from xlatent.forecast.fit import fit_forecaster
from xlatent.forecast.methods import METHODS, forecast
from xlatent.forecast.model import Forecaster, load_forecaster

__all__ = ["METHODS", "ForecastConfig", "Forecaster", "fit_forecaster", "forecast", "load_forecaster"]
