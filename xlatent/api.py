"""Public functions: :func:`interpolate`, :func:`fit` and :func:`load` (the fitted model,
:class:`~xlatent.interpolator.LatentInterpolator`, is importable from here too).

xarray in, xarray out. Options are checked here, before any work (:mod:`xlatent.arguments`);
the backend (in memory or dask) is chosen once per pair (:mod:`xlatent.backends`), which
prepares it in one way for both (:func:`xlatent.pair.prepare`); validation and geo handling are
delegated to :mod:`xlatent.geo`, the numerics to :mod:`xlatent.methods`, the fitted model's
state to :mod:`xlatent.engine` and the outputs to :mod:`xlatent.results`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from xlatent import backends, cf, geo, input_checks, methods
from xlatent.arguments import (
    BLENDS,
    check_blend,
    check_flags,
    check_seed,
    check_sizes,
    config_with,
    fractions_of_steps,
    given_fractions,
    method_options,
    patch_sizes,
)
from xlatent.config import LatentConfig
from xlatent.device import check_device
from xlatent.engine import LatentCore
from xlatent.exceptions import ConfigError
from xlatent.interpolator import LatentInterpolator
from xlatent.results import flow_xr, frames_xr, provenance

__all__ = ["BLENDS", "DEFAULT_METHOD", "LatentInterpolator", "fit", "interpolate", "load"]

DEFAULT_METHOD = "flow"  # best per cost without a fitted model (benchmarks/RESULTS.md, entry 37)


def _setup(backend, first, last, x_dim, y_dim, patch, stride, config, options):
    """Validated pair, configuration, and patch/stride in (rows, columns)."""
    pair = backend.prepare(first, last, x_dim, y_dim)
    cfg = config_with(config, options).for_scene(pair.first.shape[-2:])
    patch_rc, stride_rc = patch_sizes(patch, stride, pair.grid, pair.first.shape[-2:], cfg)
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
        :func:`xlatent.load_interpolator`): one SVF fit, a second motion and a forward pass, its
        correction of ``flow``'s frames gated off where it is not trusted (``xlatent_gate`` in
        the attributes says why and what was done instead).
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
    fractions = given_fractions(fractions) if given else fractions_of_steps(steps)
    if model is not None:
        return _with_model(model, first, last, fractions, method, options, x_dim=x_dim, y_dim=y_dim, clip=clip,
                           kind=kind, progress=progress)
    method = DEFAULT_METHOD if method is None else method
    spec = methods.spec(method)
    own, options = method_options(method, spec, options)
    check_blend(blend)
    check_flags(progress=progress, exact_endpoints=exact_endpoints, clip=clip)
    check_seed(seed)
    check_sizes(patch=patch, stride=stride)
    config = config_with(config, options)
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
    attrs = provenance(method, result.info, source=pair.source, config=fitted_config, call=call)
    frames = frames_xr(pair, result.frames, fractions, attrs, clip)
    flow = None if result.fields is None else flow_xr(pair, result.fields, attrs, kind, result.maps)
    return frames, flow


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
    check_flags(progress=progress)
    check_seed(seed)
    check_sizes(patch=patch, stride=stride)
    config = config_with(config, options)
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
