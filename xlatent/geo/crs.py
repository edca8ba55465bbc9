"""The coordinate reference system of an input: read by rioxarray from its grid mapping or ``crs``
attr, or from CF grid-mapping attributes with pyproj; never dropped silently."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import xarray as xr

from xlatent.exceptions import CRSError


def _register_rio() -> None:
    """Register rioxarray's ``.rio`` accessor (a dependency; imported on first need so that
    ``import xlatent`` stays light)."""
    import rioxarray  # noqa: F401


_WKT_ATTRS = ("crs_wkt", "spatial_ref")


def read_crs(obj: xr.DataArray | xr.Dataset):
    """The CRS of ``obj`` (a ``rasterio.crs.CRS``) or None, rioxarray registered on the way: the
    same answer whether or not the caller imported rioxarray (see :func:`_crs`)."""
    return _crs(obj)


def _crs(da: xr.DataArray):
    """The CRS of ``da`` (a ``rasterio.crs.CRS``), or None when it declares none.

    Read by rioxarray from the grid-mapping coordinate (its WKT or CF parameters) or a ``crs``
    attr; a CF grid mapping rioxarray cannot read is tried with ``pyproj.CRS.from_cf`` (its
    parameters alone when its WKT is broken). A declared grid mapping that none of these reads is
    a :class:`~xlatent.exceptions.CRSError`: the CRS is never dropped silently.
    """
    _register_rio()
    error = None
    try:
        crs = da.rio.crs
    except Exception as err:  # rasterio's CRSError on a broken WKT or crs attr, RioXarrayError
        crs, error = None, err
    if crs is not None:
        return crs
    mapping = _grid_mapping_attrs(da)
    if mapping is None and error is None:
        return None
    found, cf_error = _crs_from_cf(mapping) if mapping is not None else (None, None)
    if found is not None:
        return found
    cause = error or cf_error
    where = f"grid mapping {_grid_mapping_name(da)!r}" if mapping is not None else "'crs' attribute"
    raise CRSError(
        f"The {where} of the input cannot be read as a coordinate reference system ({cause}). "
        "Fix it, e.g. da.rio.write_crs('EPSG:3413'), or drop it to work in grid cells: "
        "da.drop_vars('spatial_ref') / del da.attrs['crs']."
    ) from cause


def _grid_mapping_name(da: xr.DataArray) -> Hashable:
    return da.encoding.get("grid_mapping", da.attrs.get("grid_mapping", "spatial_ref"))


def _grid_mapping_attrs(da: xr.DataArray) -> dict | None:
    """Attributes of the grid-mapping coordinate when they describe a CRS, else None."""
    name = _grid_mapping_name(da)
    if not isinstance(name, Hashable) or name not in da.coords:
        return None
    attrs = dict(da.coords[name].attrs)
    return attrs if "grid_mapping_name" in attrs or any(k in attrs for k in _WKT_ATTRS) else None


def _crs_from_cf(attrs: dict) -> tuple[Any, Exception | None]:
    """``(rasterio CRS, None)`` from CF grid-mapping attributes, or ``(None, the error)``."""
    import pyproj
    from rasterio.crs import CRS

    error = None
    params = {k: v for k, v in attrs.items() if k not in _WKT_ATTRS}
    for candidate in (attrs, params):  # a broken WKT: the CF parameters alone
        if candidate is params and "grid_mapping_name" not in params:
            break
        try:
            return CRS.from_wkt(pyproj.CRS.from_cf(candidate).to_wkt()), None
        except Exception as err:  # pyproj's CRSError, rasterio's CRSError
            error = error or err
    return None, error
