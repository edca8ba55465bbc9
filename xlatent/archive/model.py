"""The fitted archive model: :class:`ArchiveInterpolator` (the gate, a forward pass per pair,
saving) and :func:`load_interpolator`."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from xlatent import cf, geo, modelfile
from xlatent._lazy import torch_side
from xlatent.archive.windows import alternative, grid_spacing, outside_weight, speed_per_step
from xlatent.arguments import fractions_of_steps
from xlatent.backends import InMemory
from xlatent.device import check_device, resolve_device
from xlatent.exceptions import ArchiveMismatchWarning, InputError, ModelFileError, UnitsMismatchError
from xlatent.methods.flow import flow as flow_method
from xlatent.results import flow_xr, frames_xr, provenance

FORMAT = "xlatent-archive-model"
# 2: the second hypothesis (TV-L1 frames) among the inputs; 3: its weight convex; 4: its motion on 2 x 2 block means
FORMAT_VERSION = 4
TRANSFORM = "window standardisation: (x - mean) / std over the two ends of each pair"
_SPEED_SLACK = 1.5  # a pair's speed may exceed the trained range by this factor before the gate closes
_STEPS_SLACK = 1.25  # same for the window length in time steps
_SPACING_SLACK = 1.25  # grid spacing ratio beyond which the gate closes (a warning from 1 %)


def predict(net, first, last, v, conf, base, alt, fractions, steps: float, device, maps=None) -> np.ndarray:
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


def _inner(fractions) -> list[int]:
    """Indices of the fractions strictly inside the pair (the ends stay the inputs)."""
    return [i for i, t in enumerate(fractions) if 0 < t < 1]


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
        ``seconds``, ``stopped`` (why training ended), ``best_step`` (the best validation's step),
        ``over_start`` (that step's gain over the starting weights on the validation windows:
        ``db``, its standard error ``se``, ``clearly_better``) and ``kept`` (``"trained"``, or
        ``"start"`` when training was not clearly better).
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
        self.check_units(first.attrs.get("units"), "The model", "these data are",
                         "Convert them to {trained!r} or fit a model on data in these units.")
        closed = []
        spacing, step = grid_spacing(first, grid), self._meta["step_s"]
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
                              f"this pair is {seconds:.0f} s apart: its network stays off for it (the frames' "
                              "xlatent_gate says what is done instead).", ArchiveMismatchWarning, stacklevel=3)
                closed.append(f"{steps:.2f} time steps apart (trained on {kmin}-{kmax})")
        return closed

    def check_units(self, units, who: str, these: str, remedy: str) -> None:
        """A :class:`~xlatent.exceptions.UnitsMismatchError` unless ``units`` are the model's, in any
        spelling (:func:`xlatent.geo.same_units`: ``"mm/h"`` for ``"mm h-1"``; either unknown
        passes): "``who`` was trained on ... in ...; ``these`` in ...", then ``remedy``
        (``{trained!r}`` in it is the model's units)."""
        trained = self._meta["units"]
        if units is not None and trained is not None and not geo.same_units(units, trained):
            raise UnitsMismatchError(f"{who} was trained on {self._meta['variable']!r} in {trained!r}; {these} in "
                                     f"{units!r}. " + remedy.format(trained=trained))

    def _gate(self, first: xr.DataArray, grid: geo.Grid, seconds: float | None, v: np.ndarray,
              mask: np.ndarray) -> tuple[list[str], float]:
        """Why the correction stays off for this pair (empty: it is applied) and the pair's
        length in the archive's time steps; ``v`` is ``flow``'s velocity of the pair."""
        closed = self._check(first, grid, seconds)
        step = self._meta["step_s"]
        n_steps = seconds / step if seconds is not None and step else float(np.mean(self._meta["k_range"]))
        lo, hi = self._meta["speed_range"]
        speed = speed_per_step(v, mask, n_steps)
        if not lo / _SPEED_SLACK <= speed <= hi * _SPEED_SLACK:
            closed.append(f"speed {speed:.2f} cells per step (trained on {lo:.2f}-{hi:.2f})")
        if not self.gate_open:
            closed.insert(0, f"validation skill over flow {self._meta['skill'].get('db_over_flow')} dB")
        return closed, n_steps

    def _render(self, first, last, v, conf, base, alt, fractions, steps) -> np.ndarray:
        """The corrected frames ``(K, C, H, W)`` of a normalised pair; the ends stay the inputs."""
        frames = np.array(base, copy=True)
        inner = _inner(fractions)
        if inner:
            frames[inner] = predict(self._net, first, last, v, conf, base[inner], alt[inner],
                                     np.asarray(fractions)[inner], steps, self.device)
        return frames

    def _frames(self, first, last, mask, hyp: dict, fractions, steps, closed: list[str]) -> tuple[np.ndarray, str]:
        """The frames of a normalised pair and what the gate did (``xlatent_gate``): the network's
        where the gate is open (``closed`` empty); ``flow``'s own where the model's validation skill
        closes it; on a pair outside the trained range, the two hypotheses weighed by
        :func:`~xlatent.archive.windows.outside_weight`, computed from the pair alone (``flow``'s
        frames where its motion explains the change). ``hyp``: as
        :func:`~xlatent.archive.windows.hypotheses` returns them (``base`` alone when the second
        is not needed)."""
        base = hyp["base"]
        if not closed:
            return self._render(first, last, hyp["v"], hyp["confidence"], base, hyp.get("alt"), fractions, steps), "open"
        why = "closed: " + "; ".join(closed)
        if "alt" not in hyp:
            return base, why
        weight = outside_weight(first, last, mask, hyp["v"], hyp["alt_v"], self.device)
        frames = np.array(base, copy=True)
        inner = _inner(fractions)
        frames[inner] += weight * (hyp["alt"][inner] - base[inner])
        return frames, f"{why}; flow's frames and the second hypothesis's weighed {1 - weight:.2f} / {weight:.2f}"

    def interpolate(self, first: xr.DataArray, last: xr.DataArray, steps: int = 8, *,
                    fractions: Sequence[float] | np.ndarray | None = None, x_dim: str | None = None,
                    y_dim: str | None = None, clip: bool = True, kind: str | None = None,
                    progress: bool = False) -> tuple[xr.DataArray, xr.Dataset]:
        """Frames between ``first`` and ``last`` and the motion used: ``flow`` (one SVF fit), the
        second hypothesis (TV-L1 on block means) and one forward pass where the gate is open;
        exactly ``flow``'s frames where the model's validation skill closes it; on a pair outside
        the trained range, ``flow``'s frames and the second hypothesis's weighed by how much of the
        change each motion explains (:func:`~xlatent.archive.windows.outside_weight`).

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
            learned correction was applied, or why not and how the two hypotheses were weighed.
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
        hyp = {"v": v, "confidence": conf, "base": base.frames}
        if self.gate_open and _inner(fractions):  # the second hypothesis is used
            alt = alternative(pair, fractions, self.device)
            hyp.update(alt=alt.frames, alt_v=alt.fields[0])
        frames, gate = self._frames(pair.first, pair.last, pair.mask, hyp, fractions, n_steps, closed)
        info = {"device": str(self.device), "motion": "svf", "gate": gate}
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
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **self._meta}
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
    import torch

    Synthesis = torch_side("model.synthesis").Synthesis

    check_device(device)
    meta, tensors = modelfile.read(path, FORMAT, FORMAT_VERSION, "archive model", "ArchiveInterpolator.save")
    if meta.get("format_version", 0) < FORMAT_VERSION:
        raise ModelFileError(f"{path} was written by an earlier xlatent whose archive model is built otherwise; "
                             "fit it again with xlatent.fit_interpolator.")
    dev = resolve_device(device)
    arch = meta["network"]
    with torch.device(dev):  # built on its device: no CPU copy first
        net = Synthesis(meta["channels"], arch["latent"], arch["width"], arch["levels"])
    net.load_state_dict(tensors)
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    return ArchiveInterpolator(net, meta, dev)
