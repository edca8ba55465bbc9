"""Bad input gets a named error that says what is wrong; inputs are never mutated."""

import numpy as np
import pytest
import xarray as xr
from conftest import LATENT, plain_pair

import xlatent
from xlatent.exceptions import (
    GridMismatchError,
    InputError,
    InputTypeError,
    SpatialDimsError,
    TimeOrderError,
    UnknownMethodError,
    XlatentError,
)


def test_different_shapes():
    a, _ = plain_pair()
    b, _ = plain_pair(32, 36)
    with pytest.raises(GridMismatchError, match="reproject_match"):
        xlatent.interpolate(a, b, **LATENT)


def test_different_coords():
    a, b = plain_pair()
    b = b.assign_coords(x=b.x + 0.5)
    with pytest.raises(GridMismatchError, match="'x'"):
        xlatent.interpolate(a, b, **LATENT)


def test_different_crs():
    a, b = plain_pair()
    with pytest.raises(GridMismatchError, match="CRS"):
        xlatent.interpolate(a.rio.write_crs("EPSG:3413"), b.rio.write_crs("EPSG:3031"), **LATENT)


def test_different_dims():
    a, b = plain_pair()
    with pytest.raises(GridMismatchError, match="Dims"):
        xlatent.interpolate(a, b.transpose("x", "y"), **LATENT)


def test_image_smaller_than_patch():
    a, b = plain_pair()
    with pytest.raises(InputError, match="larger than the image"):
        xlatent.interpolate(a, b, patch=64, **LATENT)


def test_image_too_small():
    a, b = plain_pair(8, 8)
    with pytest.raises(InputError, match="too small"):
        xlatent.interpolate(a, b, **LATENT)


def test_all_nan():
    a, b = plain_pair()
    with pytest.raises(InputError, match="no finite value"):
        xlatent.interpolate(a * np.nan, b, **LATENT)


def test_non_numeric():
    a, b = plain_pair()
    with pytest.raises(InputTypeError, match="dtype"):
        xlatent.interpolate(a.astype(str), b.astype(str), **LATENT)


def test_not_a_dataarray():
    a, b = plain_pair()
    with pytest.raises(InputTypeError, match="DataArray"):
        xlatent.interpolate(a.values, b, **LATENT)


@pytest.mark.parametrize("steps", [0, -1, 2.5, True])
def test_bad_steps(steps):
    a, b = plain_pair()
    with pytest.raises(InputError, match="steps"):
        xlatent.interpolate(a, b, steps=steps, **LATENT)


def test_time_not_increasing():
    a, b = plain_pair()
    a = a.assign_coords(time=np.datetime64("2024-01-02", "ns"))
    b = b.assign_coords(time=np.datetime64("2024-01-01", "ns"))
    with pytest.raises(TimeOrderError, match="Swap"):
        xlatent.interpolate(a, b, **LATENT)


def test_unknown_spatial_dims():
    a, b = plain_pair()
    a, b = a.rename(y="p", x="q"), b.rename(y="p", x="q")
    with pytest.raises(SpatialDimsError, match="x_dim"):
        xlatent.interpolate(a, b, **LATENT)


def test_time_dim_left_in():
    a, b = plain_pair()
    with pytest.raises(SpatialDimsError, match="isel"):
        xlatent.interpolate(a.expand_dims(time=2), b.expand_dims(time=2), **LATENT)


def test_unknown_method_and_option():
    a, b = plain_pair()
    with pytest.raises(UnknownMethodError, match="latent"):
        xlatent.interpolate(a, b, method="magic")
    with pytest.raises(xlatent.XlatentError, match="Unknown LatentConfig"):
        xlatent.interpolate(a, b, not_an_option=1, **LATENT)


def test_errors_share_a_base():
    assert issubclass(GridMismatchError, XlatentError) and issubclass(GridMismatchError, ValueError)


def test_inputs_are_not_mutated():
    a, b = plain_pair()
    a[:3, :3] = np.nan
    a = a.rio.write_crs("EPSG:3413").assign_coords(time=np.datetime64("2024-01-01", "ns"))
    b = b.rio.write_crs("EPSG:3413").assign_coords(time=np.datetime64("2024-01-02", "ns"))
    a.attrs["note"] = "keep"
    before_a, before_b = a.copy(deep=True), b.copy(deep=True)
    xlatent.interpolate(a, b, steps=2, **LATENT)
    xr.testing.assert_identical(a, before_a)
    xr.testing.assert_identical(b, before_b)
    assert a.encoding == before_a.encoding
