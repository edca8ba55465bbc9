"""One whole-number rule (:mod:`xlatent.checks`) behind every numeric option, each option keeping
what it accepted; one decoder of CF time (:func:`xlatent.geo.cf_time_values`)."""

import numpy as np
import pytest
import xarray as xr

import xlatent
from xlatent import checks, geo
from xlatent.datasets import wave_equation
from xlatent.exceptions import ConfigError, InputError


@pytest.mark.parametrize("value", [3, np.int64(3)])
def test_whole_takes_integers(value):
    assert checks.whole("n", value, 1) == 3 and type(checks.whole("n", value, 1)) is int


@pytest.mark.parametrize("value", [3.0, True, np.bool_(True), "3", None, 0, 2.5])
def test_whole_refuses_the_rest(value):
    with pytest.raises(ConfigError, match="n must be a whole number >= 1"):
        checks.whole("n", value, 1)


@pytest.mark.parametrize("value", [3.0, np.float32(3.0), 3])
def test_whole_floats_when_asked(value):
    assert checks.whole("n", value, 1, floats=True) == 3


@pytest.mark.parametrize("value", [2.5, float("nan"), float("inf"), 0.0])
def test_whole_floats_refuses_fractions_and_non_finite(value):
    with pytest.raises(InputError, match="n must be None or a whole number >= 1"):
        checks.whole("n", value, 1, floats=True, prefix="None or ", exc=InputError)


def test_each_option_keeps_its_rule():
    """Configuration fields take a whole float (as read from JSON); call arguments do not."""
    assert xlatent.LatentConfig(max_iters=400.0).max_iters == 400
    assert xlatent.ForecastConfig(max_iters=4.0).max_iters == 4
    wave = wave_equation(8, 5)
    with pytest.raises(ConfigError, match="horizon must be a whole number >= 1"):
        wave.latentdyn.forecast(horizon=2.0, context=2, method="persistence")
    with pytest.raises(ConfigError, match="context must be a whole number >= 2"):
        wave.latentdyn.forecast(horizon=2, context=1, method="flow")


def test_real():
    assert checks.real("x", 2, 0.0, True) == 2.0
    with pytest.raises(ConfigError, match="x must be a finite number > 0"):
        checks.real("x", 0.0, 0.0, True)


def test_cf_time_values_decodes_only_undecoded_time():
    numbers = xr.DataArray([0.0, 5.0], dims="time", attrs={"units": "minutes since 2024-01-01"})
    np.testing.assert_array_equal(geo.cf_time_values(numbers),
                                  np.array(["2024-01-01T00:00", "2024-01-01T00:05"], dtype="datetime64[ns]"))
    decoded = xr.DataArray(np.array(["2024-01-01"], dtype="datetime64[ns]"), dims="time")
    np.testing.assert_array_equal(geo.cf_time_values(decoded), decoded.values)
    plain = xr.DataArray([1.0, 2.0], dims="time", attrs={"units": "s"})
    np.testing.assert_array_equal(geo.cf_time_values(plain), [1.0, 2.0])
