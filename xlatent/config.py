"""The configuration of the latent advection model, and its three parts.

:class:`LatentConfig` is the flat settings object users pass (every field, one place, the
defaults); it builds its three parts, each frozen and checked where it is built:

- :class:`ModelConfig` (:meth:`LatentConfig.model_part`): the architecture and what the weights
  depend on (sizes, stages, starting field); saved with the weights, never changed after.
- :class:`TrainConfig` (:meth:`LatentConfig.train_part`): loss weights, iterations, learning
  rate, patches; kept with a saved model as a record of how it was trained.
- :class:`RunOptions` (:meth:`LatentConfig.run_part`): inference tile, ``inference_dtype`` and
  the dask overlaps, chosen per run: :func:`xlatent.load` takes new ones for a saved model.

Plain dataclasses (no torch, no xarray), saved as JSON beside the weights. Every field is checked
when a configuration is built (a :class:`~xlatent.exceptions.ConfigError` names it). Defaults
were chosen by measurement; ``docs/method.md`` gives the evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, make_dataclass, replace
from typing import Any, NoReturn

import numpy as np

from xlatent.checks import real, whole
from xlatent.exceptions import ConfigError
from xlatent.motion import available, check_options

_LARGE_SCENE = 2048 * 2048  # cells: above this the starting field is estimated coarser

# whole-number fields and their least value
_WHOLE = {"latent_channels": 0, "encoder_width": 1, "unet_width": 1, "unet_levels": 1, "stages": 1,
          "flow_pool": 1, "pyramid": 1, "patch": 1, "stride": 1, "batch_size": 1, "max_iters": 1,
          "patience": 1, "tile": 1, "sample_patches": 1, "prior_margin": 0}
# real fields: (least value, whether the least value itself is excluded)
_REAL = {"flow_scale": (0.0, True), "l_ae": (0.0, False), "l_lat": (0.0, False), "l_mag": (0.0, False),
         "l_smooth": (0.0, False), "l_time": (0.0, False), "l_bend": (0.0, False), "l_transport": (0.0, False),
         "prior_relax": (0.0, False),
         "lr": (0.0, True), "lr_final": (0.0, True),
         "min_delta": (0.0, False)}
_CHOICES = {"codec": ("learned", "identity"), "inference_dtype": ("float32", "bfloat16"),
            "motion_choice": ("objective", "trained", "prior")}


# the three parts (every LatentConfig field is in exactly one)
MODEL_FIELDS = ("codec", "latent_channels", "encoder_width", "unet_width", "unet_levels", "stages", "flow_sees_last",
                "flow_scale", "flow_pool", "stationary", "flow_prior", "motion_choice", "prior_relax",
                "motion_transform", "prior_coarsen")
TRAIN_FIELDS = ("l_ae", "l_lat", "l_mag", "l_smooth", "l_time", "l_bend", "l_transport", "pyramid", "patch", "stride",
                "batch_size", "max_iters", "time_budget", "lr", "lr_final", "patience", "min_delta", "sample_patches")
RUN_FIELDS = ("tile", "inference_dtype", "prior_margin", "max_displacement")


def _fail(message: str) -> NoReturn:
    raise ConfigError(message)


@dataclass
class LatentConfig:
    """Sizes, loss weights and training settings of the latent advection model.

    Attributes
    ----------
    codec : str
        ``"learned"``: encoder E and decoder D are networks (latent space advection);
        ``"identity"``: E and D are the identity, so the fields advect the image itself (the
        paper's image-space advection comparison, ``method="advection"``).
    latent_channels : int
        Learned latent channels added to the image channels (the latent keeps the image itself
        as its first channels, so image-space advection is a special case of the model).
    encoder_width : int
        Width of the 6 convolution layers of the encoder E.
    unet_width : int
        Channels at the first level of the U-Nets F and D (doubled at each level).
    unet_levels : int
        Levels of the U-Nets (2 convolutions each, max-pool down, resize-convolution up).
    stages : int
        Number N of semi-Lagrangian advection stages, each with its own field (dt = 1/N).
    flow_sees_last : bool
        Whether the field map F sees both images (default) or only the first, as in the paper.
    flow_pool : int
        F works on the images average-pooled by this factor (its fields are upsampled back):
        a wider view for large displacements, smooth fields, and less compute.
    stationary : bool
        F outputs one stationary velocity ``v`` (a correction of the starting field), shared by
        all stages; frames follow its curved paths, ``first∘exp(-t v)`` forward and
        ``last∘exp((1 - t) v)`` carried back (scaling and squaring: each other's inverse).
        False: one field per stage, traced stage by stage (the paper's form; models saved
        before this option existed).
    flow_prior : str or None
        Starting field that F corrects: ``"svf"`` (default: the stationary velocity fitted to
        the pair, :mod:`xlatent.motion.svf`, as ``method="flow"`` uses), ``"tvl1"``
        (pyramidal TV-L1 optical flow, scikit-image), ``"vet"`` or ``"lk"`` (pysteps, the
        ``pysteps`` extra), or None (F alone, as in the paper).
    prior_relax : float
        ``flow_prior="svf"`` only: the starting field is refitted with 0.3 and 0.1 times the
        SVF's bending weight while each step cuts the data term by more than this fraction
        (0: never; see :meth:`xlatent.engine.LatentCore.prior`).
    motion_choice : str
        ``"objective"`` (default): after training, keep the trained motion or the starting
        field, whichever has the lower SVF objective on the two inputs (symmetric half-way
        match plus bending energy, :func:`xlatent.motion.svf.objective`); ``"trained"`` or
        ``"prior"`` force one. Only for a stationary model with a starting field.
    motion_transform : str
        What the starting-field estimator sees: ``"auto"`` (log of channels without negative
        values, such as rain rate), ``"log"`` or ``"none"``; see :mod:`xlatent.motion.estimators`.
    prior_coarsen : int or None
        The starting field is estimated on images block-averaged ``prior_coarsen`` times and
        upsampled: about ``prior_coarsen**2`` times cheaper. None (default): 1 for scenes of at
        most 4 megapixels (2048 x 2048), else ``flow_pool`` (F sees the images at that
        resolution anyway); fixed when the model is fitted and saved with it.
    flow_scale : float
        Displacement (grid cells over the whole interval) of one unit of F's output.
    l_ae, l_lat, l_mag, l_smooth, l_time : float
        Weights of the auto-encoder, latent end-point, magnitude, spatial- and temporal-smoothness
        terms (the terminal loss has weight 1). With ``stationary``, ``l_mag`` applies to F's
        correction of the starting field and ``l_smooth``/``l_time`` are unused.
    l_bend : float
        ``stationary`` only: weight of the bending energy (squared second derivatives) of F's
        correction: zero for any affine correction, so an exact rotation or shear stays exact.
    l_transport : float
        ``stationary`` only: weight of the half-way image match ``first∘exp(-v/2)`` against
        ``last∘exp(v/2)``, the motion's own data term.
    pyramid : int
        The terminal loss is also taken on images average-pooled 2, 4, ... times (``pyramid``
        levels in all): long-range gradients for displacements larger than the texture scale.
    patch : int
        Side of the square training patches, in grid cells (``dict`` by dim name accepted by
        :func:`xlatent.fit`).
    stride : int
        Distance between the origins of candidate patches.
    batch_size : int
        Patches per training step.
    max_iters : int
        Training steps at most.
    time_budget : float or None
        Wall-clock limit of training in seconds (None: no limit).
    lr, lr_final : float
        Adam learning rate at the start and at ``max_iters`` (exponential decay between).
    patience : int
        Early stop when the smoothed loss has not improved by ``min_delta`` (relative) for this
        many steps.
    min_delta : float
        Relative improvement that resets the patience counter.
    tile : int
        Core size of inference tiles (grid cells); each tile also gets a halo. Independent of
        the dask chunk size of lazy inputs.
    inference_dtype : str
        ``"float32"`` (default) or ``"bfloat16"``: autocast of inference to bfloat16, about 2x
        less GPU memory and faster on recent GPUs; results differ by about 1e-2 of the data's
        standard deviation.
    sample_patches : int
        Dask-backed (lazy) inputs: distinct training patches cut from the scene (at random,
        seeded), each computed on its own with its starting field; the scene is never loaded.
    prior_margin : int
        Dask-backed inputs: cells of context around each training patch and each dask chunk
        when computing the TV-L1 starting field piece by piece.
    max_displacement : float or None
        Dask-backed inputs: largest displacement (grid cells over the whole interval) that sets
        the overlap between chunks for the frames. None (default) measures it in one extra pass
        over the flow; a chunk whose motion exceeds a value given here is clamped to it, with a warning.
    """

    codec: str = "learned"
    latent_channels: int = 4
    encoder_width: int = 8
    unet_width: int = 8
    unet_levels: int = 3
    stages: int = 8
    flow_sees_last: bool = True
    flow_scale: float = 8.0
    flow_pool: int = 4
    stationary: bool = True
    flow_prior: str | None = "svf"
    motion_choice: str = "objective"
    prior_relax: float = 0.25
    motion_transform: str = "auto"
    prior_coarsen: int | None = None
    l_ae: float = 1.0
    l_lat: float = 0.0
    l_mag: float = 1e-4
    l_smooth: float = 10.0
    l_time: float = 10.0
    l_bend: float = 100.0
    l_transport: float = 1.0
    pyramid: int = 5
    patch: int = 64
    stride: int = 16
    batch_size: int = 4
    max_iters: int = 400
    time_budget: float | None = None
    lr: float = 3e-3
    lr_final: float = 3e-4
    patience: int = 150
    min_delta: float = 1e-3
    tile: int = 512
    inference_dtype: str = "float32"
    sample_patches: int = 256
    prior_margin: int = 32
    max_displacement: float | None = None

    def __post_init__(self) -> None:
        """Check every field (types and ranges) at construction, so that ``from_dict``,
        ``dataclasses.replace`` and the options of :func:`xlatent.interpolate` all fail before
        any work, with a :class:`~xlatent.exceptions.ConfigError` naming the field."""
        for name, value in check_values(asdict(self)).items():
            setattr(self, name, value)

    @property
    def alignment(self) -> int:
        """Tile and patch origins are multiples of this (see :attr:`ModelConfig.alignment`)."""
        return _alignment(self.unet_levels, self.flow_pool)

    def model_part(self) -> ModelConfig:
        """The architecture: what the weights depend on (saved with them)."""
        return ModelConfig(**{k: getattr(self, k) for k in MODEL_FIELDS})

    def train_part(self) -> TrainConfig:
        """The training settings."""
        return TrainConfig(**{k: getattr(self, k) for k in TRAIN_FIELDS})

    def run_part(self) -> RunOptions:
        """The options of a run (tile, ``inference_dtype``, dask overlaps)."""
        return RunOptions(**{k: getattr(self, k) for k in RUN_FIELDS})

    @classmethod
    def from_parts(cls, model: ModelConfig, train: TrainConfig | None = None,
                   run: RunOptions | None = None) -> LatentConfig:
        """The flat configuration of three parts (defaults for a part not given)."""
        parts = (model, train or TrainConfig(), run or RunOptions())
        return cls(**{k: v for part in parts for k, v in part.to_dict().items()})

    def for_scene(self, shape: tuple[int, int]) -> LatentConfig:
        """The configuration with the scene-dependent defaults (``prior_coarsen``) fixed."""
        if self.prior_coarsen is not None:
            return self
        coarsen = 1 if shape[0] * shape[1] <= _LARGE_SCENE else self.flow_pool
        return replace(self, prior_coarsen=int(coarsen))

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LatentConfig:
        """Build from a dict, rejecting unknown keys with a clear message."""
        _check_names(cls, values)
        # saved before the stationary model existed: per-stage fields, weights shaped for them
        values = {"stationary": False, **values} if "stationary" not in values else values
        return cls(**values)


def _alignment(unet_levels: int, flow_pool: int) -> int:
    return 2 ** (unet_levels - 1) * flow_pool


def _check_names(cls: type, values: Mapping[str, Any]) -> None:
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"Unknown {cls.__name__} option(s): {sorted(unknown)}. Known: {sorted(known)}.")


def check_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration ``values`` checked (types and ranges), whole numbers as int; only the
    fields present are checked, so a part or a few run options check the same way.

    Raises
    ------
    ConfigError
        Naming the first field with a bad value.
    """
    out = dict(values)
    for name, low in _WHOLE.items():
        if name in out:
            out[name] = whole(name, out[name], low, floats=True)
    for name, (low, strict) in _REAL.items():
        if name in out:
            out[name] = real(name, out[name], low, strict)
    if out.get("prior_coarsen") is not None:
        out["prior_coarsen"] = whole("prior_coarsen", out["prior_coarsen"], 1, floats=True, prefix="None or ")
    for name in ("time_budget", "max_displacement"):
        if out.get(name) is not None:
            out[name] = real(name, out[name], 0.0, True, "None or ")
    for name in ("flow_sees_last", "stationary"):
        if name in out:
            if not isinstance(out[name], (bool, np.bool_)):
                _fail(f"{name} must be True or False, got {out[name]!r}.")
            out[name] = bool(out[name])
    for name, allowed in _CHOICES.items():
        if name in out and out[name] not in allowed:
            _fail(f"Unknown {name} {out[name]!r}: use one of {', '.join(map(repr, allowed))}.")
    if "flow_prior" in out:
        if out["flow_prior"] is not None and not isinstance(out["flow_prior"], str):
            _fail(f"flow_prior must be None or a name ({', '.join(map(repr, available()))}), got {out['flow_prior']!r}.")
        check_options(out["flow_prior"] or "tvl1", out.get("motion_transform", "auto"), what="flow_prior")
    elif "motion_transform" in out:
        check_options("tvl1", out["motion_transform"])
    return out


class _Part:
    """A frozen part of :class:`LatentConfig`: fields checked at construction."""

    def __post_init__(self) -> None:
        for name, value in check_values(asdict(self)).items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """The part as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]):
        """Build from a dict, rejecting unknown keys with a clear message."""
        _check_names(cls, values)
        return cls(**values)


def _part(name: str, names: tuple[str, ...], doc: str, namespace: dict | None = None) -> type:
    """A frozen dataclass of the ``names`` fields of :class:`LatentConfig`, with its defaults."""
    specs = [(f.name, f.type, field(default=f.default)) for f in fields(LatentConfig) if f.name in names]
    return make_dataclass(name, specs, bases=(_Part,), frozen=True,
                          namespace={"__doc__": doc, "__module__": __name__, **(namespace or {})})


ModelConfig = _part("ModelConfig", MODEL_FIELDS, """The architecture of the latent model: what its weights depend on.

    Frozen; saved with the weights. Fields as in :class:`LatentConfig`: ``codec``,
    ``latent_channels``, ``encoder_width``, ``unet_width``, ``unet_levels``, ``stages``,
    ``flow_sees_last``, ``flow_scale``, ``flow_pool``, ``stationary``, ``flow_prior``,
    ``motion_choice``, ``prior_relax``, ``motion_transform``, ``prior_coarsen``.
    """, {"alignment": property(lambda self: _alignment(self.unet_levels, self.flow_pool),
                                doc="Tile and patch origins must be multiples of this (the U-Nets' pooling "
                                    "grid, in cells) for tiled runs to equal untiled ones.")})
TrainConfig = _part("TrainConfig", TRAIN_FIELDS, """How the latent model is trained: loss weights, patches, steps, learning rate.

    Frozen. Fields as in :class:`LatentConfig`: ``l_ae``, ``l_lat``, ``l_mag``, ``l_smooth``,
    ``l_time``, ``l_bend``, ``l_transport``, ``pyramid``, ``patch``, ``stride``, ``batch_size``,
    ``max_iters``, ``time_budget``, ``lr``, ``lr_final``, ``patience``, ``min_delta``,
    ``sample_patches``.
    """)
RunOptions = _part("RunOptions", RUN_FIELDS, """Options of one run of a fitted model, chosen per call.

    Frozen. Fields as in :class:`LatentConfig`: ``tile``, ``inference_dtype``,
    ``prior_margin``, ``max_displacement``. :func:`xlatent.load` takes new ``tile`` and
    ``inference_dtype`` for a saved model.
    """)
