"""``latent`` (default): latent space advection (paper 000), fitted to the pair at hand.

Numpy in, numpy out; torch stays inside. Frames come from advecting ``E(first)`` with the
fields of F and decoding. With ``exact_endpoints`` the first and last frames equal the inputs:

- ``blend="transport"`` (default): ``(1 - t) * first_t + t * last_t``, ``first`` advected forward
  and ``last`` carried back along the fields the latent model learned (one bilinear sample
  each); the decoder renders nothing. The latent space earns its place in training: what
  transport cannot explain (growth, decay, new features) is taken by E and D instead of
  bending the motion. Best on the benchmark (benchmarks/RESULTS.md, entry 21): in the blends
  below the decoder's correction enters the intermediate frames with weight ``(1 - t)`` while
  the loss trains it only at ``t = 1``.
- ``blend="symmetric"``: ``(1 - t) * (D(z_t) + r0) + t * last_t``, where ``last_t`` is the last
  image carried back along the same motion to time ``t``.
- ``blend="residual"``: ``D(z_t) + (1 - t) * r0 + t * r1_t``, only the decoder's miss at the end
  (``r1 = last - D(z_1)``) carried back.

``r0 = first - D(z_0)`` is the decoder's miss at the start.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xlatent.config import LatentConfig
from xlatent.device import resolve_device
from xlatent.exceptions import ConfigError, InputError
from xlatent.methods.base import MethodResult, physical, register
from xlatent.methods.motion import estimate, motion_space
from xlatent.methods.svf import SVF_OPTIONS, _inside, confidence, data_term, objective
from xlatent.patches import count_tiles, run_tiled_retrying

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
    """:func:`xlatent.methods.svf.data_term` of a ``(2, H, W)`` field on ``(1, 1, H, W)`` images."""
    import torch


    return data_term(a, b, torch.from_numpy(np.ascontiguousarray(field, dtype=np.float32))[None])


class LatentCore:
    """A latent advection model and how to run it on whole images (tiles with a halo)."""

    def __init__(self, channels: int, config: LatentConfig, device: Any = "auto", seed: int | None = None,
                 mean=None, std=None) -> None:
        import torch

        if seed is not None:  # the initial weights are part of what the seed fixes
            torch.manual_seed(seed)
        from xlatent.model.latent import LatentAdvection

        self.config = config
        # the normalisation, undone for the starting-field estimator (log of rain rate...)
        self.mean = np.zeros(channels, np.float32) if mean is None else np.asarray(mean, np.float32)
        self.std = np.ones(channels, np.float32) if std is None else np.asarray(std, np.float32)
        self.requested_device = str(device)  # "auto" resolves anew where the model is rebuilt
        self.device = resolve_device(device)
        self.model = LatentAdvection(channels, config).to(self.device).eval()
        self.history = None
        self._torch = torch

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
                return np.pad(inner, pad, mode="edge")

        def fit(weight=None):
            return estimate(first, last, self.config.flow_prior, self.config.motion_transform, mean=self.mean,
                            std=self.std, coarsen=self.config.prior_coarsen or 1, svf_weight=weight)

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
        return field

    def _motion_images(self, first, last):
        """The pair as the motion estimator sees it, as ``(1, 1, H, W)`` tensors."""
        import torch


        a, b = motion_space(physical(first, self.mean, self.std), physical(last, self.mean, self.std),
                            self.config.motion_transform)
        return tuple(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None] for x in (a, b))

    def motion_scores(self, first, last, mask, candidates) -> list[float]:
        """SVF objective (:func:`xlatent.methods.svf.objective` at the SVF's weight) of each
        stationary velocity ``(2, H, W)`` in ``candidates``, on the two inputs as the motion
        estimator sees them; the data term over the cells where every candidate's paths stay
        on the grid and ``mask`` is 1, so the scores compare."""
        import torch

        from xlatent.model.integrate import exp_field

        ta, tb = self._motion_images(first, last)
        weight = getattr(self, "prior_weight", SVF_OPTIONS["weight"])
        # copies: a candidate may be a read-only (broadcast) view
        vs = [torch.from_numpy(np.array(v, dtype=np.float32))[None] for v in candidates]
        with torch.no_grad():
            keep = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
            for v in vs:
                keep = keep * _inside(exp_field(v, -0.5)) * _inside(exp_field(v, 0.5))
            return [float(objective(ta, tb, v, weight, SVF_OPTIONS["eps"], keep)) for v in vs]

    def confidence(self, first, last, velocity) -> np.ndarray:
        """Per-cell confidence ``(H, W)`` in [0, 1] of a stationary ``velocity`` ``(2, H, W)``
        (:func:`xlatent.methods.svf.confidence` on the pair as the motion estimator sees it)."""
        a, b = self._motion_images(first, last)
        return confidence(a[0, 0].numpy(), b[0, 0].numpy(), velocity)

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
        return fields, info

    def fit(self, first, last, mask, patch, stride, seed=0, progress=True, prior=None):
        """Train on the pair (normalised ``(C, H, W)`` arrays); returns the history."""
        from xlatent.train import train

        if prior is None:
            prior = self.prior(first, last)
        self.history = train(
            self.model, first, last, mask.astype(np.float32), prior, self.config, patch, stride,
            self.device, seed=seed, progress=progress,
        )
        return self.history

    def _run(self, window: np.ndarray, c: int, fractions, fields=None, blend="transport"):
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(window)).to(self.device)[None]
        x = x.contiguous(memory_format=torch.channels_last)
        first, last = x[:, :c], x[:, c : 2 * c]
        with torch.inference_mode(), self._autocast():
            if fields is None:
                prior = x[:, 2 * c :] if self.config.flow_prior else None
                return [self.model.fields(first, last, prior)[0].float().cpu().numpy()]
            f = torch.from_numpy(np.ascontiguousarray(fields)).to(self.device)[None]
            t = torch.tensor(np.asarray(fractions, dtype=np.float32)).view(-1, 1, 1, 1)
            if blend == "transport":  # both observations carried along the learned motion
                first_t = torch.cat(self.model.roll(first, f, fractions), dim=0)
                last_t = torch.cat(self.model.carry_back(last, f, fractions), dim=0)
                frames = (1 - t) * first_t + t * last_t
                zero = torch.zeros_like(frames)
                return [frames.float().cpu().numpy(), zero[0].float().cpu().numpy(), zero.float().cpu().numpy()]
            z = self.model.encode(first)
            k = len(fractions)
            residual = blend == "residual"
            # one decoder pass over the frames, the start (for r0) and, for "residual", the end
            wanted = [*fractions, 1.0] if residual else list(fractions)
            decoded = self.model.decode(torch.cat(self.model.roll(z, f, wanted) + [z]))
            frames, start = decoded[:k], decoded[-1:]
            r0 = first - start
            if blend == "symmetric":  # the last image itself, carried back along the motion
                last_t = torch.cat(self.model.carry_back(last, f, fractions), dim=0)
                frames = (1 - t) * frames + t * last_t
                tail = torch.zeros_like(frames)
            elif residual:  # only the decoder's miss at the end, carried back
                r1 = last - decoded[k : k + 1]
                tail = t * torch.cat(self.model.carry_back(r1, f, fractions), dim=0)
            else:

                raise InputError(f"blend must be 'transport', 'symmetric' or 'residual', got {blend!r}.")
            return [frames.float().cpu().numpy(), r0[0].float().cpu().numpy(), tail.float().cpu().numpy()]

    def _autocast(self):
        """bfloat16 autocast of inference when ``config.inference_dtype`` asks for it."""
        dtype = getattr(self.config, "inference_dtype", "float32")
        if dtype not in ("float32", "bfloat16"):

            raise ConfigError(f"inference_dtype must be 'float32' or 'bfloat16', got {dtype!r}.")
        return self._torch.autocast(self.device.type, dtype=self._torch.bfloat16, enabled=dtype == "bfloat16")

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
        from xlatent.model.networks import unet_reach

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


@register("latent", trained=True, lazy=True)
def latent(first, last, mask, fractions, *, config: LatentConfig, patch, stride, device="auto",
           seed=0, progress=True, exact_endpoints=True, blend="transport", mean=None, std=None,
           **_) -> MethodResult:
    """Fit the latent model to the pair and render ``fractions`` (the method contract, :mod:`xlatent.methods.base`)."""
    core = LatentCore(first.shape[0], config, device, seed, mean, std)
    prior = core.prior(first, last)
    history = core.fit(first, last, mask, patch, stride, seed=seed, progress=progress, prior=prior)
    fields = core.fields(first, last, progress, prior)
    fields, decided = core.choose(first, last, mask, prior, fields)
    frames = core.frames(first, last, fields, fractions, exact_endpoints, progress, blend)
    info = {"device": str(core.device), "train_seconds": history.seconds, "stopped": history.stopped, **decided}
    if core.model.stationary:
        info["confidence"] = core.confidence(first, last, fields[0])
    return MethodResult(frames=frames, fields=fields, info=info, fitted=core)
