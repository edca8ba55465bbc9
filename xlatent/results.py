"""The xarray results of the interpolators: frames and flow from a method's arrays (the
normalisation undone, clipped, masked, the maps added from :data:`xlatent.cf.MAPS`) and the CF
attributes every output carries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from xlatent import cf, geo
from xlatent._version import __version__
from xlatent.config import LatentConfig
from xlatent.pair import Pair


def chunked_like(mask, values):
    """A dask ``mask`` in the spatial chunks of dask ``values`` (the model's, which may differ
    from the input's): the output then keeps one task per model chunk, no chunk of it depending
    on two model chunks. Numpy passes through."""
    return mask.rechunk(values.chunks[-2:]) if hasattr(mask, "rechunk") and hasattr(values, "chunks") else mask


def frames_xr(pair: Pair, frames: np.ndarray, fractions: np.ndarray, attrs: dict, clip: bool = True) -> xr.DataArray:
    """The frames DataArray from ``(K, C, H, W)`` normalised ``frames`` at ``fractions``: the
    normalisation undone, clipped to the inputs' range (``clip``), NaN where an input is missing."""
    values = geo.denormalise(frames, pair.mean, pair.std, pair.source.dtype)
    if clip:  # per channel, to the range spanned by the two inputs (rain rate stays >= 0)
        lo, hi = pair.value_range
        values = np.clip(values, lo[None, :, None, None], hi[None, :, None, None])
    # the first frame is valid where the first image is, the last where the last is, the others
    # where both are; one broadcast expression (no per-frame slices) keeps a dask graph one task
    # per chunk, so that a writer stores each chunk's frames as soon as they are computed
    at_first = (fractions == 0)[:, None, None, None]
    at_last = (fractions == 1)[:, None, None, None]
    first_ok, last_ok = chunked_like(pair.valid_first, values), chunked_like(pair.valid_last, values)
    valid = (first_ok | at_last) & (last_ok | at_first)  # broadcast, (K, 1, H, W)
    values = np.where(valid, values, np.nan)  # numpy or dask
    return geo.frames_to_xarray(values, pair.source, pair.grid, pair.t_last, fractions, attrs)


def flow_xr(pair: Pair, fields: np.ndarray, attrs: dict, kind: str | None = None,
             maps: Mapping[str, np.ndarray] | None = None) -> xr.Dataset:
    """The flow Dataset: ``u``/``v`` from the stage fields, and one variable per per-cell map
    (``MethodResult.maps``: ``confidence``...), described by :data:`xlatent.cf.MAPS`, NaN where
    an input is missing, on the grid with the input's CRS link (:func:`xlatent.geo.add_map`)."""
    n = fields.shape[0]
    fields = np.where(chunked_like(pair.mask, fields), fields, np.nan)  # numpy or dask
    mid = (np.arange(n) + 0.5) / n
    flow = geo.flow_to_xarray(fields[:, 0], fields[:, 1], pair.source, pair.grid, pair.t_last, mid, attrs)
    flow = cf.describe_flow(flow, kind, cf.lon_lat_axes(pair.source, pair.grid), pair.grid.x_dim, pair.grid.y_dim)
    for name, values in (maps or {}).items():
        values = np.where(pair.mask, np.asarray(values, dtype=np.float32), np.nan)
        flow = geo.add_map(flow, name, values, pair.source, pair.grid, cf.MAPS[name])
    return flow


def provenance(method: str, info: Mapping[str, Any], *, source: xr.DataArray | None = None,
                config: LatentConfig | None = None, call: str | None = None) -> dict:
    """Attributes of every output: CF ``Conventions``, ``history`` (the input's, plus ``call``),
    xlatent version, method, device and (for the latent model) its configuration as JSON."""
    attrs = {"Conventions": cf.CONVENTIONS, "xlatent_version": __version__, "xlatent_method": method}
    attrs.update({f"xlatent_{k}": v for k, v in info.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)})
    if config is not None:
        attrs["xlatent_config"] = json.dumps(config.to_dict(), sort_keys=True)
    previous = None if source is None else source.attrs.get("history")
    attrs["history"] = cf.append_history(previous, call or method)
    return attrs
