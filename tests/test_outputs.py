"""The outputs are built in one place (``xlatent.results``): every method, in memory and on dask,
links ``u``, ``v``, every per-cell map and the frames to the input's grid mapping, whatever its
name (issue 23, item 14)."""

import warnings

import numpy as np
import pytest

import xlatent
from xlatent import datasets
from xlatent.methods.base import MethodResult

# cheap settings: the link is under test, not the motion (the maps: the last test)
METHODS = [("linear", {}), ("flow", {"motion": "tvl1"}), ("ot", {"ot_grid": 8}),
           ("advection", {"max_iters": 1, "flow_prior": None})]


@pytest.fixture(scope="module")
def crs_named_crs():
    """A pair whose grid-mapping variable is called ``crs``, not ``spatial_ref``."""
    case = datasets.rotation(size=24, steps=2)

    def rename(da):
        da = da.drop_vars("spatial_ref")
        da.encoding.pop("grid_mapping", None)
        return da.rio.write_crs("EPSG:3413", grid_mapping_name="crs")

    return rename(case.first), rename(case.last)


@pytest.mark.parametrize("lazy", [False, True], ids=["memory", "dask"])
@pytest.mark.parametrize(("method", "options"), METHODS, ids=[m for m, _ in METHODS])
def test_every_output_keeps_the_grid_mapping_link(crs_named_crs, method, options, lazy):
    first, last = crs_named_crs
    if lazy:
        first, last = first.chunk({"y": 12}), last.chunk({"y": 12})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the lazy path's notes on loading
        frames, flow = xlatent.interpolate(first, last, steps=2, method=method, progress=False, **options)
    outputs = [frames] + ([] if flow is None else [flow[v] for v in flow.data_vars])
    for var in outputs:
        assert var.encoding.get("grid_mapping") == "crs", var.name
        assert var.rio.crs == "EPSG:3413", var.name
        assert "spatial_ref" not in var.coords, f"{var.name}: a second, stale grid mapping"
    if method != "linear":
        assert {"u", "v"} <= set(flow.data_vars)


def test_a_method_map_becomes_a_cf_variable(monkeypatch, crs_named_crs):
    """A method returns its per-cell maps in ``MethodResult.maps``; the flow Dataset gets each one,
    described by ``xlatent.cf.MAPS``, NaN where an input is missing."""
    from xlatent.methods import base

    def constant(first, last, mask, fractions, **_):
        k, (c, h, w) = len(fractions), first.shape
        return MethodResult(np.zeros((k, c, h, w), np.float32), np.zeros((1, 2, h, w), np.float32),
                            maps={"confidence": np.full((h, w), 0.25, np.float32)})

    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    base.register("constant")(constant)
    first, last = crs_named_crs
    values = last.values.copy()
    values[:, 0] = np.nan  # one missing column
    last = last.copy(data=values)
    _, flow = xlatent.interpolate(first, last, steps=2, method="constant", progress=False)
    conf = flow["confidence"]
    assert conf.attrs["units"] == "1" and conf.attrs["long_name"] == "confidence of the motion estimate"
    assert np.isnan(conf.values[:, 0]).all() and np.all(conf.values[:, 1:] == 0.25)
    assert conf.encoding["grid_mapping"] == "crs"
