"""Property: on any small pair, every method gives a named error or finite output wherever both
inputs are valid; never a crash, never a silent all-NaN answer.

Random pairs (16-24 cells a side) with NaN, inf, undeclared (huge) and declared fill values,
float32/float64/int16 data, ascending or descending coords and good or bad times. The trained
methods and ``ot`` run in a subprocess, so that a segmentation fault fails the test instead of
the test run. Examples are bounded and derandomised (the same every run).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xlatent
from xlatent.exceptions import XlatentError

BAD_FLOAT = ("none", "nan", "inf", "huge", "fill", "nan_block")
BAD_INT = ("none", "fill")
FILL = {"float": -9999.0, "int16": -32768}
HUGE = (9.969209968386869e36, -3.4028235e38, 1e31)


def limited(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=list(HealthCheck))


@dataclass
class Case:
    first: xr.DataArray
    last: xr.DataArray
    valid_first: np.ndarray  # (y, x) in the arrays' order
    valid_last: np.ndarray
    undeclared: bool  # holds huge values nobody declared: must be an InputError
    description: str

    def __repr__(self) -> str:
        return f"Case({self.description})"


def _image(rng, ny, nx, shift, scale, dtype):
    yy, xx = np.mgrid[0:ny, 0:nx]
    blob = np.exp(-(((xx - nx / 3 - shift) / 3.0) ** 2 + ((yy - ny / 2) / 3.0) ** 2))
    values = scale * (blob + 0.1 * rng.normal(size=(ny, nx)))
    return np.round(values * 100).astype(dtype) if dtype == "int16" else values.astype(dtype)


def _spoil(rng, values, kind, dtype):
    """Put bad cells of ``kind`` into ``values`` (in place); the attrs and validity they give."""
    ny, nx = values.shape
    valid = np.ones((ny, nx), bool)
    attrs, undeclared = {}, False
    if kind == "none":
        return valid, attrs, undeclared
    if kind == "nan_block":
        r, c = rng.integers(0, ny - 4), rng.integers(0, nx - 4)
        values[r : r + 4, c : c + 4] = np.nan
        valid[r : r + 4, c : c + 4] = False
        return valid, attrs, undeclared
    cells = rng.choice(ny * nx, size=int(rng.integers(1, 6)), replace=False)
    rows, cols = np.unravel_index(cells, (ny, nx))
    valid[rows, cols] = False
    if kind == "nan":
        values[rows, cols] = np.nan
    elif kind == "inf":
        values[rows, cols] = rng.choice([np.inf, -np.inf], size=len(rows))
    elif kind == "huge":
        values[rows, cols] = HUGE[int(rng.integers(len(HUGE)))] if dtype != "float32" else HUGE[0]
        undeclared = True
    elif kind == "fill":
        fill = FILL["int16" if dtype == "int16" else "float"]
        values[rows, cols] = fill
        attrs["_FillValue"] = fill
    return valid, attrs, undeclared


@st.composite
def cases(draw) -> Case:
    ny, nx = draw(st.integers(16, 24)), draw(st.integers(16, 24))
    dtype = draw(st.sampled_from(["float32", "float64", "int16"]))
    scale = 1.0 if dtype == "int16" else draw(st.sampled_from([1.0, 1e-6, 1e4, 1e20]))
    bad = BAD_INT if dtype == "int16" else BAD_FLOAT
    kind_first, kind_last = draw(st.sampled_from(bad)), draw(st.sampled_from(bad))
    y_desc, x_desc = draw(st.booleans()), draw(st.booleans())
    metres = draw(st.booleans())
    time = draw(st.sampled_from(["none", "1h", "10min", "1ns", "equal", "reversed", "only_first"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))

    a, b = _image(rng, ny, nx, 0, scale, dtype), _image(rng, ny, nx, 2, scale, dtype)
    va, attrs_a, huge_a = _spoil(rng, a, kind_first, dtype)
    vb, attrs_b, huge_b = _spoil(rng, b, kind_last, dtype)
    step = 1000.0 if metres else 1.0
    ys, xs = np.arange(ny) * step, np.arange(nx) * step
    ys, xs = (ys[::-1] if y_desc else ys), (xs[::-1] if x_desc else xs)
    units = {"units": "m"} if metres else {}
    coords = {"y": ("y", ys, units), "x": ("x", xs, units)}
    first = xr.DataArray(a, dims=("y", "x"), coords=coords, name="v", attrs=attrs_a)
    last = xr.DataArray(b, dims=("y", "x"), coords=coords, name="v", attrs=attrs_b)
    t0 = np.datetime64("2024-01-01T00:00", "ns")
    gaps = {"1h": np.timedelta64(1, "h"), "10min": np.timedelta64(10, "m"), "1ns": np.timedelta64(1, "ns"),
            "equal": np.timedelta64(0, "s"), "reversed": np.timedelta64(-1, "h")}
    if time in gaps:
        first, last = first.assign_coords(time=t0), last.assign_coords(time=t0 + gaps[time])
    elif time == "only_first":
        first = first.assign_coords(time=t0)
    text = (f"{ny}x{nx} {dtype} x{scale:g} first:{kind_first} last:{kind_last} y_desc={y_desc} x_desc={x_desc} "
            f"metres={metres} time={time}")
    return Case(first, last, va, vb, huge_a or huge_b, text)


def check(case: Case, method: str, **options) -> None:
    """The property, for one pair and one method."""
    kept = (case.first.copy(deep=True), case.last.copy(deep=True))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # warnings are allowed (inf cells, speed, time)
            frames, flow = xlatent.interpolate(case.first, case.last, steps=2, method=method, progress=False,
                                               **options)
    except XlatentError:
        return
    finally:
        xr.testing.assert_identical(case.first, kept[0])  # never mutated
        xr.testing.assert_identical(case.last, kept[1])
    assert not case.undeclared, f"{case.description}: an undeclared fill value was taken for data"
    both = case.valid_first & case.valid_last
    values = frames.transpose("time", "y", "x").values
    assert np.isfinite(values[0][case.valid_first]).all(), case.description
    assert np.isfinite(values[-1][case.valid_last]).all(), case.description
    assert np.isfinite(values[:, both]).all(), case.description
    if flow is not None:
        for name in ("u", "v"):
            assert np.isfinite(flow[name].transpose("time", "y", "x").values[:, both]).all(), (name, case.description)


@limited(40)
@given(cases())
def test_linear(case):
    check(case, "linear")


@limited(15)
@given(cases())
def test_flow(case):
    check(case, "flow")


# -- in a subprocess: torch's grid_sample (trained methods) and POT (ot) are native code ----

TINY = {"max_iters": 2, "stages": 2, "batch_size": 2}


@limited(6)
@given(cases())
def latent_property(case):
    check(case, "latent", **TINY)


@limited(6)
@given(cases())
def advection_property(case):
    check(case, "advection", **TINY)


@limited(8)
@given(cases())
def ot_property(case):
    check(case, "ot", ot_grid=8)


def test_trained_methods_and_ot_in_a_subprocess():
    import importlib.util

    from test_reliability import run_isolated

    has_ot = importlib.util.find_spec("ot") is not None
    run_isolated(f"""
        import test_properties as p
        p.latent_property()
        p.advection_property()
        if {has_ot}:
            p.ot_property()
    """, timeout=600)
