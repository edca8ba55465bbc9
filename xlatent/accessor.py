"""The ``.latentdyn`` accessors (DataArray and Dataset): delegate to :mod:`xlatent.api` and
:mod:`xlatent.cf`. No state."""

from __future__ import annotations

from typing import Any

import xarray as xr

from xlatent import api, cf, totals
from xlatent import forecast as forecasting
from xlatent import series as whole


@xr.register_dataarray_accessor("latentdyn")
class LatentDynAccessor:
    """``da.latentdyn.interpolate(other, steps=8)``: frames and flow between ``da`` and ``other``."""

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    def interpolate(self, other: xr.DataArray, steps: int = 8, **kwargs: Any):
        """Frames and motion from this image to ``other``: :func:`xlatent.interpolate` (same keywords).

        Parameters
        ----------
        other : xarray.DataArray
            The last image, on the same grid as this one.
        steps : int
            Intervals between the two images: ``steps + 1`` frames are returned.
        **kwargs
            Any keyword of :func:`xlatent.interpolate` (``method=``, ``model=`` a fitted
            :class:`xlatent.ArchiveInterpolator`, ``device=``...).

        Returns
        -------
        frames : xarray.DataArray
            ``(time, [channel], y, x)``, with the coords, attrs and CRS of this array.
        flow : xarray.Dataset or None
            ``u``, ``v`` per advection stage (None for ``method="linear"``).

        Examples
        --------
        >>> frames, flow = first.latentdyn.interpolate(last, steps=8)  # doctest: +SKIP
        >>> frames, flow = first.latentdyn.interpolate(last, steps=8, model=model)  # doctest: +SKIP
        """
        return api.interpolate(self._obj, other, steps, **kwargs)

    def interp(self, time: Any, model: Any = None, method: str | None = None, max_gap: Any = None, **kwargs: Any):
        """Frames of this series at ``time`` along the motion, and the motion of each interval:
        :func:`xlatent.series.interp` (same keywords).

        Parameters
        ----------
        time : array-like of datetime64
            The times wanted, within the series' span; input times give the input frames.
        model : optional
            A fitted interpolator, passed on as ``model=``.
        method : str, optional
            Any :func:`xlatent.interpolate` method (default ``"flow"``, or the archive model
            with ``model=``).
        max_gap : str or timedelta, optional
            Intervals longer than this give NaN frames, with a warning.
        **kwargs
            Any keyword of :func:`xlatent.series.interp` or :func:`xlatent.interpolate`.

        Returns
        -------
        frames : xarray.DataArray
        flow : xarray.Dataset or None

        Examples
        --------
        >>> new = pd.date_range(series.time[0].item(), series.time[-1].item(), freq="5min")  # doctest: +SKIP
        >>> frames, flow = series.latentdyn.interp(time=new)  # doctest: +SKIP
        """
        return whole.interp(self._obj, time, model=model, method=method, max_gap=max_gap, **kwargs)

    def accumulate(self, freq: Any = "1h", substep: Any = None, method: str | None = None, model: Any = None,
                   **kwargs: Any):
        """Totals of this rate per period, integrated along the motion:
        :func:`xlatent.accumulate` (same keywords).

        Parameters
        ----------
        freq : str or timedelta
            Period length; periods closed on the right, labelled at their end.
        substep : str or timedelta, optional
            Longest sub-step (default: 1 minute or a tenth of the interval, whichever is shorter).
        method : str, optional
            How the sub-step frames are rendered (default ``"flow"``, or the archive model with
            ``model=``).
        model : optional
            A fitted interpolator, passed on as ``model=``.
        **kwargs
            Any keyword of :func:`xlatent.accumulate`.

        Returns
        -------
        xarray.DataArray
            Totals in mm, ``cell_methods = "time: sum"``.

        Examples
        --------
        >>> hourly = series.latentdyn.accumulate(freq="1h")  # doctest: +SKIP
        """
        return totals.accumulate(self._obj, freq, substep=substep, method=method, model=model, **kwargs)

    def fit(self, other: xr.DataArray, **kwargs: Any):
        """Fit the latent model from this image to ``other``: :func:`xlatent.fit` (same keywords).

        Parameters
        ----------
        other : xarray.DataArray
            The last image, on the same grid as this one.
        **kwargs
            Any keyword of :func:`xlatent.fit`.

        Returns
        -------
        xlatent.LatentInterpolator
            The fitted model: ``frames()``, ``flow()``, ``save()``.
        """
        return api.fit(self._obj, other, **kwargs)

    def forecast(self, horizon: int = 12, context: int = 4, method: str = "latent", **kwargs: Any):
        """The ``horizon`` frames after this series: :func:`xlatent.forecast` (same keywords).

        Parameters
        ----------
        horizon : int
            Frames to forecast.
        context : int
            Frames the forecast starts from (the last ones of the series).
        method : {"latent", "flow", "persistence"}
            The PDE-driven latent forecaster (trained on this series), semi-Lagrangian
            extrapolation along the last motion, or the last frame repeated.
        **kwargs
            Any keyword of :func:`xlatent.forecast` (``device=``, ``seed=``, ``max_iters=``...).

        Returns
        -------
        xarray.DataArray
            ``(time, [channel], y, x)`` with time stamps continuing this series.

        Examples
        --------
        >>> future = series.latentdyn.forecast(horizon=12, context=4)  # doctest: +SKIP
        """
        return forecasting.forecast(self._obj, horizon, context, method=method, **kwargs)


@xr.register_dataset_accessor("latentdyn")
class LatentDynDatasetAccessor:
    """``flow.latentdyn.to_earth_relative()`` on a flow Dataset. No state."""

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def to_earth_relative(self, **kwargs: Any) -> xr.Dataset:
        """Same as :func:`xlatent.to_earth_relative` on this flow."""
        return cf.to_earth_relative(self._obj, **kwargs)
