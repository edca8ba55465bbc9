"""Public functions: :func:`interpolate`, :func:`fit` and the reusable :class:`LatentInterpolator`.

xarray in, xarray out. Validation and geo handling are delegated to :mod:`xlatent.geo`; the
numerics to :mod:`xlatent.methods`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import xarray as xr

from xlatent import cf, geo
from xlatent.config import LatentConfig
from xlatent.exceptions import ConfigError, DeviceError, InputError, ModelFileError

_FORMAT = "xlatent-latent-model"
_FORMAT_VERSION = 1
_MIN_SIZE = 16
BLENDS = ("transport", "symmetric", "residual")


@dataclass
class _Pair:
    """Two validated images, normalised, with their masks and geo context."""

    source: xr.DataArray
    grid: geo.Grid
    t_last: np.datetime64 | None
    first: np.ndarray
    last: np.ndarray
    valid_first: np.ndarray
    valid_last: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.valid_first & self.valid_last

    @property
    def value_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel min and max over the valid cells of both inputs (original units)."""
        c = self.first.shape[0]
        vals = [np.concatenate((self.first[k][self.valid_first], self.last[k][self.valid_last])) for k in range(c)]
        lo = np.array([v.min() for v in vals]) * self.std + self.mean
        hi = np.array([v.max() for v in vals]) * self.std + self.mean
        return lo, hi


def _prepare(first, last, x_dim=None, y_dim=None, mean=None, std=None) -> _Pair:
    if _lazy(first, last):  # dask-backed: never loaded whole (xlatent.chunked)
        from xlatent import chunked

        return chunked.prepare(first, last, x_dim, y_dim, mean, std)
    geo.check_input(first, "first")
    geo.check_input(last, "last")
    grid = geo.describe(first, x_dim=x_dim, y_dim=y_dim)
    geo.check_pair(first, last, grid)
    a = geo.to_array(first, grid, "first")
    b = geo.to_array(last, grid, "last")
    if min(a.shape[-2:]) < _MIN_SIZE:
        raise InputError(
            f"Image of {a.shape[-2]} x {a.shape[-1]} cells is too small: xlatent needs at least "
            f"{_MIN_SIZE} x {_MIN_SIZE}. Select a larger area."
        )
    va, vb = np.isfinite(a).all(axis=0), np.isfinite(b).all(axis=0)
    if not (va & vb).any():
        raise InputError(
            "The two images have no valid cell in common (NaN where the other has data): "
            "nothing to learn the motion from. Check that they cover the same area."
        )
    if mean is None:
        mean, std = _moments(a, b)
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    return _Pair(first, grid, geo.scalar_time(last), _normalise(a, va, mean, std, "first"),
                 _normalise(b, vb, mean, std, "last"), va, vb, mean, std)


