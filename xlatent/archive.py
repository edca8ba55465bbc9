"""A model fitted once on an archive of series: :func:`fit_interpolator`, :func:`load_interpolator`
and the fitted :class:`ArchiveInterpolator`.

A pair cannot supervise the frames between its ends; a series can. Training examples are
windows of the archive's series, frame ``t`` and frame ``t + K`` as inputs and the frames
between them as targets, ``K`` over a range of time steps. Each window is rendered by ``flow``
(the stationary velocity of :mod:`xlatent.motion.svf`, fitted once per window and cached) and
the network of :mod:`xlatent.model.synthesis` learns a gated correction of that rendering:
latents of both ends carried along the motion, decoded with the evidence of where the motion is
wrong. Its output layer starts at zero (``flow``'s frame exactly), and the correction is applied
only where it is trusted:

- the time-blocked validation windows (the last ``val_fraction`` of each series, never trained
  on) must show a gain over ``flow`` (``model.skill``); otherwise the model returns ``flow``'s
  frames;
- a pair must fall inside what the model has seen: window length in the archive's time steps and
  speed in cells per time step within the trained range (with some slack), grid spacing within
  25 %; otherwise that pair gets ``flow``'s frames (``xlatent_gate`` in the attributes says why).

The model records the variable, units, value transform, grid spacing and time step it was
trained on: other units are a :class:`~xlatent.exceptions.UnitsMismatchError`, another spacing or
time step an :class:`~xlatent.exceptions.ArchiveMismatchWarning`.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xlatent import cf, geo, modelfile
from xlatent._lazy import torch_side
from xlatent._version import __version__
from xlatent.arguments import fractions_of_steps
from xlatent.backends import InMemory
from xlatent.device import check_device, resolve_device
from xlatent.exceptions import ArchiveMismatchWarning, ConfigError, InputError, ModelFileError, UnitsMismatchError
from xlatent.methods.flow import flow as flow_method
from xlatent.motion.svf import SVF_OPTIONS
from xlatent.results import flow_xr, frames_xr, provenance

__all__ = ["ArchiveInterpolator", "fit_interpolator", "load_interpolator"]

log = logging.getLogger(__name__)

_FORMAT = "xlatent-archive-model"
_FORMAT_VERSION = 3  # 2: the second hypothesis (TV-L1 frames) among the inputs; 3: its weight convex
_HYPOTHESES_VERSION = 2  # the key of the cached hypotheses: changes only when what is cached does
TRANSFORM = "window standardisation: (x - mean) / std over the two ends of each pair"
_SPEED_SLACK = 1.5  # a pair's speed may exceed the trained range by this factor before the gate closes
_STEPS_SLACK = 1.25  # same for the window length in time steps
_SPACING_SLACK = 1.25  # grid spacing ratio beyond which the gate closes (a warning from 1 %)


ALT_MOTION = "tvl1"  # the second, independent motion hypothesis (entry 39: averaged with flow's, +0.23 dB on radar)


def _hypotheses(pair, fractions, device, cache: Path | None = None) -> dict:
    """``flow``'s stationary velocity ``v`` ``(2, H, W)``, its confidence ``(H, W)`` and its frames
    ``base`` ``(K, C, H, W)`` at ``fractions`` (exactly what ``method="flow"`` returns), and the
    frames ``alt`` of ``flow`` along TV-L1's motion: the two hypotheses the synthesis weighs.
    Read from ``cache`` when this pair and these fractions were seen before."""
    key = None
    fractions = np.asarray(fractions, dtype=float)
    if cache is not None:
        cache = Path(cache)
        digest = hashlib.sha1()
        for x in (pair.first, pair.last, pair.mean, pair.std, fractions):
            digest.update(np.ascontiguousarray(x).tobytes())
        digest.update(repr((sorted(SVF_OPTIONS.items()), ALT_MOTION, _HYPOTHESES_VERSION)).encode())
        key = cache / f"hyp-{digest.hexdigest()}.npz"
        if key.is_file():
            with np.load(key) as z:
                return {name: z[name] for name in z.files}
    base = flow_method(pair.first, pair.last, pair.mask, fractions, mean=pair.mean, std=pair.std, device=device)
    alt = flow_method(pair.first, pair.last, pair.mask, fractions, mean=pair.mean, std=pair.std, motion=ALT_MOTION,
                      with_confidence=False, device=device)
    out = {"v": base.fields[0], "confidence": base.maps["confidence"], "base": base.frames, "alt": alt.frames}
    if key is not None:  # written beside, then renamed: a concurrent reader never sees half a file
        cache.mkdir(parents=True, exist_ok=True)
        part = key.with_suffix(f".{os.getpid()}.part.npz")
        np.savez(part, **out)
        os.replace(part, key)
    return out


def _predict(net, first, last, v, conf, base, alt, fractions, steps: float, device, maps=None) -> np.ndarray:
    """The network's frames ``(K, C, H, W)`` at ``fractions`` (all strictly inside the window) of a
    normalised pair: its ends, ``flow``'s velocity and confidence, the two hypotheses' frames at
    those fractions; ``maps`` ``(K, 4, H, W)``, the displacements of ``v`` at each fraction,
    when already computed."""
    import torch

    tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)  # noqa: E731
    t = tensor(np.asarray(fractions, dtype=np.float32))
    n = len(t)
    tv = tensor(v)[None].expand(n, -1, -1, -1)
    with torch.inference_mode():
        if maps is None:
            d0, d1 = torch_side("model.synthesis").maps(tv, t)
        else:
            d0, d1 = tensor(maps).split(2, dim=1)
        out = net(tensor(first)[None].expand(n, -1, -1, -1), tensor(last)[None].expand(n, -1, -1, -1), tv, d0, d1,
                  tensor(conf)[None, None].expand(n, -1, -1, -1), t, torch.full((n,), float(steps), device=device),
                  tensor(base), tensor(alt))
    return out.float().cpu().numpy()


def _speed(v: np.ndarray, mask: np.ndarray, steps: float) -> float:
    """95th percentile of the speed in cells per time step over the valid cells."""
    speed = np.hypot(v[0], v[1])[mask.astype(bool)]
    return float(np.percentile(speed, 95)) / max(steps, 1e-6) if speed.size else 0.0


def window_pairs(n: int, k_range: tuple[int, int], count: int, val_fraction: float) -> tuple[list, list]:
    """Training and validation windows ``(t, K)`` of a series of ``n`` frames.

    Validation windows lie in the last ``val_fraction`` of the series, training windows before
    it (none straddles the cut: a time-blocked split). ``count`` windows in all, spread evenly
    over ``K`` in ``k_range`` (inclusive) and over time.
    """
    kmin, kmax = k_range
    cut = n - int(round(val_fraction * n)) if val_fraction > 0 else n

    def pick(lo: int, hi: int, m: int) -> list:
        pairs = [(t, k) for k in range(kmin, kmax + 1) for t in range(lo, hi - k)]
        if not pairs or m <= 0:
            return []
        idx = np.unique(np.linspace(0, len(pairs) - 1, min(m, len(pairs))).round().astype(int))
        return [pairs[i] for i in idx]

    n_val = int(round(count * val_fraction)) if cut < n else 0
    return pick(0, cut, count - n_val), pick(cut, n, n_val)


def _time_dim(da: xr.DataArray):
    dim = geo.time_dim(da)
    if dim is None:
        raise InputError(f"An archive series needs a time dim; this one has dims {tuple(da.dims)}. "
                         "Pass (time, y, x) DataArrays.")
    return dim


def _seconds(da: xr.DataArray, dim) -> np.ndarray | None:
    values = da[dim].values if dim in da.coords else None
    if values is None or not np.issubdtype(np.asarray(values).dtype, np.datetime64):
        return None
    return (values - values[0]) / np.timedelta64(1, "s")


def _spacing(da: xr.DataArray, grid: geo.Grid) -> float | None:
    size = geo.cell_size_m(da, grid)
    return None if size is None else float(np.sqrt(np.median(size[0]) * np.median(size[1])))


def _series_list(archive) -> list[xr.DataArray]:
    items = [archive] if isinstance(archive, xr.DataArray) else list(archive) if isinstance(archive, Sequence) else None
    if not items or not all(isinstance(x, xr.DataArray) for x in items):
        raise InputError("archive must be a (time, y, x) DataArray or a list of them (separate days, events or grids).")
    units = {str(x.attrs.get("units")) for x in items}
    if len(units) > 1:
        raise UnitsMismatchError(f"The archive's series are in different units ({sorted(units)}): convert them "
                                 "to one unit first.")
    return items


def _window(series, dim, t, k, seconds, step, x_dim, y_dim, cache, device) -> dict:
    """One training window: the normalised ends, the two hypotheses, targets and fractions."""
    first, last = series.isel({dim: t}), series.isel({dim: t + k})
    pair = InMemory().prepare(first, last, x_dim, y_dim)
    targets, valid = [], []
    for j in range(1, k):
        x = geo.to_array(series.isel({dim: t + j}), pair.grid, "target")
        ok = np.isfinite(x).all(axis=0) & pair.mask
        targets.append(np.where(ok[None], (x - pair.mean[:, None, None]) / pair.std[:, None, None], 0.0))
        valid.append(ok)
    if seconds is not None:
        span = seconds[t + k] - seconds[t]
        fractions = (seconds[t + 1 : t + k] - seconds[t]) / span
        steps = span / step
    else:
        fractions, steps = np.arange(1, k) / k, float(k)
    hyp = _hypotheses(pair, fractions, device, cache)
    return {"first": pair.first, "last": pair.last, "mask": pair.mask, **hyp, "K": k,
            "targets": np.asarray(targets, np.float32), "valid": np.asarray(valid), "fractions": fractions,
            "steps": float(steps), "speed": _speed(hyp["v"], pair.mask, steps)}


def _psnr(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    """PSNR over the valid cells, on the range of the true frames (as benchmarks/run.py)."""
    p, t = pred[..., valid], truth[..., valid]
    rng = float(t.max() - t.min()) if t.size else 0.0
    mse = float(np.mean((p - t) ** 2)) if t.size else 0.0
    return 10 * np.log10(max(rng, 1e-12) ** 2 / max(mse, 1e-20))


class ArchiveInterpolator:
    """A model fitted on an archive of series (:func:`fit_interpolator`), applied to pairs in one
    forward pass: ``interpolate(first, last, steps)`` or ``xlatent.interpolate(..., model=model)``.

    Attributes
    ----------
    trained_on : dict
        ``variable``, ``units``, ``transform``, ``spacing_m`` and ``step_s`` of the archive,
        the window lengths ``k_range`` (time steps) and ``speed_range`` (cells per time step).
    skill : dict
        On the time-blocked validation windows: ``db_over_flow``, ``db_over_linear`` (mean PSNR
        gain per window) and ``windows``; the correction is used only if ``db_over_flow`` is
        above ``min_skill``.
    history : dict
        ``loss`` per step, ``validation`` (step, dB over ``flow``; step 0 is the untrained network),
        ``seconds``, ``stopped`` (why training ended) and ``best_step`` (whose weights were kept).
    """

    def __init__(self, net, meta: dict, device) -> None:
        self._net = net.eval()
        self._meta = meta
        self.device = device

    @property
    def trained_on(self) -> dict:
        """What the model was trained on (see the class docstring)."""
        keys = ("variable", "units", "transform", "spacing_m", "step_s", "k_range", "speed_range")
        return {k: self._meta[k] for k in keys}

    @property
    def skill(self) -> dict:
        """Validation skill over ``flow`` and the linear blend (see the class docstring)."""
        return dict(self._meta["skill"])

    @property
    def history(self) -> dict:
        """Training history: ``loss``, ``validation``, ``seconds``, ``stopped``."""
        return copy.deepcopy(self._meta["history"])

    @property
    def gate_open(self) -> bool:
        """Whether the correction is used at all: validation skill over ``flow`` above ``min_skill``."""
        gain = self._meta["skill"].get("db_over_flow")
        return gain is not None and gain > self._meta["min_skill"]

    def __repr__(self) -> str:
        skill = self._meta["skill"]
        return (f"ArchiveInterpolator({self._meta['variable']!r} in {self._meta['units']!r}, "
                f"{skill.get('db_over_flow')} dB over flow on {skill.get('windows')} validation windows, "
                f"gate {'open' if self.gate_open else 'closed'})")

    def _check(self, first: xr.DataArray, grid: geo.Grid, seconds: float | None) -> list[str]:
        """Units (an error), spacing and time step (warnings); why the gate closes for this pair."""
        units, trained = first.attrs.get("units"), self._meta["units"]
        if units is not None and trained is not None and str(units).strip() != str(trained).strip():
            raise UnitsMismatchError(f"The model was trained on {self._meta['variable']!r} in {trained!r}; "
                                     f"these data are in {units!r}. Convert them to {trained!r} or fit a "
                                     "model on data in these units.")
        closed = []
        spacing, step = _spacing(first, grid), self._meta["step_s"]
        if spacing is not None and self._meta["spacing_m"] is not None:
            ratio = spacing / self._meta["spacing_m"]
            if abs(ratio - 1) > 0.01:
                warnings.warn(f"The model was trained on a grid spacing of {self._meta['spacing_m']:.0f} m; "
                              f"these data have {spacing:.0f} m.", ArchiveMismatchWarning, stacklevel=3)
            if not 1 / _SPACING_SLACK <= ratio <= _SPACING_SLACK:
                closed.append(f"grid spacing {spacing:.0f} m (trained on {self._meta['spacing_m']:.0f} m)")
        if seconds is not None and step is not None:
            kmin, kmax = self._meta["k_range"]
            steps = seconds / step
            if not kmin / _STEPS_SLACK <= steps <= kmax * _STEPS_SLACK:
                warnings.warn(f"The model was trained on windows of {kmin}-{kmax} time steps of {step:.0f} s; "
                              f"this pair is {seconds:.0f} s apart.", ArchiveMismatchWarning, stacklevel=3)
                closed.append(f"{steps:.2f} time steps apart (trained on {kmin}-{kmax})")
        return closed

    def _gate(self, first: xr.DataArray, grid: geo.Grid, seconds: float | None, v: np.ndarray,
              mask: np.ndarray) -> tuple[list[str], float]:
        """Why the correction stays off for this pair (empty: it is applied) and the pair's
        length in the archive's time steps; ``v`` is ``flow``'s velocity of the pair."""
        closed = self._check(first, grid, seconds)
        step = self._meta["step_s"]
        n_steps = seconds / step if seconds is not None and step else float(np.mean(self._meta["k_range"]))
        lo, hi = self._meta["speed_range"]
        speed = _speed(v, mask, n_steps)
        if not lo / _SPEED_SLACK <= speed <= hi * _SPEED_SLACK:
            closed.append(f"speed {speed:.2f} cells per step (trained on {lo:.2f}-{hi:.2f})")
        if not self.gate_open:
            closed.insert(0, f"validation skill over flow {self._meta['skill'].get('db_over_flow')} dB")
        return closed, n_steps

    def _render(self, first, last, v, conf, base, alt, fractions, steps) -> np.ndarray:
        """The corrected frames ``(K, C, H, W)`` of a normalised pair; the ends stay the inputs."""
        frames = np.array(base, copy=True)
        inner = [i for i, t in enumerate(fractions) if 0 < t < 1]
        if inner:
            frames[inner] = _predict(self._net, first, last, v, conf, base[inner], alt[inner],
                                     np.asarray(fractions)[inner], steps, self.device)
        return frames

    def interpolate(self, first: xr.DataArray, last: xr.DataArray, steps: int = 8, *,
                    fractions: Sequence[float] | np.ndarray | None = None, x_dim: str | None = None,
                    y_dim: str | None = None, clip: bool = True, kind: str | None = None,
                    progress: bool = False) -> tuple[xr.DataArray, xr.Dataset]:
        """Frames between ``first`` and ``last`` and the motion used: ``flow`` (one SVF fit) and one
        forward pass; exactly ``flow``'s frames where the gate is closed.

        Parameters
        ----------
        first, last : xarray.DataArray
            Two images on the same grid, in the units the model was trained on.
        steps : int
            Intervals between the two: ``steps + 1`` frames (ignored when ``fractions`` is given).
        fractions : sequence of float, optional
            Fractions of the interval in [0, 1] to render instead of ``steps``.
        x_dim, y_dim : str, optional
            Spatial dims, when they cannot be told.
        clip : bool
            Keep values within the range spanned by the two inputs.
        kind : {"sea_ice", "sea_water", "air"}, optional
            Sets the CF ``standard_name`` of the flow (see :func:`xlatent.interpolate`).
        progress : bool
            Unused (one forward pass); accepted for a uniform signature.

        Returns
        -------
        frames : xarray.DataArray
            As :func:`xlatent.interpolate` returns them; ``xlatent_gate`` says whether the
            learned correction was applied, or why not.
        flow : xarray.Dataset
            The stationary velocity the frames were rendered with, with its ``confidence``.

        Raises
        ------
        UnitsMismatchError
            When the inputs' ``units`` differ from the model's.
        """
        cf.check_kind(kind)
        if fractions is None:
            fractions = fractions_of_steps(steps)
        else:
            fractions = np.asarray(fractions, dtype=float).ravel()
            if fractions.size == 0 or not np.all((fractions >= 0) & (fractions <= 1)):
                raise InputError("fractions must be values in [0, 1] (0: first, 1: last).")
        geo.warn_undated(first, last)
        pair = InMemory().prepare(first, last, x_dim, y_dim)
        if pair.first.shape[0] != self._meta["channels"]:
            raise InputError(f"The model was trained on {self._meta['channels']} channel(s); "
                             f"this pair has {pair.first.shape[0]}.")
        t0 = geo.scalar_time(first)
        seconds = geo.seconds_between(t0, pair.t_last) if t0 is not None and pair.t_last is not None else None
        base = flow_method(pair.first, pair.last, pair.mask, fractions, mean=pair.mean, std=pair.std, device=self.device)
        v, conf = base.fields[0], base.maps["confidence"]
        closed, n_steps = self._gate(first, pair.grid, seconds, v, pair.mask)
        if closed:
            frames = base.frames
        else:
            alt = flow_method(pair.first, pair.last, pair.mask, fractions, mean=pair.mean, std=pair.std,
                              motion=ALT_MOTION, with_confidence=False, device=self.device)
            frames = self._render(pair.first, pair.last, v, conf, base.frames, alt.frames, fractions, n_steps)
        info = {"device": str(self.device), "motion": "svf",
                "gate": "closed: " + "; ".join(closed) if closed else "open"}
        call = cf.call_repr("interpolate", model="ArchiveInterpolator", steps=len(fractions) - 1, kind=kind)
        attrs = provenance("archive", info, source=pair.source, call=call)
        out = frames_xr(pair, frames, np.asarray(fractions, dtype=float), attrs, clip)
        flow = flow_xr(pair, v[None], attrs, kind, {"confidence": conf})
        return out, flow

    def save(self, path: str | Path) -> Path:
        """Write the weights and the JSON description (what it was trained on, its skill) to one file.

        Parameters
        ----------
        path : str or pathlib.Path
            Where to write; read back with :func:`load_interpolator`.

        Returns
        -------
        pathlib.Path
        """
        meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION, **self._meta}
        return modelfile.write(path, meta, self._net.state_dict())


def load_interpolator(path: str | Path, device: str = "auto") -> ArchiveInterpolator:
    """Read a model written by :meth:`ArchiveInterpolator.save`; only tensors and JSON are read.

    Parameters
    ----------
    path : str or pathlib.Path
        The model file.
    device : str
        ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"``...

    Returns
    -------
    ArchiveInterpolator

    Raises
    ------
    DeviceError
        For a device torch does not know or this machine lacks.
    ModelFileError
        When ``path`` is not an archive model file this xlatent reads.
    """
    Synthesis = torch_side("model.synthesis").Synthesis

    check_device(device)
    meta, tensors = modelfile.read(path, _FORMAT, _FORMAT_VERSION, "archive model", "ArchiveInterpolator.save")
    if meta.get("format_version", 0) < _FORMAT_VERSION:
        raise ModelFileError(f"{path} was written by an earlier xlatent whose archive model is built otherwise; "
                             "fit it again with xlatent.fit_interpolator.")
    dev = resolve_device(device)
    arch = meta["network"]
    net = Synthesis(meta["channels"], arch["latent"], arch["width"], arch["levels"])
    net.load_state_dict(tensors)
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    return ArchiveInterpolator(net.to(dev), meta, dev)


def _dihedral(x, code: int, vectors: int = 3):
    """One of the 8 flips/transposes of a batch ``(B, L, H, W)`` whose first ``vectors`` channel
    pairs are ``(column, row)`` vectors (velocity, displacements): they turn with the grid."""
    import torch

    n = 2 * vectors
    cols, rows = list(range(0, n, 2)), list(range(1, n, 2))
    if code & 4:
        x = x.transpose(-1, -2)
        x = torch.cat((x[:, [k for pair in zip(rows, cols) for k in pair]], x[:, n:]), 1)
    sign = torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
    if code & 1:
        x = x.flip(-1)
        sign[cols] = -1.0
    if code & 2:
        x = x.flip(-2)
        sign[rows] = -sign[rows]
    return x * sign.view(1, -1, 1, 1)


def _check_fit_options(k_range, windows_per_series, val_fraction, max_iters, time_budget, batch_size, crop, lr,
                       seed) -> tuple[int, int]:
    try:
        kmin, kmax = (int(k) for k in k_range)
    except (TypeError, ValueError):
        raise ConfigError(f"k_range must be two whole numbers (min, max time steps), got {k_range!r}.") from None
    if not 2 <= kmin <= kmax:
        raise ConfigError(f"k_range must satisfy 2 <= min <= max (time steps between the two ends), got {k_range!r}.")
    for name, value, low in (("windows_per_series", windows_per_series, 1), ("max_iters", max_iters, 0),
                             ("batch_size", batch_size, 1), ("crop", crop, 16)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"{name} must be a whole number >= {low}, got {value!r}.")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}.")
    if time_budget is not None and not time_budget > 0:
        raise ConfigError(f"time_budget must be None or seconds > 0, got {time_budget!r}.")
    if not lr > 0:
        raise ConfigError(f"lr must be > 0, got {lr!r}.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ConfigError(f"seed must be None or a whole number >= 0, got {seed!r}.")
    return kmin, kmax


def fit_interpolator(
    archive: xr.DataArray | Sequence[xr.DataArray],
    *,
    k_range: tuple[int, int] = (3, 12),
    windows_per_series: int = 32,
    val_fraction: float = 0.25,
    max_iters: int = 1500,
    time_budget: float | None = 480.0,
    batch_size: int = 8,
    crop: int = 64,
    lr: float = 3e-3,
    latent: int = 8,
    width: int = 16,
    levels: int = 3,
    patience: int = 5,
    eval_every: int = 50,
    min_skill: float = 0.0,
    cache: str | Path | None = None,
    x_dim: str | None = None,
    y_dim: str | None = None,
    device: str = "auto",
    seed: int | None = 0,
    progress: bool = True,
) -> ArchiveInterpolator:
    """Fit the archive model on windows of one or several series.

    Parameters
    ----------
    archive : xarray.DataArray or list of them
        ``(time, y, x)`` series (separate days, events or grids), one variable in one unit.
    k_range : (int, int)
        Window lengths in time steps, inclusive: frames ``t`` and ``t + K`` are the inputs, the
        frames between them the targets.
    windows_per_series : int
        Windows taken from each series, spread over ``K`` and time (each costs one SVF fit, a
        few seconds for 128²; ``cache`` keeps them).
    val_fraction : float
        The last fraction of each series held out for validation (time-blocked: no window
        straddles the cut); its skill over ``flow`` decides the gate and early stopping.
    max_iters, time_budget : int, float or None
        Training steps and seconds (the SVF fits not counted), whichever ends first.
    batch_size, crop, lr : int, int, float
        Frames per step, the square crop (cells) the decoder trains on, Adam's learning rate.
    latent, width, levels : int
        Latent channels per end, decoder width and levels.
    patience, eval_every : int
        Stop after ``patience`` validations (every ``eval_every`` steps) without a better skill;
        the best weights are kept.
    min_skill : float
        dB over ``flow`` on validation the correction must exceed to be used at all.
    cache : str or pathlib.Path, optional
        Folder where each window's SVF fit is kept (a refit or another run on the same windows
        reads it back).
    x_dim, y_dim : str, optional
        Spatial dims, when they cannot be told.
    device : str
        ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"``...
    seed : int or None
        Seed of the weights, the draws and the augmentation.
    progress : bool
        Show progress bars.

    Returns
    -------
    ArchiveInterpolator
        Its ``skill`` says how it did on the validation windows.

    Raises
    ------
    ConfigError
        For a bad option.
    InputError
        For an archive that is not ``(time, y, x)`` series long enough for ``k_range``.
    UnitsMismatchError
        For series in different units.
    """
    import torch
    from tqdm.auto import tqdm

    synthesis = torch_side("model.synthesis")
    Synthesis, maps = synthesis.Synthesis, synthesis.maps

    kmin, kmax = _check_fit_options(k_range, windows_per_series, val_fraction, max_iters, time_budget, batch_size,
                                    crop, lr, seed)
    check_device(device)
    series = _series_list(archive)
    cache = Path(cache) if cache is not None else None
    dims = [_time_dim(s) for s in series]
    seconds = [_seconds(s, d) for s, d in zip(series, dims)]
    diffs = [np.diff(s) for s in seconds if s is not None and len(s) > 1]
    step = float(np.median(np.concatenate(diffs))) if diffs else None
    plans = [window_pairs(s.sizes[d], (kmin, kmax), windows_per_series, val_fraction) for s, d in zip(series, dims)]
    if not any(train for train, _ in plans):
        raise InputError(f"The archive's series are too short for windows of {kmin}-{kmax} time steps: "
                         "pass longer series or a smaller k_range.")
    dev = resolve_device(device)
    train_w, val_w = [], []
    total = sum(len(a) + len(b) for a, b in plans)
    with tqdm(total=total, desc="xlatent archive windows (flow, TV-L1)", disable=not progress, leave=False) as bar:
        for s, d, sec, (tr, va) in zip(series, dims, seconds, plans):
            for part, out in ((tr, train_w), (va, val_w)):
                for t, k in part:
                    out.append(_window(s, d, t, k, sec, step, x_dim, y_dim, cache, dev))
                    bar.update()
    first = series[0].isel({dims[0]: 0})
    grid = geo.describe(first, x_dim=x_dim, y_dim=y_dim)
    channels = train_w[0]["first"].shape[0]

    if seed is not None:
        torch.manual_seed(seed)
    net = Synthesis(channels, latent, width, levels).to(dev)
    samples = [(w, j) for w in range(len(train_w)) for j in range(len(train_w[w]["fractions"]))]
    c = channels
    for win in val_w:  # validation on up to 3 frames per window: the skill's cost bounded
        keep = np.unique(np.linspace(0, len(win["fractions"]) - 1, min(3, len(win["fractions"]))).round().astype(int))
        for name in ("targets", "valid", "fractions", "base", "alt"):
            win[name] = np.asarray(win[name])[keep]
    with torch.no_grad():  # the maps of flow's velocity to each target's time: fixed, computed once
        for win in train_w + val_w:
            tv = torch.from_numpy(win["v"])[None].to(dev)
            t = torch.tensor(win["fractions"], dtype=torch.float32, device=dev)
            d0, d1 = maps(tv.expand(len(t), -1, -1, -1), t)
            win["maps"] = torch.cat((d0, d1), 1).cpu().numpy()

    def batch(rng: np.random.Generator):
        picks = [samples[i] for i in rng.integers(len(samples), size=batch_size)]
        t = np.array([train_w[w]["fractions"][j] for w, j in picks], dtype=np.float32)
        layers = []
        for i, ((w, j), back) in enumerate(zip(picks, rng.random(len(picks)) < 0.5)):
            win = train_w[w]
            v, d0, d1, a, b = win["v"], win["maps"][j][:2], win["maps"][j][2:], win["first"], win["last"]
            if back:  # time reversed: last to first along -v, the same frame at 1 - t
                v, d0, d1, a, b = -v, d1, d0, b, a
                t[i] = 1 - t[i]
            layers.append(np.concatenate((v, d0, d1, a, b, win["confidence"][None], win["base"][j], win["alt"][j],
                                          win["targets"][j], win["valid"][j][None])))
        x = _dihedral(torch.from_numpy(np.stack(layers).astype(np.float32)).to(dev), int(rng.integers(8)))
        k = torch.tensor([train_w[w]["steps"] for w, j in picks], dtype=torch.float32, device=dev)
        return x, torch.from_numpy(t).to(dev), k

    def validate() -> tuple[float | None, float | None, dict]:
        if not val_w:
            return None, None, {}
        gains_flow, gains_lin, by_k = [], [], {}
        net.eval()
        for win in val_w:
            pred = _predict(net, win["first"], win["last"], win["v"], win["confidence"], win["base"], win["alt"],
                            win["fractions"], win["steps"], dev, maps=win["maps"])
            ff = np.asarray(win["fractions"])[:, None, None, None]
            linear = (1 - ff) * win["first"][None] + ff * win["last"][None]
            valid = win["valid"].all(axis=0)
            ref = _psnr(pred, win["targets"], valid)
            gains_flow.append(ref - _psnr(win["base"], win["targets"], valid))
            gains_lin.append(ref - _psnr(linear, win["targets"], valid))
            by_k.setdefault(int(win["K"]), []).append(gains_flow[-1])
        net.train()
        return (float(np.mean(gains_flow)), float(np.mean(gains_lin)),
                {k: float(np.mean(g)) for k, g in sorted(by_k.items())})

    def train_step(rng: np.random.Generator):
        x, t, k = batch(rng)
        h, w = x.shape[-2:]
        size = min(crop, h, w)
        r0, c0 = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
        v, d0, d1, x = x[:, 0:2], x[:, 2:4], x[:, 4:6], x[:, 6:]
        first_, last_, conf = x[:, :c], x[:, c : 2 * c], x[:, 2 * c : 2 * c + 1]
        base, alt, target = (x[:, 2 * c + 1 + i * c : 3 * c + 1 + i * c] for i in range(3))
        valid = x[:, 5 * c + 1 :]
        pred = net(first_, last_, v, d0, d1, conf, t, k, base, alt, crop=(r0, c0, size))
        sl = (..., slice(r0, r0 + size), slice(c0, c0 + size))
        loss = ((pred - target[sl]) ** 2 * valid[sl]).sum() / valid[sl].sum().clamp_min(1.0) / c
        return loss, {"loss": float(loss.detach())}

    loop = torch_side("train")
    callbacks = [loop.Progress("xlatent archive fit", max_iters, progress)]
    if time_budget is not None:
        callbacks.append(loop.TimeBudget(time_budget))
    if val_w:  # the loss of a validation is minus the gain over flow: the untrained network is scored too
        callbacks.append(loop.Validation(lambda _: -validate()[0], every=eval_every, patience=patience,
                                          keep_best=True, at_start=True, final=True))
    else:
        warnings.warn("No validation windows (val_fraction=0 or series too short): the model cannot tell "
                      "whether it beats flow, and its correction stays off.", ArchiveMismatchWarning, stacklevel=2)
    done = loop.fit_loop(net, train_step, lr=lr, max_iters=max_iters, seed=seed, callbacks=callbacks)
    history: dict[str, Any] = {
        "loss": done.loss, "seconds": done.seconds, "stopped": done.stopped,
        "validation": [[int(i), -g] for i, g in zip(done.parts.get("validation_step", []),
                                                     done.parts.get("validation", []))],
        "best_step": done.parts.get("best_step", [None])[0],
    }
    db_flow, db_lin, by_k = validate()
    net.eval()
    speeds = [w["speed"] for w in train_w]
    meta = {
        "xlatent_version": __version__, "channels": channels, "variable": None if first.name is None else str(first.name),
        "units": None if first.attrs.get("units") is None else str(first.attrs["units"]), "transform": TRANSFORM,
        "spacing_m": _spacing(first, grid), "step_s": step, "k_range": [kmin, kmax],
        "speed_range": [float(min(speeds)), float(max(speeds))], "min_skill": float(min_skill),
        "skill": {"db_over_flow": db_flow, "db_over_linear": db_lin, "windows": len(val_w),
                  "training_windows": len(train_w), "db_over_flow_by_k": {str(k): g for k, g in by_k.items()}},
        "network": {"latent": latent, "width": width, "levels": levels}, "seed": seed, "history": history,
    }
    log.info("archive model: %s dB over flow, %s dB over linear on %d validation windows", db_flow, db_lin, len(val_w))
    return ArchiveInterpolator(net, meta, dev)
