"""The latent model fitted to one pair, reusable on others and savable: :class:`LatentInterpolator`
(made by :func:`xlatent.fit` and :func:`xlatent.load`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xlatent import backends, cf, geo, input_checks, modelfile
from xlatent.arguments import check_blend, check_flags, fractions_of_steps
from xlatent.config import LatentConfig, RunOptions, check_values
from xlatent.device import check_device
from xlatent.engine import LatentCore
from xlatent.exceptions import InputError
from xlatent.pair import Pair
from xlatent.results import flow_xr, frames_xr, provenance

_FORMAT = "xlatent-latent-model"
_FORMAT_VERSION = 2  # 2: the configuration in three parts (model, train, run); 1: one flat config


class LatentInterpolator:
    """A latent advection model fitted to one pair, reusable on others and savable.

    Make one with :func:`fit` or :meth:`load`. ``frames`` and ``flow`` use the fitted pair by
    default, or any pair on a grid of the same channels passed as ``first``/``last``.
    """

    def __init__(self, core, mean, std, pair: Pair | None = None, x_dim=None, y_dim=None, kind=None,
                 backend=None) -> None:
        self._core = core
        self._kind = cf.check_kind(kind)
        self._mean = np.asarray(mean, dtype=np.float32)
        self._std = np.asarray(std, dtype=np.float32)
        self._fitted = None if pair is None else (pair, backend or backends.InMemory())
        self._dims = (x_dim, y_dim)
        self._fields_cache: tuple[Pair, Any, dict, dict] | None = None
        self._inputs: tuple | None = None

    @property
    def config(self) -> LatentConfig:
        """The model's configuration."""
        return self._core.config

    @property
    def run_options(self) -> RunOptions:
        """The options :meth:`frames` and :meth:`flow` run with (tile, ``inference_dtype``...):
        the fitted ones, or those given to :meth:`load`."""
        return self._core.run_options

    @property
    def history(self) -> dict | None:
        """Training history: ``loss`` per step (and its parts), ``seconds``, ``stopped``."""
        return None if self._core.history is None else self._core.history.to_dict()

    def _pair_for(self, first, last) -> tuple[Pair, Any]:
        """The pair to run on and its backend: the fitted one, or ``first``/``last`` prepared with
        the model's normalisation."""
        if first is None and last is None:
            if self._fitted is None:
                raise InputError("This model was loaded from disk: pass first= and last= to apply it to a pair.")
            return self._fitted
        if first is None or last is None:
            raise InputError("Pass both first= and last=, or neither to use the fitted pair.")
        if self._inputs is not None and self._inputs[0] is first and self._inputs[1] is last:
            return self._inputs[2]  # the same objects again: frames() and flow() share their work
        backend, first_in, last_in = backends.for_inputs(first, last)
        pair = backend.prepare(first_in, last_in, *self._dims, mean=self._mean, std=self._std)
        if pair.first.shape[0] != self._core.model.channels:
            raise InputError(f"The model was fitted on {self._core.model.channels} channel(s); "
                             f"this pair has {pair.first.shape[0]}.")
        self._inputs = (first, last, (pair, backend))
        return pair, backend

    def _motion(self, pair: Pair, backend, progress: bool) -> tuple[Any, dict, dict]:
        """The fields the model renders ``pair`` with, what was decided and the per-cell maps
        (cached per pair)."""
        if self._fields_cache is not None and self._fields_cache[0] is pair:
            return self._fields_cache[1:]
        fields, decided, maps = backend.motion(self._core, pair, progress)
        self._fields_cache = (pair, fields, decided, maps)
        return fields, decided, maps

    def _attrs(self, pair: Pair, call: str, decided: Mapping[str, Any]) -> dict:
        info = {"device": str(self._core.device), **decided}
        return provenance("latent", info, source=pair.source, config=self.config, call=call)

    def frames(self, steps: int = 8, first: xr.DataArray | None = None, last: xr.DataArray | None = None, *,
               exact_endpoints: bool = True, blend: str = "transport", clip: bool = True,
               progress: bool = True) -> xr.DataArray:
        """Frames from the first image to the last, rendered by the fitted model.

        Every option is checked before any work.

        Parameters
        ----------
        steps : int
            Intervals between ``first`` and ``last``: ``steps + 1`` frames are returned.
        first, last : xarray.DataArray, optional
            Another pair on a grid with the channels the model was fitted on (in memory or
            dask-backed); both or neither. Default: the pair given to :func:`fit` (a model read
            with :meth:`load` has none: pass them).
        exact_endpoints : bool
            Make the first and last frames equal the inputs (see :func:`interpolate`).
        blend : {"transport", "symmetric", "residual"}
            How frames are rendered (see :func:`interpolate`).
        clip : bool
            Keep values within the range spanned by the two inputs, per channel.
        progress : bool
            Show progress bars.

        Returns
        -------
        xarray.DataArray
            ``(time, [channel], y, x)``, ``steps + 1`` frames, as :func:`interpolate` returns them
            (dask-backed for dask-backed inputs).

        Raises
        ------
        ConfigError
            For a bad ``steps``, ``blend`` or flag.
        InputError
            For only one of ``first``/``last``, none on a model read from disk, or a pair with
            another number of channels.
        """
        fractions = fractions_of_steps(steps)
        check_blend(blend)
        check_flags(exact_endpoints=exact_endpoints, clip=clip, progress=progress)
        geo.warn_undated(first, last)
        pair, backend = self._pair_for(first, last)
        input_checks.check_output_size(pair.source, steps)
        fields, decided, maps = self._motion(pair, backend, progress)
        frames, fields = backend.frames(self._core, pair, fractions, exact_endpoints, blend, progress, fields)
        self._fields_cache = (pair, fields, decided, maps)  # flow() then shares the frames' work (dask: their tasks)
        call = cf.call_repr("LatentInterpolator.frames", steps=int(steps), blend=blend)
        return frames_xr(pair, frames, fractions, self._attrs(pair, call, decided), clip)

    def flow(self, first: xr.DataArray | None = None, last: xr.DataArray | None = None, *, kind: str | None = None,
             progress: bool = True) -> xr.Dataset:
        """The per-stage motion ``u``, ``v`` of the fitted model.

        Parameters
        ----------
        first, last : xarray.DataArray, optional
            Another pair, as in :meth:`frames`; default: the fitted pair.
        kind : {"sea_ice", "sea_water", "air"}, optional
            Sets the CF ``standard_name`` of ``u``/``v`` (see :func:`interpolate`); default: the
            one given to :func:`fit`.
        progress : bool
            Show progress bars.

        Returns
        -------
        xarray.Dataset
            ``u``, ``v`` ``(time, y, x)``, one field per advection stage stamped at its midpoint,
            as :func:`interpolate` returns them: the trained motion or the starting field, as
            ``config.motion_choice`` decides (``xlatent_motion_choice`` and both objectives in
            the attributes), with the ``confidence`` map (in memory; not on dask-backed inputs).

        Raises
        ------
        UnknownKindError
            For a ``kind`` that is not one of the above.
        InputError
            As in :meth:`frames`.
        """
        kind = cf.check_kind(kind) or self._kind
        check_flags(progress=progress)
        geo.warn_undated(first, last)
        pair, backend = self._pair_for(first, last)
        call = cf.call_repr("LatentInterpolator.flow", kind=kind)
        fields, decided, maps = self._motion(pair, backend, progress)
        return flow_xr(pair, fields, self._attrs(pair, call, decided), kind, maps)

    def save(self, path: str | Path) -> Path:
        """Write the weights and a JSON description to one file.

        Parameters
        ----------
        path : str or pathlib.Path
            Where to write (a torch file holding tensors and a JSON string only).

        Returns
        -------
        pathlib.Path
            ``path``; read it back with :meth:`load` or :func:`xlatent.load`.
        """
        import torch

        meta, tensors = self._core.to_state()
        meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION, **meta, "mean": self._mean.tolist(),
                "std": self._std.tolist(), "dims": list(self._dims)}
        return modelfile.write(path, meta, {k: torch.from_numpy(v) for k, v in tensors.items()})

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", *, tile: int | None = None,
             inference_dtype: str | None = None) -> LatentInterpolator:
        """Read a model written by :meth:`save`; nothing but tensors and JSON is unpickled.

        Parameters
        ----------
        path : str or pathlib.Path
            A file written by :meth:`save` (format version 1 or 2).
        device : str
            Torch device to run it on: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
        tile : int, optional
            Core size of inference tiles in cells, instead of the saved one (the frames do not
            depend on it beyond float rounding; smaller tiles need less memory).
        inference_dtype : {"float32", "bfloat16"}, optional
            Instead of the saved one: ``"bfloat16"`` autocasts inference (about 2x less GPU
            memory; frames differ by about 1e-2 of the data's standard deviation).

        Returns
        -------
        LatentInterpolator
            Without a fitted pair: pass ``first``/``last`` to :meth:`frames` and :meth:`flow`.

        Raises
        ------
        DeviceError
            For a device torch does not know or this machine lacks.
        ConfigError
            For a bad ``tile`` or ``inference_dtype`` (checked before the file is read).
        ModelFileError
            When ``path`` does not exist or is not an xlatent model file of a version this
            xlatent reads.
        """
        run = check_values({k: v for k, v in {"tile": tile, "inference_dtype": inference_dtype}.items() if v is not None})
        check_device(device)
        meta, tensors = modelfile.read(path, _FORMAT, _FORMAT_VERSION, "model", "LatentInterpolator.save")
        core = LatentCore.from_state(meta, tensors, device, run)
        return cls(core, meta["mean"], meta["std"], None, *meta["dims"])
