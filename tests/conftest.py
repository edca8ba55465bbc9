import contextlib
import os

import numpy as np
import pytest
import xarray as xr

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# One intra-op thread (torch, BLAS) unless the caller sets it: the tests' tensors are small, so
# threads cost more in synchronisation than they give (measured on 2 idle cores, 3 training tests:
# 41 s at one thread, 55 s at two; 13x slower at two when the cores are shared).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import xlatent  # noqa: E402
from xlatent import datasets  # noqa: E402

QUICK = {"max_iters": 8, "progress": False}
LATENT = {"method": "latent", **QUICK}  # interpolate's default is flow since issue 21


@pytest.fixture(scope="session")
def rotation_case():
    return datasets.rotation(size=48, steps=4)


@pytest.fixture(scope="session")
def translation_case():
    return datasets.translation(size=64, steps=6)


@pytest.fixture(scope="session")
def quick_result(rotation_case):
    """One cheap interpolation shared by the contract tests."""
    return xlatent.interpolate(rotation_case.first, rotation_case.last, steps=4, **LATENT)


def plain_pair(ny=32, nx=40, seed=0):
    """A pair with no CRS, no time, dims y/x and plain coords."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(ny, nx)).astype("float32")
    coords = {"y": np.arange(ny, dtype=float), "x": np.arange(nx, dtype=float)}
    a = xr.DataArray(base, dims=("y", "x"), coords=coords, name="field")
    b = xr.DataArray(np.roll(base, 1, axis=1), dims=("y", "x"), coords=coords, name="field")
    return a, b


@contextlib.contextmanager
def strict_device():
    """Any tensor created without an explicit ``device=`` lands on torch's ``meta`` device, and
    mixing it with the real tensors raises: CI has no GPU, yet this catches the tensor that a
    GPU run would find on the wrong device (a factory call that forgets ``device=``)."""
    import torch

    torch.set_default_device("meta")
    try:
        yield
    finally:
        torch.set_default_device(None)
