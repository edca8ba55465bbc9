"""The fitted latent model's owner: how it is built, and its saved state.

:class:`~xlatent.methods.latent.LatentCore` (the model, its device, tiling and rendering) is
reached through this module by :mod:`xlatent.api` and :mod:`xlatent.chunked`; its state is
written and read here only: :func:`core_state` gives a JSON-able description and the weights as
numpy arrays (picklable without torch, what a dask task or a model file holds), and
:func:`core_from_state` builds the model back, on any device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xlatent.config import LatentConfig
from xlatent.methods.latent import LatentCore

__all__ = ["LatentCore", "core_from_state", "core_state"]


def core_state(core: LatentCore) -> tuple[dict, dict[str, np.ndarray]]:
    """The state of a fitted model.

    Parameters
    ----------
    core : LatentCore
        The fitted model.

    Returns
    -------
    meta : dict
        JSON-able: ``channels``, ``config`` (:meth:`LatentConfig.to_dict`), ``mean`` and ``std``
        (the per-channel normalisation, lists of floats).
    tensors : dict of str to numpy.ndarray
        The weights (torch's ``state_dict``, on the CPU, as numpy arrays).
    """
    meta = {
        "channels": core.model.channels,
        "config": core.config.to_dict(),
        "mean": np.asarray(core.mean, np.float32).tolist(),
        "std": np.asarray(core.std, np.float32).tolist(),
    }
    tensors = {k: v.detach().cpu().numpy() for k, v in core.model.state_dict().items()}
    return meta, tensors


def core_from_state(meta: Mapping[str, Any], tensors: Mapping[str, Any], device: Any = "auto") -> LatentCore:
    """The model described by ``meta`` with the weights ``tensors``, on ``device``.

    Parameters
    ----------
    meta : mapping
        As given by :func:`core_state` (a model file's description has these keys too).
    tensors : mapping of str to numpy.ndarray or torch.Tensor
        The weights.
    device : str or torch.device
        Where to build it (``"auto"``: CUDA, else MPS, else CPU).

    Returns
    -------
    LatentCore
    """
    import torch

    core = LatentCore(int(meta["channels"]), LatentConfig.from_dict(meta["config"]), device, None,
                      meta.get("mean") or None, meta.get("std") or None)
    core.model.load_state_dict({k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v
                                for k, v in tensors.items()})
    return core
