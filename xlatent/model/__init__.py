"""Torch part of xlatent: networks, advection operator, latent model, losses. No xarray here."""

from xlatent.model.advection import advect
from xlatent.model.latent_advection import LatentAdvection

__all__ = ["advect", "LatentAdvection"]
