"""Public functions: :func:`interpolate`, :func:`fit` and the reusable :class:`LatentInterpolator`.

xarray in, xarray out. Options are checked here, before any work; the backend (in memory or
dask) is chosen once per pair (:mod:`xlatent.backends`); validation and geo handling are
delegated to :mod:`xlatent.geo`, the numerics to :mod:`xlatent.methods` and the fitted model's
state to :mod:`xlatent.engine`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xlatent import backends, cf, geo, input_checks, methods, modelfile
from xlatent._version import __version__
from xlatent.config import LatentConfig, RunOptions, check_values
from xlatent.device import check_device
from xlatent.engine import LatentCore
from xlatent.exceptions import ConfigError, InputError
from xlatent.motion import check_options
from xlatent.pair import Pair

_FORMAT = "xlatent-latent-model"
_FORMAT_VERSION = 2  # 2: the configuration in three parts (model, train, run); 1: one flat config
BLENDS = ("transport", "symmetric", "residual")
DEFAULT_METHOD = "flow"  # best per cost without a fitted model (benchmarks/RESULTS.md, entry 37)


def _fractions(steps: int) -> np.ndarray:
    whole = isinstance(steps, (int, np.integer)) or (isinstance(steps, (float, np.floating)) and float(steps).is_integer())
    if isinstance(steps, (bool, np.bool_)) or not whole or steps < 1:
        raise InputError(f"steps must be a whole number >= 1 (intervals between the inputs), got {steps!r}.")
    return np.linspace(0.0, 1.0, int(steps) + 1)


def _given_fractions(fractions: Any) -> np.ndarray:
    """``fractions=`` of :func:`interpolate`: a non-empty 1-D sequence of numbers in [0, 1]."""
    try:
        values = np.asarray(fractions, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.array([np.nan])
    if values.ndim != 1 or values.size == 0 or not np.all((values >= 0) & (values <= 1)):
        raise ConfigError(f"fractions must be a non-empty 1-D sequence of numbers in [0, 1] (0: first, 1: last), "
                          f"got {fractions!r}.")
    return values


def _chunked_like(mask, values):
    """A dask ``mask`` in the spatial chunks of dask ``values`` (the model's, which may differ
    from the input's): the output then keeps one task per model chunk, no chunk of it depending
    on two model chunks. Numpy passes through."""
    return mask.rechunk(values.chunks[-2:]) if hasattr(mask, "rechunk") and hasattr(values, "chunks") else mask


def _frames_xr(pair: Pair, frames: np.ndarray, fractions: np.ndarray, attrs: dict, clip: bool = True) -> xr.DataArray:
    values = geo.denormalise(frames, pair.mean, pair.std, pair.source.dtype)
    if clip:  # per channel, to the range spanned by the two inputs (rain rate stays >= 0)
        lo, hi = pair.value_range
        values = np.clip(values, lo[None, :, None, None], hi[None, :, None, None])
    # the first frame is valid where the first image is, the last where the last is, the others
    # where both are; one broadcast expression (no per-frame slices) keeps a dask graph one task
    # per chunk, so that a writer stores each chunk's frames as soon as they are computed
    at_first = (fractions == 0)[:, None, None, None]
    at_last = (fractions == 1)[:, None, None, None]
    first_ok, last_ok = _chunked_like(pair.valid_first, values), _chunked_like(pair.valid_last, values)
    valid = (first_ok | at_last) & (last_ok | at_first)  # broadcast, (K, 1, H, W)
    values = np.where(valid, values, np.nan)  # numpy or dask
    return geo.frames_to_xarray(values, pair.source, pair.grid, pair.t_last, fractions, attrs)


def _flow_xr(pair: Pair, fields: np.ndarray, attrs: dict, kind: str | None = None,
             maps: Mapping[str, np.ndarray] | None = None) -> xr.Dataset:
    """The flow Dataset: ``u``/``v`` from the stage fields, and one variable per per-cell map
    (``MethodResult.maps``: ``confidence``...), described by :data:`xlatent.cf.MAPS`, NaN where
    an input is missing, on the grid with the input's CRS link (:func:`xlatent.geo.add_map`)."""
    n = fields.shape[0]
    fields = np.where(_chunked_like(pair.mask, fields), fields, np.nan)  # numpy or dask
    mid = (np.arange(n) + 0.5) / n
    flow = geo.flow_to_xarray(fields[:, 0], fields[:, 1], pair.source, pair.grid, pair.t_last, mid, attrs)
    flow = cf.describe_flow(flow, kind, cf.lon_lat_axes(pair.source, pair.grid), pair.grid.x_dim, pair.grid.y_dim)
    for name, values in (maps or {}).items():
        values = np.where(pair.mask, np.asarray(values, dtype=np.float32), np.nan)
        flow = geo.add_map(flow, name, values, pair.source, pair.grid, cf.MAPS[name])
    return flow


def _provenance(method: str, info: Mapping[str, Any], *, source: xr.DataArray | None = None,
                config: LatentConfig | None = None, call: str | None = None) -> dict:
    """Attributes of every output: CF ``Conventions``, ``history`` (the input's, plus ``call``),
    xlatent version, method, device and (for the latent model) its configuration as JSON."""
    attrs = {"Conventions": cf.CONVENTIONS, "xlatent_version": __version__, "xlatent_method": method}
    attrs.update({f"xlatent_{k}": v for k, v in info.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)})
    if config is not None:
        attrs["xlatent_config"] = json.dumps(config.to_dict(), sort_keys=True)
    previous = None if source is None else source.attrs.get("history")
    attrs["history"] = cf.append_history(previous, call or method)
    return attrs


