"""The fitted latent model's owner: :class:`LatentCore` builds the model on its device, fits it,
runs it on whole images (tiles with a halo) and gives and takes its saved state.

:mod:`xlatent.methods.latent` (the registered method), :mod:`xlatent.api` (``fit``/``load``) and
:mod:`xlatent.chunked` (one task per chunk) all go through it. Its state is written and read here
only: :meth:`LatentCore.to_state` gives a JSON-able description and the weights as numpy arrays
(picklable without torch, what a dask task or a model file holds) and
:meth:`LatentCore.from_state` builds the model back, on any device.

Rendering: frames come from advecting ``E(first)`` with the fields of F and decoding, in one of
the blends of :mod:`xlatent.model.blends` (``"transport"`` by default). torch is imported on first
use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from xlatent._lazy import torch_side
from xlatent.config import LatentConfig, ModelConfig, RunOptions, TrainConfig
from xlatent.device import resolve_device
from xlatent.methods.base import physical
from xlatent.motion import estimate, motion_space
from xlatent.motion.guard import guarded
from xlatent.motion.svf import SVF_OPTIONS, _inside, confidence, data_term, objective
from xlatent.patches import count_tiles, run_tiled_retrying

__all__ = ["LatentCore"]

_FEATHER = 8  # cells of linear blending between neighbouring tiles
_RELAX = (0.3, 0.1)  # SVF weights tried below the default, as fractions of it (LatentCore.prior)


def _informative(first: np.ndarray, last: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """Row and column bounds ``(start, stop)`` of the pair without the border rows and columns
    that only repeat their inner neighbour in both images (edge padding, as the lazy path adds
    around the scene): they carry no motion."""
    both = np.concatenate((first, last), axis=0)

    def bounds(x: np.ndarray, axis: int) -> tuple[int, int]:
        same = np.all(np.diff(x, axis=axis) == 0, axis=tuple(a for a in range(x.ndim) if a != axis))
        n = x.shape[axis]
        start = 0
        while start < n - 1 and same[start]:
            start += 1
        stop = n
        while stop > start + 1 and same[stop - 2]:
            stop -= 1
        return start, stop

    return bounds(both, 1), bounds(both, 2)


def data_term_of(a, b, field: np.ndarray) -> float:
    """:func:`xlatent.motion.svf.data_term` of a ``(2, H, W)`` field on ``(1, 1, H, W)`` images
    (on their device)."""
    import torch

    return data_term(a, b, torch.from_numpy(np.ascontiguousarray(field, dtype=np.float32)).to(a.device)[None])


def _with_run(config: LatentConfig, run: Mapping[str, Any]) -> LatentConfig:
    """``config`` with the :class:`~xlatent.config.RunOptions` fields ``run`` replaced (checked)."""
    options = RunOptions.from_dict({**config.run_part().to_dict(), **run})
    return LatentConfig.from_parts(config.model_part(), config.train_part(), options)


def _numpy(*tensors) -> list[np.ndarray]:
    return [x.float().cpu().numpy() for x in tensors]


class LatentCore:
    """A latent advection model and how to run it on whole images (tiles with a halo)."""

    def __init__(self, channels: int, config: LatentConfig, device: Any = "auto", seed: int | None = None,
                 mean=None, std=None) -> None:
        import torch

        if seed is not None:  # the initial weights are part of what the seed fixes
            torch.manual_seed(seed)
        self.config = config
        # the normalisation, undone for the starting-field estimator (log of rain rate...)
        self.mean = np.zeros(channels, np.float32) if mean is None else np.asarray(mean, np.float32)
        self.std = np.ones(channels, np.float32) if std is None else np.asarray(std, np.float32)
        self.requested_device = str(device)  # "auto" resolves anew where the model is rebuilt
        self.device = resolve_device(device)
        with torch.device(self.device):  # built where it runs: no CPU copy made first
            self.model = torch_side("model.latent_advection").LatentAdvection(channels, config.model_part()).eval()
        self.history = None
        self._torch = torch

    @property
    def run_options(self) -> RunOptions:
        """The options runs use now (tile, ``inference_dtype``, dask overlaps)."""
        return self.config.run_part()

    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The state of the fitted model.

        Returns
        -------
        meta : dict
            JSON-able: ``channels``, the configuration in its three parts ``model``
            (:class:`~xlatent.config.ModelConfig`, what the weights depend on), ``train`` and
            ``run`` (as dicts), ``mean`` and ``std`` (the per-channel normalisation, lists of floats).
        tensors : dict of str to numpy.ndarray
            The weights (torch's ``state_dict``, on the CPU, as numpy arrays).
        """
        meta = {
            "channels": self.model.channels,
            "model": self.config.model_part().to_dict(),
            "train": self.config.train_part().to_dict(),
            "run": self.config.run_part().to_dict(),
            "mean": np.asarray(self.mean, np.float32).tolist(),
            "std": np.asarray(self.std, np.float32).tolist(),
        }
        tensors = {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}
        return meta, tensors

    @staticmethod
    def config_of(meta: Mapping[str, Any], run: Mapping[str, Any] | None = None) -> LatentConfig:
        """The configuration a state describes, with the ``run`` options replacing the saved ones.

        Reads both layouts: the three parts (``model``, ``train``, ``run``; :meth:`to_state`) and
        one flat ``config`` (model files of format version 1).
        """
        if "model" in meta:
            config = LatentConfig.from_parts(ModelConfig.from_dict(meta["model"]), TrainConfig.from_dict(meta["train"]),
                                             RunOptions.from_dict(meta["run"]))
        else:
            config = LatentConfig.from_dict(meta["config"])
        return _with_run(config, run) if run else config

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], tensors: Mapping[str, Any], device: Any = "auto",
                   run: Mapping[str, Any] | None = None) -> LatentCore:
        """The model described by ``meta`` with the weights ``tensors``, on ``device``.

        Parameters
        ----------
        meta : mapping
            As given by :meth:`to_state` (a model file's description has these keys too, or
            one flat ``config`` in files of format version 1).
        tensors : mapping of str to numpy.ndarray or torch.Tensor
            The weights.
        device : str or torch.device
            Where to build it (``"auto"``: CUDA, else MPS, else CPU).
        run : mapping, optional
            :class:`~xlatent.config.RunOptions` fields replacing the saved ones.

        Returns
        -------
        LatentCore
        """
        import torch

        core = cls(int(meta["channels"]), cls.config_of(meta, run), device, None,
                   meta.get("mean") or None, meta.get("std") or None)
        core.model.load_state_dict({k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v
                                    for k, v in tensors.items()})
        return core

    def prior(self, first, last):
        """The starting field ``(2, H, W)`` the config asks for, or None.

        ``"svf"`` with ``prior_relax`` > 0: the stationary velocity is fitted at the SVF's
        weight, then at weights 0.3 and 0.1 times it while relaxing the stiffness cuts the data
        term by more than the fraction ``prior_relax`` (an L-curve corner: a stiff fit that
        relaxing improves that much was missing the motion; on growth/decay, noise or
        ambiguous matches relaxing gains little). The weight kept is :attr:`prior_weight`.
        """
        if not self.config.flow_prior:
            return None

        if self.config.flow_prior == "svf":  # a global fit: repeated (padded) borders would mislead it
            (r0, r1), (c0, c1) = _informative(first, last)
            if (r0, r1, c0, c1) != (0, first.shape[-2], 0, first.shape[-1]) and min(r1 - r0, c1 - c0) >= 8:
                inner = self.prior(first[:, r0:r1, c0:c1], last[:, r0:r1, c0:c1])
                pad = ((0, 0), (r0, first.shape[-2] - r1), (c0, first.shape[-1] - c1))
                if self.prior_share is not None:
                    self.prior_share = np.pad(self.prior_share, pad[1:], mode="edge")
                return np.pad(inner, pad, mode="edge")

        def fit(weight=None):
            return estimate(first, last, self.config.flow_prior, self.config.motion_transform, mean=self.mean,
                            std=self.std, coarsen=self.config.prior_coarsen or 1, svf_weight=weight,
                            device=self.device)

        # locals, stored at the end: the lazy path calls this from several threads (per chunk)
        weight, data = SVF_OPTIONS["weight"], []
        field = fit()
        if self.config.flow_prior == "svf" and self.config.prior_relax:
            a, b = self._motion_images(first, last)
            data.append(data_term_of(a, b, field))
            for factor in _RELAX:
                candidate = fit(SVF_OPTIONS["weight"] * factor)
                data.append(data_term_of(a, b, candidate))
                if data[-1] > (1 - self.config.prior_relax) * data[-2]:
                    break
                field, weight = candidate, SVF_OPTIONS["weight"] * factor
        self.prior_weight, self.prior_data = weight, data
        share = None
        if self.config.flow_prior == "svf":  # the starting field must explain the change (motion.guard)
            field, _, share = guarded(first, last, field, lambda a, b: estimate(
                a, b, "svf", self.config.motion_transform, mean=self.mean, std=self.std,
                coarsen=self.config.prior_coarsen or 1, svf_weight=weight, device=self.device), self._motion_arrays)
        self.prior_share = share  # choose() holds the trained motion to the same share
        return field

    def _motion_arrays(self, first, last):
        """The pair as the motion estimator sees it, ``(H, W)`` each."""
        return motion_space(physical(first, self.mean, self.std), physical(last, self.mean, self.std),
                            self.config.motion_transform)

    def _motion_images(self, first, last):
        """The pair as the motion estimator sees it, as ``(1, 1, H, W)`` tensors on the model's device."""
        import torch

        a, b = self._motion_arrays(first, last)
        return tuple(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)[None, None]
                     for x in (a, b))

    def motion_scores(self, first, last, mask, candidates) -> list[float]:
        """SVF objective (:func:`xlatent.motion.svf.objective` at the SVF's weight) of each
        stationary velocity ``(2, H, W)`` in ``candidates``, on the two inputs as the motion
        estimator sees them; the data term over the cells where every candidate's paths stay
        on the grid and ``mask`` is 1, so the scores compare."""
        import torch

        exp_field = torch_side("model.integrate").exp_field
        ta, tb = self._motion_images(first, last)
        weight = getattr(self, "prior_weight", SVF_OPTIONS["weight"])
        # copies: a candidate may be a read-only (broadcast) view
        vs = [torch.from_numpy(np.array(v, dtype=np.float32)).to(self.device)[None] for v in candidates]
        with torch.no_grad():
            keep = torch.from_numpy(np.asarray(mask, dtype=np.float32)).to(self.device)[None, None]
            for v in vs:
                keep = keep * _inside(exp_field(v, -0.5)) * _inside(exp_field(v, 0.5))
            return [float(objective(ta, tb, v, weight, SVF_OPTIONS["eps"], keep)) for v in vs]

    def confidence(self, first, last, velocity) -> np.ndarray:
        """Per-cell confidence ``(H, W)`` in [0, 1] of a stationary ``velocity`` ``(2, H, W)``
        (:func:`xlatent.motion.svf.confidence` on the pair as the motion estimator sees it)."""
        return confidence(*self._motion_arrays(first, last), velocity, device=self.device)

    def choose(self, first, last, mask, prior, fields) -> tuple[np.ndarray, dict]:
        """The trained stationary ``fields`` or the starting field, as ``config.motion_choice``
        says; with ``"objective"``, the one with the lower :meth:`motion_scores`. Returns the
        fields ``(N, 2, H, W)`` and what was decided (for the output's attributes)."""
        choice = self.config.motion_choice
        if prior is None or not self.model.stationary:
            return fields, {}
        info = {}
        if choice == "objective":
            scores = self.motion_scores(first, last, mask, [prior, fields[0]])
            info = {"objective_prior": scores[0], "objective_trained": scores[1]}
            choice = "trained" if scores[1] < scores[0] else "prior"
        info["motion_choice"] = choice
        info["svf_weight"] = float(getattr(self, "prior_weight", 0.0))
        if choice == "prior":
            fields = np.broadcast_to(prior[None], fields.shape).astype(np.float32)
        elif getattr(self, "prior_share", None) is not None:  # where the change is a source (motion.guard)
            fields = (fields * self.prior_share).astype(np.float32)
        return fields, info

    def motion(self, first, last, mask, progress=False, prior=None) -> tuple[np.ndarray, dict, dict[str, np.ndarray]]:
        """The motion the model renders the pair with.

        Stage fields of F (:meth:`fields`), then :meth:`choose` between them and the starting
        field ``prior`` (fitted here when not given), and the :meth:`confidence` of what was kept.
        Returns the fields ``(N, 2, H, W)``, what was decided (for the output's attributes) and
        the per-cell maps (:attr:`xlatent.methods.base.MethodResult.maps`): ``confidence``
        ``(H, W)`` for a model with a stationary velocity, none otherwise.
        """
        if self.config.flow_prior and prior is None:
            prior = self.prior(first, last)
        fields = self.fields(first, last, progress, prior)
        fields, decided = self.choose(first, last, mask, prior, fields)
        maps = {"confidence": self.confidence(first, last, fields[0])} if self.model.stationary else {}
        return fields, decided, maps

    def fit(self, first, last, mask, patch, stride, seed=0, progress=True, prior=None):
        """Train on the pair (normalised ``(C, H, W)`` arrays); returns the history."""
        train = torch_side("train").train
        if prior is None:
            prior = self.prior(first, last)
        self.history = train(
            self.model, first, last, mask.astype(np.float32), prior, self.config, patch, stride,
            self.device, seed=seed, progress=progress,
        )
        return self.history

    def fit_windows(self, windows: np.ndarray, seed=0, progress=True):
        """Train on windows ``(P, L, h, w)`` cut from a scene (first, last, mask and, with a
        starting field, its two channels; :func:`xlatent.chunked.training_windows`); returns the history."""
        self.history = torch_side("train").train_windows(self.model, windows, self.model.channels,
                                                   bool(self.config.flow_prior), self.config, self.device,
                                                   seed=seed, progress=progress)
        return self.history

    def _run(self, window: np.ndarray, c: int, fractions, fields=None, blend="transport"):
        """One tile: F's fields (``fields`` None) or the frames and their end corrections."""
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(window)).to(self.device)[None]
        x = x.contiguous(memory_format=torch.channels_last)
        first, last = x[:, :c], x[:, c : 2 * c]
        with torch.inference_mode(), self._autocast():
            if fields is None:
                prior = x[:, 2 * c :] if self.config.flow_prior else None
                return _numpy(self.model.fields(first, last, prior)[0])
            f = torch.from_numpy(np.ascontiguousarray(fields)).to(self.device)[None]
            t = torch.tensor(np.asarray(fractions, dtype=np.float32), device=self.device).view(-1, 1, 1, 1)
            return _numpy(*torch_side("model.blends").BLENDS[blend](self.model, first, last, f, fractions, t))

    def _autocast(self):
        """bfloat16 autocast of inference when ``config.inference_dtype`` asks for it (checked
        where the configuration is built)."""
        bf16 = self.config.inference_dtype == "bfloat16"
        return self._torch.autocast(self.device.type, dtype=self._torch.bfloat16, enabled=bf16)

    def _tiling(self, shape):
        multiple = self.model.alignment
        return multiple, count_tiles(shape, self.config.tile, multiple)

    def fields_halo(self) -> int:
        """Cells of context each side that :meth:`fields` needs (F's reach plus the feather)."""
        return self.model.field_reach() + _FEATHER

    def frames_halo(self, fields) -> int:
        """Cells of context each side that :meth:`frames` needs for these ``fields``: the reach of
        E and D plus twice the largest displacement (there and back for the carried-back end),
        plus the feather. F is not run by :meth:`frames`, so its reach does not count."""
        unet_reach = torch_side("model.networks").unet_reach
        model = self.model
        reach = 0 if model.identity else len(model.encoder.body) // 2 + 1 + unet_reach(self.config.unet_levels)
        return reach + 2 * int(math.ceil(float(np.abs(fields).max()))) + _FEATHER

    def fields(self, first, last, progress=False, prior=None, *, tile=None, halo=None, context=False):
        """Stage fields ``(N, 2, H, W)`` (grid cells per unit time, index space) of F.

        ``tile`` and ``halo`` override the config's tile size and the halo; with ``context`` the
        inputs already carry ``halo`` cells of neighbouring data on each side (see
        :func:`xlatent.patches.run_tiled`) and the result is the interior only.
        """
        from tqdm.auto import tqdm

        multiple, n_tiles = self._tiling(first.shape[-2:])
        if self.config.flow_prior and prior is None:
            prior = self.prior(first, last)
        pair = np.concatenate((first, last) + ((prior,) if prior is not None else ()), axis=0)
        halo = self.fields_halo() if halo is None else halo
        with tqdm(total=n_tiles, desc="xlatent fields", disable=not progress or n_tiles < 4, leave=False) as bar:
            (fields,) = run_tiled_retrying(lambda w: self._run(w, first.shape[0], None), pair,
                                           tile or self.config.tile, halo, multiple, _FEATHER, bar.update, context)
        return fields

    def frames(self, first, last, fields, fractions, exact_endpoints=True, progress=False, blend="transport",
               *, tile=None, halo=None, context=False):
        """Frames ``(K, C, H, W)`` at ``fractions`` by advecting ``E(first)`` with ``fields``.

        Tiles get a halo of the model's reach plus the largest displacement, so that no
        departure point of a core cell lies outside its tile. ``tile``, ``halo`` and ``context``
        as in :meth:`fields`.
        """
        from tqdm.auto import tqdm

        c, n = first.shape[0], self.config.stages
        multiple, n_tiles = self._tiling(first.shape[-2:])
        if halo is None:
            halo = self.frames_halo(fields)
        stack = np.concatenate((first, last, fields.reshape(-1, *fields.shape[-2:])), axis=0)

        def step(window):
            f = window[2 * c :].reshape(n, 2, *window.shape[-2:])
            return self._run(window[: 2 * c], c, fractions, f, blend if exact_endpoints else "residual")

        with tqdm(total=n_tiles, desc="xlatent frames", disable=not progress or n_tiles < 4, leave=False) as bar:
            frames, r0, tail = run_tiled_retrying(step, stack, tile or self.config.tile, halo, multiple, _FEATHER,
                                                  bar.update, context)
        if exact_endpoints:
            t = np.asarray(fractions, dtype=np.float32)[:, None, None, None]
            frames = frames + (1 - t) * r0[None] + tail
        return frames