def _moments(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over the finite cells of both (float64, so that
    no square overflows); a spread of zero, or too small for float32, becomes 1."""
    both = np.concatenate((a, b), axis=2).astype(np.float64)
    mean = np.nanmean(both, axis=(1, 2))
    std = np.nanstd(both, axis=(1, 2))
    ok = np.isfinite(std) & (std > np.finfo(np.float32).tiny)
    return mean, np.where(ok, std, 1.0)


def _normalise(x: np.ndarray, valid: np.ndarray, mean: np.ndarray, std: np.ndarray, label: str) -> np.ndarray:
    """``(x - mean) / std`` in float64, 0 where not ``valid``, as float32: NaN-free and finite,
    which the methods (and torch's ``grid_sample``) rely on."""
    with np.errstate(invalid="ignore", over="ignore"):
        z = (np.asarray(x, dtype=np.float64) - mean[:, None, None]) / std[:, None, None]
        z = np.where(valid[None], z, 0.0).astype(np.float32)
    if not np.isfinite(z).all():
        raise InputError(
            f"{label} has values too far from the model's mean ({mean.tolist()}) and spread "
            f"({std.tolist()}) to normalise in float32: apply the model to data of the kind it was fitted on."
        )
    return z


def _lazy(*arrays) -> bool:
    return any(isinstance(a, xr.DataArray) and a.chunks is not None for a in arrays)


def _fractions(steps: int) -> np.ndarray:
    whole = isinstance(steps, (int, np.integer)) or (isinstance(steps, (float, np.floating)) and float(steps).is_integer())
    if isinstance(steps, (bool, np.bool_)) or not whole or steps < 1:
        raise InputError(f"steps must be a whole number >= 1 (intervals between the inputs), got {steps!r}.")
    return np.linspace(0.0, 1.0, int(steps) + 1)


def _chunked_like(mask, values):
    """A dask ``mask`` in the spatial chunks of dask ``values`` (the model's, which may differ
    from the input's): the output then keeps one task per model chunk, no chunk of it depending
    on two model chunks. Numpy passes through."""
    return mask.rechunk(values.chunks[-2:]) if hasattr(mask, "rechunk") and hasattr(values, "chunks") else mask


def _frames_xr(pair: _Pair, frames: np.ndarray, fractions: np.ndarray, attrs: dict, clip: bool = True) -> xr.DataArray:
    values = frames * pair.std[None, :, None, None] + pair.mean[None, :, None, None]
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


def _flow_xr(pair: _Pair, fields: np.ndarray, attrs: dict, kind: str | None = None) -> xr.Dataset:
    n = fields.shape[0]
    fields = np.where(_chunked_like(pair.mask, fields), fields, np.nan)  # numpy or dask
    mid = (np.arange(n) + 0.5) / n
    flow = geo.flow_to_xarray(fields[:, 0], fields[:, 1], pair.source, pair.grid, pair.t_last, mid, attrs)
    return cf.describe_flow(flow, kind, cf.lon_lat_axes(pair.source, pair.grid), pair.grid.x_dim, pair.grid.y_dim)


def _provenance(method: str, info: Mapping[str, Any], *, source: xr.DataArray | None = None,
                config: LatentConfig | None = None, call: str | None = None) -> dict:
    """Attributes of every output: CF ``Conventions``, ``history`` (the input's, plus ``call``),
    xlatent version, method, device and (for the latent model) its configuration as JSON."""
    from xlatent import __version__

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
                raise InputError(f"patch/stride keys {sorted(map(str, unknown))} are not spatial dims ({grid.y_dim!r}, {grid.x_dim!r}).")
            return int(v.get(grid.y_dim, default)), int(v.get(grid.x_dim, default))
        return int(v), int(v)

    explicit = value is not None
    patch = per_axis(value, config.patch)
    if explicit and (patch[0] > shape[0] or patch[1] > shape[1]):
        raise InputError(
            f"patch {patch} is larger than the image ({shape[0]} x {shape[1]} cells). "
            "Pass a smaller patch= or select a larger area."
        )
    multiple = 2 ** (config.unet_levels - 1) * config.flow_pool
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
        from xlatent.methods.motion import check_options

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


def check_device(device: Any, method: str = "latent", uses_device: bool = True) -> None:
    """Check ``device=`` before any work: a torch device name, available here.

    A name torch does not know, a CUDA or MPS device this machine lacks, or a CUDA index beyond
    its GPUs is a :class:`~xlatent.exceptions.DeviceError`. For methods that run on the CPU
    (``uses_device=False``), a device other than ``"auto"`` or a CPU one is then ignored with an
    :class:`~xlatent.exceptions.IgnoredOptionWarning`.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return  # "auto" always resolves (to the CPU at worst); no torch import for CPU methods
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise DeviceError(f"device={device!r} is not a torch device: use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'.") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device={device!r} but torch sees no CUDA GPU here. Use device='auto' or 'cpu'.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device={device!r} but torch sees {torch.cuda.device_count()} CUDA GPU(s) here (cuda:0...). "
                          "Use device='cuda' or 'auto'.")
    mps = getattr(torch.backends, "mps", None)
    if dev.type == "mps" and (mps is None or not mps.is_available()):
        raise DeviceError(f"device={device!r} but torch sees no Apple MPS device here. Use device='auto' or 'cpu'.")
    if not uses_device and dev.type != "cpu":
        import warnings

        from xlatent.exceptions import IgnoredOptionWarning

        warnings.warn(
            f"method={method!r} runs on the CPU: device={device!r} is ignored (the methods that use a "
            "torch device: 'latent', 'advection', 'dynamic-ot', 'ot-autoencoder'). Pass device='auto' or 'cpu' "
            "to silence this.",
            IgnoredOptionWarning,
            stacklevel=3,
        )


def _setup(first, last, x_dim, y_dim, patch, stride, config, options):
    """Validated pair, configuration, and patch/stride in (rows, columns)."""
    pair = _prepare(first, last, x_dim, y_dim)
    cfg = _config(config, options).for_scene(pair.first.shape[-2:])
    patch_rc, stride_rc = _patch_sizes(patch, stride, pair.grid, pair.first.shape[-2:], cfg)
    return pair, cfg, patch_rc, stride_rc


def interpolate(
    first: xr.DataArray,
    last: xr.DataArray,
    steps: int = 8,
    *,
    method: str = "latent",
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
    method : str
        ``"latent"`` (latent space advection, default) or ``"linear"`` (cross-dissolve);
        see :func:`xlatent.methods.available`.
    x_dim, y_dim : str, optional
        Spatial dims, when rioxarray/cf-xarray/common names cannot tell.
    patch, stride : int or dict, optional
        Training patch size and stride in cells, one int or keyed by dim name.
    device : str
        Torch device of the trained methods (``latent``, ``advection``): ``"auto"`` (CUDA when
        available, else Apple MPS, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``... Checked before
        any work: a name torch does not know or a device this machine lacks is a
        :class:`~xlatent.exceptions.DeviceError`. ``flow``, ``ot`` and ``linear`` run on the CPU:
        for them another device is checked the same way, then ignored with an
        :class:`~xlatent.exceptions.IgnoredOptionWarning`.
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
    from xlatent import methods

    # every option is checked here, before the inputs are read or anything is trained
    cf.check_kind(kind)
    fractions = _fractions(steps)
    spec = methods.spec(method)
    own, options = _method_options(method, spec, options)
    _check_blend(blend)
    _check_flags(progress=progress, exact_endpoints=exact_endpoints, clip=clip)
    _check_seed(seed)
    _check_sizes(patch=patch, stride=stride)
    config = _config(config, options)
    check_device(device, method, uses_device=spec.uses_device)
    geo.warn_undated(first, last)
    fn = spec.fn
    if _lazy(first, last):  # dask-backed inputs run chunk by chunk (xlatent.chunked)
        from xlatent import chunked

        first, last = chunked.load_unless_supported(method, first, last)
        fn = chunked.LAZY.get(method, fn)
    pair, cfg, patch_rc, stride_rc = _setup(first, last, x_dim, y_dim, patch, stride, config, {})
    result = fn(
        pair.first, pair.last, pair.mask, fractions, config=cfg, patch=patch_rc, stride=stride_rc,
        device=device, seed=seed, progress=progress, exact_endpoints=exact_endpoints, blend=blend,
        mean=pair.mean, std=pair.std, **own,
    )
    call = cf.call_repr("interpolate", method=method, steps=int(steps), kind=kind, seed=seed, device=device, **options)
    attrs = _provenance(method, result.info, source=pair.source, config=getattr(result.fitted, "config", cfg) if spec.trained else None,
                        call=call)
    frames = _frames_xr(pair, result.frames, fractions, attrs, clip)
    flow = None if result.fields is None else _flow_xr(pair, result.fields, attrs, kind)
    return frames, flow


class LatentInterpolator:
    """A latent advection model fitted to one pair, reusable on others and savable.

    Make one with :func:`fit` or :meth:`load`. ``frames`` and ``flow`` use the fitted pair by
    default, or any pair on a grid of the same channels passed as ``first``/``last``.
    """

    def __init__(self, core, mean, std, pair: _Pair | None = None, x_dim=None, y_dim=None, kind=None) -> None:
        self._core = core
        self._kind = cf.check_kind(kind)
        self._mean = np.asarray(mean, dtype=np.float32)
        self._std = np.asarray(std, dtype=np.float32)
        self._pair = pair
        self._dims = (x_dim, y_dim)
        self._fields_cache: tuple[_Pair, np.ndarray] | None = None
        self._inputs: tuple | None = None

    @property
    def config(self) -> LatentConfig:
        """The model's configuration."""
        return self._core.config

    @property
    def history(self) -> dict | None:
        """Training history: ``loss`` per step (and its parts), ``seconds``, ``stopped``."""
        return None if self._core.history is None else self._core.history.to_dict()

    def _pair_for(self, first, last) -> _Pair:
        if first is None and last is None:
            if self._pair is None:
                raise InputError("This model was loaded from disk: pass first= and last= to apply it to a pair.")
            return self._pair
        if first is None or last is None:
            raise InputError("Pass both first= and last=, or neither to use the fitted pair.")
        if self._inputs is not None and self._inputs[0] is first and self._inputs[1] is last:
            return self._inputs[2]  # the same objects again: frames() and flow() share their work
        pair = _prepare(first, last, *self._dims, mean=self._mean, std=self._std)
        if pair.first.shape[0] != self._core.model.channels:
            raise InputError(f"The model was fitted on {self._core.model.channels} channel(s); this pair has {pair.first.shape[0]}.")
        self._inputs = (first, last, pair)
        return pair

    def _fields(self, pair: _Pair, progress: bool) -> np.ndarray:
        if self._fields_cache is not None and self._fields_cache[0] is pair:
            return self._fields_cache[1]
        if _lazy(pair.source):
            from xlatent import chunked

            fields = chunked.fields(self._core, pair.first, pair.last)
        else:
            fields = self._core.fields(pair.first, pair.last, progress)
        self._fields_cache = (pair, fields)
        return fields

    def _attrs(self, pair: _Pair, call: str) -> dict:
        info = {"device": str(self._core.device)}
        return _provenance("latent", info, source=pair.source, config=self.config, call=call)

    def frames(self, steps: int = 8, first=None, last=None, *, exact_endpoints: bool = True,
               blend: str = "transport", clip: bool = True, progress: bool = True) -> xr.DataArray:
        """``steps + 1`` frames from the first image to the last (see :func:`interpolate`); the
        options are checked before any work."""
        fractions = _fractions(steps)
        _check_blend(blend)
        _check_flags(exact_endpoints=exact_endpoints, clip=clip, progress=progress)
        geo.warn_undated(first, last)
        pair = self._pair_for(first, last)
        fields = self._fields(pair, progress)
        if _lazy(pair.source):
            from xlatent import chunked

            frames, fields = chunked.frames(self._core, pair.first, pair.last, fractions, exact_endpoints, blend,
                                            flow=fields)
            self._fields_cache = (pair, fields)  # flow() then shares the frames' tasks
        else:
            frames = self._core.frames(pair.first, pair.last, fields, fractions, exact_endpoints, progress, blend)
        call = cf.call_repr("LatentInterpolator.frames", steps=int(steps), blend=blend)
        return _frames_xr(pair, frames, fractions, self._attrs(pair, call), clip)

    def flow(self, first=None, last=None, *, kind: str | None = None, progress: bool = True) -> xr.Dataset:
        """The per-stage motion ``u``, ``v`` (see :func:`interpolate`); ``kind`` defaults to the
        one given to :func:`fit`."""
        kind = cf.check_kind(kind) or self._kind
        _check_flags(progress=progress)
        geo.warn_undated(first, last)
        pair = self._pair_for(first, last)
        call = cf.call_repr("LatentInterpolator.flow", kind=kind)
        return _flow_xr(pair, self._fields(pair, progress), self._attrs(pair, call), kind)

    def save(self, path: str | Path) -> Path:
        """Write weights and a JSON description to one file (read back by :meth:`load`)."""
        import torch

        meta = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "channels": self._core.model.channels,
            "config": self.config.to_dict(),
            "mean": self._mean.tolist(),
            "std": self._std.tolist(),
            "dims": list(self._dims),
        }
        state = {k: v.detach().cpu() for k, v in self._core.model.state_dict().items()}
        path = Path(path)
        torch.save({"meta": json.dumps(meta), "state_dict": state}, path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "LatentInterpolator":
        """Read a model written by :meth:`save`; nothing but tensors and JSON is unpickled."""
        import torch

        from xlatent.methods.latent import LatentCore

        check_device(device)
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"No model file at {path}.")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            meta = json.loads(blob["meta"])
        except Exception as err:  # torch's own text suggests weights_only=False: not for us
            raise ModelFileError(f"{path} is not an xlatent model file (saved with LatentInterpolator.save).") from err
        if meta.get("format") != _FORMAT or meta.get("format_version", 0) > _FORMAT_VERSION:
            raise ModelFileError(f"{path} is not an xlatent model file of a version this xlatent reads.")
        core = LatentCore(meta["channels"], LatentConfig.from_dict(meta["config"]), device, None, meta["mean"], meta["std"])
        core.model.load_state_dict(blob["state_dict"])
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
    """Fit the latent advection model to a pair and return it for reuse (see :func:`interpolate`;
    ``kind`` becomes the default of :meth:`LatentInterpolator.flow`). Every option is checked
    before the inputs are read."""
    from xlatent.methods.latent import LatentCore

    # every option is checked here, before the inputs are read or anything is trained
    cf.check_kind(kind)
    _check_flags(progress=progress)
    _check_seed(seed)
    _check_sizes(patch=patch, stride=stride)
    config = _config(config, options)
    check_device(device)
    geo.warn_undated(first, last)
    pair, cfg, patch_rc, stride_rc = _setup(first, last, x_dim, y_dim, patch, stride, config, {})
    core = LatentCore(pair.first.shape[0], cfg, device, seed, pair.mean, pair.std)
    if _lazy(pair.source):
        from xlatent import chunked

        chunked.fit_core(core, pair.first, pair.last, pair.mask, patch_rc, stride_rc, seed=seed, progress=progress)
    else:
        core.fit(pair.first, pair.last, pair.mask, patch_rc, stride_rc, seed=seed, progress=progress)
    return LatentInterpolator(core, pair.mean, pair.std, pair, x_dim, y_dim, kind)


def load(path: str | Path, device: str = "auto") -> LatentInterpolator:
    """Read a model saved with :meth:`LatentInterpolator.save`."""
    return LatentInterpolator.load(path, device)
