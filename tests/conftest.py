import os

import numpy as np
import pytest
import xarray as xr

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import xlatent  # noqa: E402
from xlatent import datasets  # noqa: E402

QUICK = {"max_iters": 8, "progress": False}


@pytest.fixture(scope="session")
def rotation_case():
    return datasets.rotation(size=48, steps=4)


@pytest.fixture(scope="session")
def translation_case():
    return datasets.translation(size=64, steps=6)


@pytest.fixture(scope="session")
def quick_result(rotation_case):
    """One cheap interpolation shared by the contract tests."""
    return xlatent.interpolate(rotation_case.first, rotation_case.last, steps=4, **QUICK)


def plain_pair(ny=32, nx=40, seed=0):
    """A pair with no CRS, no time, dims y/x and plain coords."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(ny, nx)).astype("float32")
    coords = {"y": np.arange(ny, dtype=float), "x": np.arange(nx, dtype=float)}
    a = xr.DataArray(base, dims=("y", "x"), coords=coords, name="field")
    b = xr.DataArray(np.roll(base, 1, axis=1), dims=("y", "x"), coords=coords, name="field")
    return a, b