def _patch_sizes(value, stride, grid: geo.Grid, shape: tuple[int, int], config: LatentConfig):
    """Patch and stride in (rows, columns) from an int, a dim-keyed dict or the config."""

    def per_axis(v, default):
        if v is None:
            return default, default
        if isinstance(v, Mapping):
            unknown = set(v) - {grid.y_dim, grid.x_dim}
            if unknown:
                raise InputError(f"patch/stride keys {sorted(map(str, unknown))} are not spatial dims "
                                 f"({grid.y_dim!r}, {grid.x_dim!r}).")
            return int(v.get(grid.y_dim, default)), int(v.get(grid.x_dim, default))
        return int(v), int(v)

    explicit = value is not None
    patch = per_axis(value, config.patch)
    if explicit and (patch[0] > shape[0] or patch[1] > shape[1]):
        raise InputError(
            f"patch {patch} is larger than the image ({shape[0]} x {shape[1]} cells). "
            "Pass a smaller patch= or select a larger area."
        )
    multiple = config.alignment
    patch = tuple(max(multiple, min(p, s) // multiple * multiple) for p, s in zip(patch, shape))
    return patch, per_axis(stride, config.stride)


def _config(config: LatentConfig | None, options: Mapping[str, Any]) -> LatentConfig:
    if config is not None and not isinstance(config, LatentConfig):
        raise ConfigError(f"config must be an xlatent.LatentConfig or None, got {type(config).__name__}.")
    base = config or LatentConfig()
    if options:
        LatentConfig.from_dict({**base.to_dict(), **options})  # validates the names
        base = replace(base, **options)
    return base


def _method_options(method: str, spec, options: Mapping[str, Any]) -> tuple[dict, dict]:
    """Split ``**options`` into the method's own and :class:`LatentConfig` fields, and check the
    values of the method's own."""
    own = {k: v for k, v in options.items() if k in spec.options}
    rest = {k: v for k, v in options.items() if k not in spec.options}
    if rest and not spec.trained:
        known = ", ".join(sorted(spec.options)) or "none"
        raise ConfigError(f"Option(s) {sorted(rest)} do not apply to method={method!r} (its options: {known}).")
    if "motion" in own or "motion_transform" in own:
        check_options(own.get("motion", "tvl1"), own.get("motion_transform", "auto"))
    grid = own.get("ot_grid")
    if "ot_grid" in own and (isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2):
        raise ConfigError(f"ot_grid must be a whole number >= 2 (cells a side of the OT grid), got {grid!r}.")
    return own, rest


def _check_flags(**flags: Any) -> None:
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"{name} must be True or False, got {value!r}.")


def _check_blend(blend: Any) -> None:
    if blend not in BLENDS:
        raise ConfigError(f"Unknown blend {blend!r}: use one of {', '.join(map(repr, BLENDS))}.")


def _check_seed(seed: Any) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ConfigError(f"seed must be None or a whole number >= 0, got {seed!r}.")


def _check_sizes(**sizes: Any) -> None:
    """``patch``/``stride``: None, a whole number >= 1, or such numbers keyed by dim name (the
    names are checked against the dims once the inputs are read)."""
    for name, value in sizes.items():
        values = list(value.values()) if isinstance(value, Mapping) else [value]
        for v in values:
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise ConfigError(f"{name} must be a whole number >= 1 or a dict of them by dim name, got {value!r}.")


def _setup(backend, first, last, x_dim, y_dim, patch, stride, config, options):
    """Validated pair, configuration, and patch/stride in (rows, columns)."""
    pair = backend.prepare(first, last, x_dim, y_dim)
    cfg = _config(config, options).for_scene(pair.first.shape[-2:])
    patch_rc, stride_rc = _patch_sizes(patch, stride, pair.grid, pair.first.shape[-2:], cfg)
    return pair, cfg, patch_rc, stride_rc


def _with_model(model, first, last, fractions, method, options, **kwargs):
    """:func:`interpolate` with an archive model: its own checks, then one forward pass. The model
    is duck-typed (its ``interpolate(first, last, fractions=...)`` and ``gate_open``):
    :mod:`xlatent.archive` sits above this module."""
    if not (callable(getattr(model, "interpolate", None)) and hasattr(model, "gate_open")):
        raise ConfigError(f"model must be an xlatent.ArchiveInterpolator (fit_interpolator, load_interpolator), "
                          f"got {type(model).__name__}.")
    if method not in (None, "archive"):
        raise ConfigError(f"model= renders with the archive model; method={method!r} does not apply. "
                          "Pass one of them.")
    if options:
        raise ConfigError(f"Option(s) {sorted(options)} do not apply with model= (a fitted model is not retrained).")
    return model.interpolate(first, last, fractions=fractions, **kwargs)


def interpolate(
    first: xr.DataArray,
    last: xr.DataArray,
    steps: int = 8,
    *,
    method: str | None = None,
    model: Any = None,
    x_dim: str | None = None,
    y_dim: str | None = None,
    patch: int | Mapping[str, int] | None = None,
    stride: int | Mapping[str, int] | None = None,
    device: str = "auto",
    seed: int | None = 0,
    progress: bool = True,
    exact_endpoints: bool = True,
    blend: str = "transport",
    clip: bool = True,
    kind: str | None = None,
    config: LatentConfig | None = None,
    fractions: Any = None,
    **options: Any,
) -> tuple[xr.DataArray, xr.Dataset | None]:
    """Estimate the frames between two images and the motion that drives them.

    Parameters
    ----------
    first, last : xarray.DataArray
        Two images on the same grid (same dims, coords and CRS), ``(y, x)`` or with one extra
        channel dim (``band``...). A scalar ``time`` coord on each gives datetime stamps and
        physical velocities.
    steps : int
        Intervals between ``first`` and ``last``: ``steps + 1`` frames are returned.
    method : str, optional
        ``"flow"`` (default without ``model``: SVF motion and a forward/backward blend, about
        3 s for a 128² pair on one CPU core), ``"latent"`` (the latent model trained on this pair:
        about 40x ``flow``'s time, and its frames rarely differ from ``flow``'s), ``"linear"``
        (cross-dissolve)...; see :func:`xlatent.methods.available`. With ``model``, None or
        ``"archive"``.
    model : xlatent.ArchiveInterpolator, optional
        A model fitted on an archive (:func:`xlatent.fit_interpolator`,
        :func:`xlatent.load_interpolator`): one SVF fit and a forward pass, its correction of
        ``flow``'s frames gated off where it is not trusted (``xlatent_gate`` in the attributes).
        Training options do not apply.
    x_dim, y_dim : str, optional
        Spatial dims, when rioxarray/cf-xarray/common names cannot tell.
    patch, stride : int or dict, optional
        Training patch size and stride in cells, one int or keyed by dim name.
    device : str
        Torch device of the methods that run on one (``latent``, ``advection``, ``flow``,
        ``dynamic-ot``, ``ot-autoencoder``): ``"auto"`` (CUDA when available, else Apple MPS, else
        CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``... Checked before any work: a name torch does not
        know or a device this machine lacks is a :class:`~xlatent.exceptions.DeviceError`. ``ot``
        and ``linear`` run on the CPU: for them another device is checked the same way, then
        ignored with an :class:`~xlatent.exceptions.IgnoredOptionWarning`.
    seed : int or None
        Seed of the initial weights and the patch draws (same seed, same device: same result).
    progress : bool
        Show progress bars (tqdm).
    exact_endpoints : bool
        Make the first and last frames equal the inputs. False gives the paper's frames, the
        decoded latent ``D(z_t)`` alone.
    blend : str
        How the latent model renders frames (with ``exact_endpoints``): ``"transport"``
        (default) blends ``first`` advected forward and ``last`` carried back along the learned
        motion, ``(1 - t)`` and ``t`` (the decoder renders nothing; best on our benchmark);
        ``"symmetric"`` blends the decoded latent ``D(z_t)`` with ``last`` carried back;
        ``"residual"`` is ``D(z_t)`` with the decoder's misses at the ends added. See
        ``docs/method.md``.
    clip : bool
        Keep frame values within the range spanned by the two inputs (per channel): a rain rate
        never goes negative, a brightness never exceeds what was observed.
    kind : {"sea_ice", "sea_water", "air"}, optional
        What moves. Sets the CF ``standard_name`` of ``u``/``v`` (``sea_ice_x_velocity``...,
        ``eastward_...`` on longitude/latitude grids) when the flow is in ``m s-1``; None (the
        default) sets no ``standard_name``.
    config : LatentConfig, optional
        Model sizes, loss weights and training settings; ``**options`` override single fields
        (``max_iters=200``, ``time_budget=30``, ``stages=8``...).
    fractions : sequence of float, optional
        Instead of ``steps``: the frames to return as fractions of the interval from ``first``
        (0) to ``last`` (1), any numbers in [0, 1] in any order, so that one interval can be
        rendered at any times (:func:`xlatent.series.interp` uses it).

    Every option is checked before the inputs are read or a model is trained: a bad value is a
    :class:`~xlatent.exceptions.ConfigError` (a ``ValueError``) naming it. A ``time`` coord that is
    not a date (a number without CF ``units``, text that is not ISO 8601) gives a
    :class:`~xlatent.exceptions.TimeNotDateWarning`; numbers with CF ``units``/``calendar`` (as
    ``decode_times=False`` leaves them) are decoded and ISO 8601 strings parsed.

    Returns
    -------
    frames : xarray.DataArray
        ``(time, [channel], y, x)``, ``steps + 1`` frames from ``first`` to ``last``, with an
        ``interp_fraction`` coord; name, attrs, coords and CRS of ``first``.
    flow : xarray.Dataset or None
        ``u``, ``v`` ``(time, y, x)``, one field per advection stage stamped at its midpoint,
        positive toward increasing x/y coordinate; ``m s-1`` when the grid spacing and time gap
        are known. None for methods without motion (``linear``).

        Both carry CF-1.8 attributes: ``Conventions``, ``history`` (the input's, with this call
        appended) and provenance (``xlatent_version``, ``xlatent_method``, ``xlatent_device``,
        ``xlatent_config`` as JSON). Write them with :func:`xlatent.to_netcdf` to keep the CRS
        link when passing ``encoding=``, or both in one file with :func:`xlatent.save_result`.
        Dask-backed (from inputs opened with ``chunks=``) they are lazy: ``save_result`` to a
        ``.zarr`` path computes and writes them band by band, in memory bounded by one band.
    """
    # every option is checked here, before the inputs are read or anything is trained
    cf.check_kind(kind)
    given = fractions is not None
    fractions = _given_fractions(fractions) if given else _fractions(steps)
    if model is not None:
        return _with_model(model, first, last, fractions, method, options, x_dim=x_dim, y_dim=y_dim, clip=clip,
                           kind=kind, progress=progress)
    method = DEFAULT_METHOD if method is None else method
    spec = methods.spec(method)
    own, options = _method_options(method, spec, options)
    _check_blend(blend)
    _check_flags(progress=progress, exact_endpoints=exact_endpoints, clip=clip)
    _check_seed(seed)
    _check_sizes(patch=patch, stride=stride)
    config = _config(config, options)
    check_device(device, method, uses_device=spec.uses_device)
    geo.warn_undated(first, last)
    backend, first, last = backends.for_inputs(first, last, method, spec)
    input_checks.check_output_size(first, len(fractions) - 1)
    pair, cfg, patch_rc, stride_rc = _setup(backend, first, last, x_dim, y_dim, patch, stride, config, {})
    result = backend.method(method, spec)(
        pair.first, pair.last, pair.mask, fractions, config=cfg, patch=patch_rc, stride=stride_rc,
        device=device, seed=seed, progress=progress, exact_endpoints=exact_endpoints, blend=blend,
        mean=pair.mean, std=pair.std, **own,
    )
    call = cf.call_repr("interpolate", method=method, steps=None if given else int(steps),
                        fractions=fractions.tolist() if given else None, kind=kind, seed=seed, device=device, **options)
    fitted_config = getattr(result.fitted, "config", cfg) if spec.trained else None
    attrs = _provenance(method, result.info, source=pair.source, config=fitted_config, call=call)
    frames = _frames_xr(pair, result.frames, fractions, attrs, clip)
    flow = None if result.fields is None else _flow_xr(pair, result.fields, attrs, kind, result.maps)
    return frames, flow


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
        return _provenance("latent", info, source=pair.source, config=self.config, call=call)

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
        fractions = _fractions(steps)
        _check_blend(blend)
        _check_flags(exact_endpoints=exact_endpoints, clip=clip, progress=progress)
        geo.warn_undated(first, last)
        pair, backend = self._pair_for(first, last)
        input_checks.check_output_size(pair.source, steps)
        fields, decided, maps = self._motion(pair, backend, progress)
        frames, fields = backend.frames(self._core, pair, fractions, exact_endpoints, blend, progress, fields)
        self._fields_cache = (pair, fields, decided, maps)  # flow() then shares the frames' work (dask: their tasks)
        call = cf.call_repr("LatentInterpolator.frames", steps=int(steps), blend=blend)
        return _frames_xr(pair, frames, fractions, self._attrs(pair, call, decided), clip)

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
        _check_flags(progress=progress)
        geo.warn_undated(first, last)
        pair, backend = self._pair_for(first, last)
        call = cf.call_repr("LatentInterpolator.flow", kind=kind)
        fields, decided, maps = self._motion(pair, backend, progress)
        return _flow_xr(pair, fields, self._attrs(pair, call, decided), kind, maps)

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


def fit(
    first: xr.DataArray,
    last: xr.DataArray,
    *,
    x_dim: str | None = None,
    y_dim: str | None = None,
    patch: int | Mapping[str, int] | None = None,
    stride: int | Mapping[str, int] | None = None,
    device: str = "auto",
    seed: int | None = 0,
    progress: bool = True,
    kind: str | None = None,
    config: LatentConfig | None = None,
    **options: Any,
) -> LatentInterpolator:
    """Fit the latent advection model to a pair and return it for reuse.

    Every option is checked before the inputs are read. Dask-backed inputs train on windows
    sampled from the scene, never loaded whole.

    Parameters
    ----------
    first, last : xarray.DataArray
        Two images on the same grid (see :func:`interpolate`).
    x_dim, y_dim : str, optional
        Spatial dims, when rioxarray/cf-xarray/common names cannot tell.
    patch, stride : int or dict, optional
        Training patch size and stride in cells, one int or keyed by dim name.
    device : str
        Torch device: ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    seed : int or None
        Seed of the initial weights and the patch draws.
    progress : bool
        Show progress bars.
    kind : {"sea_ice", "sea_water", "air"}, optional
        The default ``kind`` of :meth:`LatentInterpolator.flow`.
    config : LatentConfig, optional
        Model sizes, loss weights and training settings; ``**options`` override single fields.
    **options
        :class:`~xlatent.LatentConfig` fields (``max_iters=200``, ``time_budget=30``...).

    Returns
    -------
    LatentInterpolator
        The fitted model: :meth:`~LatentInterpolator.frames`, :meth:`~LatentInterpolator.flow`,
        :meth:`~LatentInterpolator.save`.

    Raises
    ------
    ConfigError
        For a bad option value or an unknown option.
    DeviceError
        For a device torch does not know or this machine lacks.
    InputError
        For inputs that cannot be interpolated (see :func:`interpolate`).
    """
    # every option is checked here, before the inputs are read or anything is trained
    cf.check_kind(kind)
    _check_flags(progress=progress)
    _check_seed(seed)
    _check_sizes(patch=patch, stride=stride)
    config = _config(config, options)
    check_device(device)
    geo.warn_undated(first, last)
    backend, first, last = backends.for_inputs(first, last)
    pair, cfg, patch_rc, stride_rc = _setup(backend, first, last, x_dim, y_dim, patch, stride, config, {})
    core = LatentCore(pair.first.shape[0], cfg, device, seed, pair.mean, pair.std)
    backend.fit(core, pair, patch_rc, stride_rc, seed=seed, progress=progress)
    return LatentInterpolator(core, pair.mean, pair.std, pair, x_dim, y_dim, kind, backend)


def load(path: str | Path, device: str = "auto", *, tile: int | None = None,
         inference_dtype: str | None = None) -> LatentInterpolator:
    """Read a model saved with :meth:`LatentInterpolator.save`.

    Parameters
    ----------
    path : str or pathlib.Path
        The model file.
    device : str
        Torch device to run it on (see :meth:`LatentInterpolator.load`).
    tile : int, optional
        Core size of inference tiles, instead of the saved one (see :meth:`LatentInterpolator.load`).
    inference_dtype : {"float32", "bfloat16"}, optional
        Instead of the saved one (see :meth:`LatentInterpolator.load`).

    Returns
    -------
    LatentInterpolator
        Without a fitted pair: pass ``first``/``last`` to its ``frames`` and ``flow``.

    Raises
    ------
    DeviceError
        For a device torch does not know or this machine lacks.
    ConfigError
        For a bad ``tile`` or ``inference_dtype`` (checked before the file is read).
    ModelFileError
        When ``path`` is not an xlatent model file of a version this xlatent reads.
    """
    return LatentInterpolator.load(path, device, tile=tile, inference_dtype=inference_dtype)
