"""Whole series: ``interp`` and ``accumulate`` (xlatent.series) and the ``Series`` type, on tiny
synthetic series (32 x 32, TV-L1 motion: well under a second per interval)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import xlatent
from xlatent import datasets
from xlatent import series as xs
from xlatent.exceptions import ConfigError, GapWarning, NotARateError, OutsideSpanError, SeriesError

FAST = {"motion": "tvl1"}
HOUR = np.timedelta64(1, "h")


@pytest.fixture(scope="module")
def rain() -> xr.DataArray:
    """Rain rate (mm h-1) moving and growing, 7 frames 2 h apart, 32 x 32 cells of 1 km."""
    return datasets.analytic("growth", size=32, steps=6).frames.drop_vars("interp_fraction")


def _every(series: xr.DataArray, step: np.timedelta64) -> np.ndarray:
    t = series.time.values
    return np.arange(t[0], t[-1] + np.timedelta64(1, "ns"), step).astype("datetime64[ns]")


def test_input_times_give_the_inputs_exactly(rain):
    rain = rain.isel(time=slice(0, 4))
    wanted = _every(rain, HOUR)
    frames, flow = rain.latentdyn.interp(time=wanted, progress=False, **FAST)
    assert frames.sizes["time"] == wanted.size
    np.testing.assert_array_equal(frames.time.values, wanted)
    np.testing.assert_array_equal(frames.sel(time=rain.time.values).values, rain.values)
    inside = frames.isel(time=1).values
    assert np.isfinite(inside).all() and not np.array_equal(inside, rain.values[0])
    assert flow.sizes["time"] == rain.sizes["time"] - 1  # one motion per input interval
    np.testing.assert_array_equal(flow.time_bnds.values[:, 0], rain.time.values[:-1])


def test_irregular_steps_render_each_interval_as_its_pair(rain):
    irregular = rain.isel(time=[0, 1, 3, 4])  # steps of 2, 4 and 2 hours
    t = irregular.time.values
    wanted = np.array([t[2] - HOUR, t[0] + HOUR, t[1] + HOUR, t[1] + 3 * HOUR])  # any order
    frames, _ = xs.interp(irregular, wanted, progress=False, **FAST)
    np.testing.assert_array_equal(frames.time.values, wanted)
    pair, _ = xlatent.interpolate(irregular.isel(time=1), irregular.isel(time=2), fractions=[0.25, 0.75],
                                  method="flow", progress=False, **FAST)
    np.testing.assert_allclose(frames.values[2], pair.values[0], atol=1e-5)
    np.testing.assert_allclose(frames.values[3], pair.values[1], atol=1e-5)
    np.testing.assert_allclose(frames.values[0], pair.values[1], atol=1e-5)


def test_gaps_longer_than_max_gap_are_nan_with_a_warning(rain):
    irregular = rain.isel(time=[0, 1, 3, 4])
    wanted = _every(irregular, HOUR)
    with pytest.warns(GapWarning, match="max_gap"):
        frames, flow = xs.interp(irregular, wanted, max_gap="3h", progress=False, **FAST)
    gap = (frames.time > irregular.time[1]) & (frames.time < irregular.time[2])
    assert np.isnan(frames.where(gap, drop=True).values).all()
    assert np.isfinite(frames.where(~gap, drop=True).values).all()
    assert np.isnan(flow.u.isel(time=1).values).all() and np.isfinite(flow.u.isel(time=0).values).all()


def test_lazy_equals_eager_on_the_threaded_scheduler(rain):
    import dask

    wanted = _every(rain.isel(time=slice(0, 3)), HOUR)
    eager, eager_flow = xs.interp(rain.isel(time=slice(0, 3)), wanted, progress=False, **FAST)
    lazy, lazy_flow = xs.interp(rain.isel(time=slice(0, 3)).chunk({"time": 1}), wanted, progress=False, **FAST)
    assert lazy.chunks is not None and lazy_flow.u.chunks is not None
    with dask.config.set(scheduler="threads", num_workers=2):
        lazy, lazy_flow = dask.compute(lazy, lazy_flow)
    for a, b in ((lazy, eager), (lazy_flow, eager_flow)):
        a.attrs.pop("history"), b.attrs.pop("history")
        xr.testing.assert_identical(a, b)


def test_outputs_carry_cf_attributes_and_crs_through_netcdf(rain, tmp_path):
    frames, flow = xs.interp(rain.isel(time=slice(0, 2)), _every(rain.isel(time=slice(0, 2)), HOUR), progress=False, **FAST)
    totals = xlatent.accumulate(rain.isel(time=slice(0, 2)), "1h", substep="30min", progress=False, **FAST)
    for obj, name in ((frames, "frames.nc"), (flow, "flow.nc"), (totals, "totals.nc")):
        obj.to_netcdf(tmp_path / name)
        back = xr.open_dataset(tmp_path / name, decode_coords="all")
        var = back[list(back.data_vars)[0]]
        assert var.rio.crs == rain.rio.crs
        assert back.attrs.get("Conventions", var.attrs.get("Conventions")) == "CF-1.8"
    assert frames.attrs["units"] == "mm h-1" and "interp(" in frames.attrs["history"]
    assert flow.u.attrs["units"] == "m s-1" and flow.u.attrs["cell_methods"] == "time: mean"
    back = xr.open_dataset(tmp_path / "flow.nc", decode_coords="all")
    np.testing.assert_array_equal(back.time_bnds.values, flow.time_bnds.values)
    assert totals.attrs["cell_methods"] == "time: sum" and totals.attrs["units"] == "mm"


def test_outside_the_span_and_bad_series_are_named_errors(rain):
    with pytest.raises(OutsideSpanError, match="extrapolate"):
        xs.interp(rain, [rain.time.values[-1] + HOUR], progress=False)
    with pytest.raises(SeriesError, match="strictly increase"):
        xs.interp(rain.isel(time=[0, 2, 1]), rain.time.values[:1], progress=False)
    with pytest.raises(SeriesError, match="without any finite value"):
        xs.interp(rain.where(rain.time != rain.time[1]), rain.time.values[:1], progress=False)
    filled = rain.where(rain.time != rain.time[2], -1.0).assign_attrs(_FillValue=-1.0)
    with pytest.raises(SeriesError, match=r"without any finite value \(all NaN\) at time index \[2\]"):
        xs.interp(filled, rain.time.values[:1], progress=False)
    with pytest.raises(SeriesError, match="time dimension"):
        xs.interp(rain.isel(time=0), rain.time.values[:1], progress=False)
    with pytest.raises(ConfigError, match="fractions"):
        xlatent.interpolate(rain.isel(time=0), rain.isel(time=1), fractions=[0.5, 1.5], method="linear")


def test_model_and_options_flow_through_to_interpolate(rain, monkeypatch):
    seen = []
    real = xlatent.api.interpolate

    def spy(first, last, **kwargs):
        seen.append(dict(kwargs))
        kwargs.pop("model")
        kwargs["method"] = "flow"
        return real(first, last, **kwargs)

    monkeypatch.setattr(xlatent.api, "interpolate", spy)
    marker = object()
    xs.interp(rain.isel(time=slice(0, 2)), rain.time.values[:1] + HOUR, model=marker, progress=False, **FAST)
    # with model= and no method=, each pair is rendered by the model (method "archive"), not "flow"
    assert seen and all(k["model"] is marker and k["motion"] == "tvl1" and k["method"] == "archive" for k in seen)


def test_accumulate_of_a_constant_rate_is_rate_times_duration():
    t = np.datetime64("2024-01-01T00:00", "ns") + np.arange(5) * np.timedelta64(30, "m")
    series = xr.DataArray(np.full((5, 32, 32), 2.5, np.float32), dims=("time", "y", "x"),
                          coords={"time": t, "y": np.arange(32.0)[::-1] * 1000, "x": np.arange(32.0) * 1000},
                          attrs={"units": "mm/h"})
    totals = xlatent.accumulate(series, "1h", method="linear", progress=False)
    np.testing.assert_array_equal(totals.time.values, t[[2, 4]])  # labelled at the period ends
    np.testing.assert_array_equal(totals.period_start.values, t[[0, 2]])
    np.testing.assert_allclose(totals.values, 2.5, rtol=1e-6)
    per_second = series.assign_attrs(units="kg m-2 s-1") / 3600
    totals = xlatent.accumulate(per_second.assign_attrs(units="kg m-2 s-1"), "30min", method="linear", progress=False)
    np.testing.assert_allclose(totals.values, 1.25, rtol=1e-5)


def test_accumulate_is_closed_on_the_right_and_linear_is_the_trapezoid_sum(rain):
    series = rain.isel(time=slice(0, 4))  # 00:00 to 06:00, 2 h steps
    totals = xlatent.accumulate(series, "3h", method="linear", progress=False)
    np.testing.assert_array_equal(totals.time.values, series.time.values[0] + np.array([3, 6]) * HOUR)
    v = series.values.astype(np.float64)
    mid = (v[1] + v[2]) / 2  # the linear rate at 03:00
    first = (v[0] + v[1]) + (v[1] + mid) / 2  # trapezoid 00-02 (2 h) and 02-03 (1 h)
    np.testing.assert_allclose(totals.values[0], first, rtol=1e-5, atol=1e-6)


def test_accumulate_along_the_motion_is_never_negative_and_keeps_the_crs(rain):
    totals = xlatent.accumulate(rain.isel(time=slice(0, 3)), "2h", substep="20min", progress=False, **FAST)
    assert totals.sizes["time"] == 2 and (totals.values >= 0).all()
    assert totals.rio.crs == rain.rio.crs
    linear = xlatent.accumulate(rain.isel(time=slice(0, 3)), "2h", method="linear", progress=False)
    assert not np.allclose(totals.values, linear.values)  # the motion changes the totals


def test_accumulate_refuses_what_is_not_a_rate(rain):
    for units in ("dBZ", "mm", None):
        da = rain.assign_attrs(units=units) if units else rain.drop_attrs()
        with pytest.raises(NotARateError, match="not a rate"):
            xlatent.accumulate(da, "1h", progress=False)


def test_wobble_and_quantile_matching(rain):
    series = rain.isel(time=slice(0, 3))
    linear, _ = xs.interp(series, _every(series, np.timedelta64(30, "m")), method="linear", progress=False)
    assert xs.wobble(linear, series.time.values) == pytest.approx(1.0, abs=1e-3)
    a, b = series.values[0], series.values[1]
    matched = xs.match_quantiles((a + b) / 2, a, b, 0.0)
    np.testing.assert_allclose(np.sort(matched.ravel()), np.sort(a.ravel()), rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frames, _ = xs.interp(series, _every(series, HOUR), match=True, progress=False, **FAST)
    np.testing.assert_array_equal(frames.sel(time=series.time.values).values, series.values)


def test_accumulate_at_a_substep_is_the_trapezoid_sum_of_interp_frames(rain):
    import dask

    series = rain.isel(time=slice(0, 3))
    totals = xlatent.accumulate(series, "2h", substep="30min", progress=False, **FAST)
    frames, _ = xs.interp(series, _every(series, np.timedelta64(30, "m")), progress=False, **FAST)
    for end, total in zip(totals.time.values, totals.values):
        v = frames.sel(time=slice(end - 2 * HOUR, end)).values.astype(np.float64)
        np.testing.assert_allclose(total, 0.5 * (v[1:] + v[:-1]).sum(0) / 2, rtol=1e-5, atol=1e-5)
    lazy = xlatent.accumulate(series.chunk({"time": 1}), "2h", substep="30min", progress=False, **FAST)
    assert lazy.chunks is not None
    with dask.config.set(scheduler="threads", num_workers=2):
        np.testing.assert_array_equal(lazy.values, totals.values)


def test_interp_on_a_distributed_cluster_equals_eager(rain):
    distributed = pytest.importorskip("dask.distributed")
    series = rain.isel(time=slice(0, 3))
    wanted = _every(series, 3 * HOUR)
    eager, _ = xs.interp(series, wanted, progress=False, **FAST)
    # in-process workers: the cluster mechanics under test cost under a second here
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        lazy, _ = xs.interp(series.chunk({"time": 1}), wanted, progress=False, **FAST)
        np.testing.assert_array_equal(lazy.values, eager.values)
