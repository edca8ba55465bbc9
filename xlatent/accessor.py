"""The ``.latentdyn`` accessor: validates, then delegates to :mod:`xlatent.api`. No state."""

from __future__ import annotations

from typing import Any

import xarray as xr


@xr.register_dataarray_accessor("latentdyn")
class LatentDynAccessor:
    """``da.latentdyn.interpolate(other, steps=8)``: frames and flow between ``da`` and ``other``."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def interpolate(self, other: xr.DataArray, steps: int = 8, **kwargs: Any):
        """Same as :func:`xlatent.interpolate` with this array as ``first``."""
        from xlatent.api import interpolate

        return interpolate(self._obj, other, steps, **kwargs)

    def fit(self, other: xr.DataArray, **kwargs: Any):
        """Same as :func:`xlatent.fit` with this array as ``first``."""
        from xlatent.api import fit

        return fit(self._obj, other, **kwargs)
