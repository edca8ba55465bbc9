"""Tensors stay on the device they are given (checked without a GPU: see ``strict_device``)."""

import numpy as np
import pytest
import torch
from conftest import strict_device

from xlatent.config import LatentConfig
from xlatent.engine import LatentCore


def test_strict_device_catches_a_factory_call_without_device():
    x = torch.ones(1, 2, 3, 3)
    with strict_device(), pytest.raises(RuntimeError, match="device"):
        _ = torch.tensor([0.5]).view(-1, 1, 1, 1) * x


def test_latent_frames_build_every_tensor_on_the_model_device():
    # the fractions tensor of LatentCore._run was made on the CPU: "found at least two devices,
    # cuda:0 and cpu" on the first GPU it met
    rng = np.random.default_rng(0)
    first, last = rng.normal(size=(2, 1, 16, 16)).astype(np.float32)
    core = LatentCore(1, LatentConfig(), device="cpu", seed=0)
    fields = np.zeros((core.config.stages, 2, 16, 16), np.float32)
    with strict_device():
        frames = core.frames(first, last, fields, np.array([0.0, 0.5, 1.0]))
    assert frames.shape == (3, 1, 16, 16) and np.isfinite(frames).all()
