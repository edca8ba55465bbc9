"""The latent forecaster's settings: :class:`ForecastConfig` and the options that override it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from xlatent.checks import real, whole
from xlatent.exceptions import ConfigError

_WHOLE = {"static_channels": 1, "dynamic_channels": 1, "width": 1, "ode_hidden": 1, "ode_blocks": 1,
          "train_horizon": 1, "patch": 4, "stride": 1, "batch_size": 1, "max_iters": 1, "patience": 1,
          "validation": 0, "val_every": 1, "val_patience": 1}
_REAL = {"lambda_pred": (0.0, False), "lambda_ae": (0.0, False), "lambda_s": (0.0, False), "lr": (0.0, True),
         "min_delta": (0.0, False)}


@dataclass
class ForecastConfig:
    """Sizes, loss weights and training settings of the latent forecaster.

    The loss weights and the optimiser are the paper's defaults (Donà et al. 2021, appendix E.3):
    ``lambda_pred = 45``, ``lambda_s = 45``, ``lambda_t = p/2 * 1e-3`` with ``p`` the size of
    ``T_0`` on a training patch (``lambda_t=None``), Adam with learning rate ``4e-4`` and
    ``betas = (0.9, 0.99)``, no decay. ``lambda_ae = 10`` is the paper's value for SST with
    vector states and Moving MNIST (it used 1 for WaveEq and 0.1 for 2-D SST states).

    Attributes
    ----------
    static_channels, dynamic_channels : int
        Channels of the latent maps ``S`` and ``T`` (1/4 of the frame a side).
    width : int
        Channels of the encoders' and decoder's first level (twice that below).
    ode_hidden, ode_blocks : int
        Hidden channels and number ``K`` of residual blocks of the integrator (the paper's 2-D
        SST variant: 128 and 2).
    static : bool
        False: the paper's ablation without ``S``.
    train_horizon : int
        Frames predicted after the context in each training window (the paper's WaveEq: 20).
    patch, stride : int
        Training patch size (cells a side, rounded down to a multiple of 4) and the stride of the
        grid of patch origins.
    batch_size, max_iters, patience, min_delta, time_budget : ...
        Windows per step, most steps, early stop after ``patience`` steps without a relative
        improvement of ``min_delta`` of the smoothed loss, and a wall-clock limit in seconds.
    validation, val_every, val_patience : int
        The last ``validation`` windows of each series are never drawn for training: every
        ``val_every`` steps the forecast error on them (a few fixed patches) is computed, training
        stops after ``val_patience`` evaluations without improvement, and the weights of the best
        evaluation are kept. ``validation=0`` trains on every window for ``max_iters`` steps.

    The defaults are sized for a CPU: a 128 x 128 series of 40 frames trains in about a minute
    on 2 cores (``benchmarks/forecast_cost.py``). The paper's sizes are ``width=32,
    ode_hidden=64, train_horizon=8`` and thousands of steps (a GPU's work).
    """

    static_channels: int = 32
    dynamic_channels: int = 16
    width: int = 16
    ode_hidden: int = 32
    ode_blocks: int = 2
    static: bool = True
    train_horizon: int = 6
    patch: int = 64
    stride: int = 8
    batch_size: int = 8
    lambda_pred: float = 45.0
    lambda_ae: float = 10.0
    lambda_s: float = 45.0
    lambda_t: float | None = None
    lr: float = 4e-4
    betas: tuple[float, float] = (0.9, 0.99)
    max_iters: int = 300
    patience: int = 100
    min_delta: float = 1e-3
    time_budget: float | None = None
    validation: int = 2
    val_every: int = 25
    val_patience: int = 4

    def __post_init__(self) -> None:
        for name, low in _WHOLE.items():
            setattr(self, name, whole(name, getattr(self, name), low, floats=True))
        for name, (low, strict) in _REAL.items():
            setattr(self, name, real(name, getattr(self, name), low, strict))
        if self.lambda_t is not None:
            self.lambda_t = real("lambda_t", self.lambda_t, 0.0, False, "None or ")
        if self.time_budget is not None:
            self.time_budget = real("time_budget", self.time_budget, 0.0, True, "None or ")
        if not isinstance(self.static, (bool, np.bool_)):
            raise ConfigError(f"static must be True or False, got {self.static!r}.")
        betas = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else ()
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas!r}.")
        self.betas = (float(betas[0]), float(betas[1]))

    def to_dict(self) -> dict:
        """The configuration as a JSON-serialisable dict (saved with the weights)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ForecastConfig:
        """Build from a dict, rejecting unknown keys with a :class:`ConfigError` that lists them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown forecaster option(s) {unknown}; known: {', '.join(sorted(known))}.")
        return cls(**values)


def resolve_config(config: ForecastConfig | None, options: dict) -> ForecastConfig:
    """``config`` (or the defaults) with ``options`` replacing single fields, checked."""
    if config is not None and not isinstance(config, ForecastConfig):
        raise ConfigError(f"config must be an xlatent.ForecastConfig or None, got {type(config).__name__}.")
    base = config or ForecastConfig()
    if options:
        ForecastConfig.from_dict({**base.to_dict(), **options})  # validates the names and values
        base = replace(base, **options)
    return base
