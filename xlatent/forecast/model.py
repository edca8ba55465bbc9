"""The fitted latent forecaster: :class:`Forecaster` and :func:`load_forecaster`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from xlatent import cf, geo, modelfile
from xlatent._lazy import torch_side
from xlatent.checks import whole
from xlatent.device import check_device, resolve_device
from xlatent.exceptions import InputError, IrregularTimeError
from xlatent.forecast.config import ForecastConfig
from xlatent.forecast.inputs import ParsedSeries, encode_step, normalise, parse_series, provenance_attrs, to_output

_FORMAT = "xlatent-forecast-model"
_FORMAT_VERSION = 1


class Forecaster:
    """A latent forecaster fitted to one or more series; forecasts from any context window.

    Make one with :func:`fit_forecaster` or :func:`load_forecaster`.
    """

    def __init__(self, model, config: ForecastConfig, context: int, mean, std, step, dims=(None, None),
                 history=None, device=None, value_range=None) -> None:
        self._model = model
        self.config = config
        self.context = int(context)
        self._mean = np.asarray(mean, dtype=np.float32)
        self._std = np.asarray(std, dtype=np.float32)
        self._step = step
        self._dims = tuple(dims)
        self._history = history
        self._device = device
        # per-channel min and max of the training series: forecasts are clipped to them
        self._range = None if value_range is None else np.asarray(value_range, dtype=np.float32)

    @property
    def history(self) -> dict | None:
        """Training history: ``loss`` per step and its parts (``pred``, ``ae``, ``reg_s``, ``reg_t``)."""
        return None if self._history is None else self._history.to_dict()

    def _tensor(self, s: ParsedSeries):
        import torch

        x, _ = normalise(s.values[-self.context :], self._mean, self._std)
        return torch_side("model.forecast").flat_context(torch.from_numpy(x)[None].to(self._device))

    def codes(self, window: xr.DataArray) -> tuple[np.ndarray | None, np.ndarray]:
        """``(S, T_0)`` from the last ``context`` frames of ``window``: the static latent map
        ``(static_channels, H/4, W/4)`` (None without S) and the initial dynamic state."""
        import torch

        s = parse_series(window, self.context, *self._dims, label="window", fitting=False)
        ctx = torch_side("model.forecast").pad_to(self._tensor(s))[0]
        with torch.inference_mode():
            static = self._model.encode_static(ctx)
            dynamic = self._model.encode_dynamic(ctx)
        return (None if static is None else static[0][0].cpu().numpy()), dynamic[0].cpu().numpy()

    def forecast(self, context_window: xr.DataArray, horizon: int = 12, *, clip: bool = True) -> xr.DataArray:
        """The ``horizon`` frames after ``context_window`` (its last ``context`` frames are used).

        Returns a DataArray like the window, ``time`` continuing it at its step, with a
        ``lead_time`` coord; NaN where the last frame of the window is.
        """
        import torch

        horizon = whole("horizon", horizon, 1)
        s = parse_series(context_window, self.context, *self._dims, label="context_window", fitting=False)
        if s.values.shape[1] != self._model.channels:
            raise InputError(f"The forecaster was fitted on {self._model.channels} channel(s); this window has "
                             f"{s.values.shape[1]}.")
        if s.step is not None and self._step is not None and encode_step(s.step) != list(self._step):
            raise IrregularTimeError(
                f"context_window has a time step of {geo.human_duration(s.step)}, the forecaster was fitted at "
                f"{geo.human_duration(self._step_value())}: "
                "forecast at the step it was fitted at (resample the window)."
            )
        ctx, (h, w) = torch_side("model.forecast").pad_to(self._tensor(s))
        with torch.inference_mode():
            frames = torch.stack(self._model.rollout(ctx, horizon), dim=1)[0, :, :, :h, :w].cpu().numpy()
        frames = geo.denormalise(frames, self._mean, self._std, s.source.dtype)  # float64 series keep their precision
        if s.step is None:
            s.step = self._step_value()
        call = cf.call_repr("Forecaster.forecast", horizon=horizon, context=self.context)
        lo, hi = (None, None) if self._range is None else self._range
        return to_output(s, frames, horizon, provenance_attrs("latent", s, self.config, call, self._device), clip, lo, hi)

    def _step_value(self):
        if self._step is None:
            return None
        kind, value = self._step
        return np.timedelta64(int(value), "ns") if kind == "ns" else value

    def save(self, path: str | Path) -> Path:
        """Weights and a JSON description in one file (read back by :func:`load_forecaster`)."""
        meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "channels": self._model.channels,
                "context": self.context, "config": self.config.to_dict(), "mean": self._mean.tolist(),
                "std": self._std.tolist(), "step": self._step, "dims": list(self._dims),
                "value_range": None if self._range is None else self._range.tolist()}
        return modelfile.write(path, meta, self._model.state_dict())


def build_model(channels: int, context: int, config: ForecastConfig, device):
    """The forecaster's network, built on ``device`` (no CPU copy first)."""
    import torch

    with torch.device(device):
        return torch_side("model.forecast").SpatioTemporal(
            channels, context, static_channels=config.static_channels, dynamic_channels=config.dynamic_channels,
            width=config.width, ode_hidden=config.ode_hidden, ode_blocks=config.ode_blocks, static=config.static)


def load_forecaster(path: str | Path, device: str = "auto") -> Forecaster:
    """Read a forecaster written by :meth:`Forecaster.save`; nothing but tensors and JSON is unpickled."""
    check_device(device)
    meta, tensors = modelfile.read(path, _FORMAT, _FORMAT_VERSION, "forecaster", "Forecaster.save")
    config = ForecastConfig.from_dict({**meta["config"], "betas": tuple(meta["config"]["betas"])})
    dev = resolve_device(device)
    model = build_model(meta["channels"], meta["context"], config, dev)
    model.load_state_dict(tensors)
    model.eval()
    return Forecaster(model, config, meta["context"], meta["mean"], meta["std"], meta["step"], meta["dims"], None, dev,
                      meta.get("value_range"))
