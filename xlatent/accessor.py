"""The ``.latentdyn`` accessors (DataArray and Dataset): delegate to :mod:`xlatent.api` and
:mod:`xlatent.cf`. No state."""

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


@xr.register_dataset_accessor("latentdyn")
class LatentDynDatasetAccessor:
    """``flow.latentdyn.to_earth_relative()`` on a flow Dataset. No state."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def to_earth_relative(self, **kwargs: Any) -> xr.Dataset:
        """Same as :func:`xlatent.to_earth_relative` on this flow."""
        from xlatent.cf import to_earth_relative

        return to_earth_relative(self._obj, **kwargs)
