"""Drawing on map axes, what :mod:`xlatent.plot`'s figures are made of: the CRS to draw in, the
extent, the graticule, coastlines (only from files already on disk), a field, the arrows of the
flow, and the figure written atomically. matplotlib and cartopy are imported when used."""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import xarray as xr

from xlatent import geo
from xlatent.atomic import atomic_write
from xlatent.exceptions import InputError

INSTALL = "pip install 'xlatent[plot]'"
DEFAULT_DENSITY = 25  # arrows across the wider side of the map


def fraction_of(da: xr.DataArray | xr.Dataset) -> float | None:
    """The scalar ``interp_fraction`` of a slice, or None."""
    if "interp_fraction" in da.coords and da["interp_fraction"].ndim == 0:
        return float(da["interp_fraction"])
    return None


def pyplot():
    """:mod:`matplotlib.pyplot`, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"xlatent.plot needs matplotlib and cartopy: {INSTALL}") from err
    return plt


def cartopy_crs():
    """:mod:`cartopy.crs`, or an ImportError that says how to install it."""
    try:
        import cartopy.crs as ccrs
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"Maps in the data's CRS need cartopy: {INSTALL}") from err
    return ccrs


# --------------------------------------------------------------------------- maps


def map_crs(da: xr.DataArray | xr.Dataset, y: Hashable, x: Hashable):
    """The cartopy CRS to draw ``da`` in, or None for plain axes."""
    try:  # geo registers rioxarray: the CRS is found whether or not the caller imported it
        crs = geo.read_crs(da)
    except Exception:
        crs = None
    degrees = str(x).lower() in ("lon", "longitude") or (
        x in da.coords and str(da[x].attrs.get("units", "")).startswith("degree")
    )
    if crs is None and not degrees:
        return None
    ccrs = cartopy_crs()
    if crs is None or crs.is_geographic:
        return ccrs.PlateCarree()
    import pyproj

    proj = ccrs.Projection(pyproj.CRS.from_user_input(crs.to_wkt()))
    # A CRS without an area of use (custom or from WKT) has no bounds: take the data's extent
    # with a wide margin, so that the map and any coastline clip to something sensible.
    x0, x1, y0, y1 = map_extent(da, y, x)
    pad = 2 * max(x1 - x0, y1 - y0)
    wanted = (x0 - pad, x1 + pad, y0 - pad, y1 + pad)
    if proj.bounds is not None:
        b = proj.bounds
        wanted = (min(b[0], wanted[0]), max(b[1], wanted[1]), min(b[2], wanted[2]), max(b[3], wanted[3]))
    proj.bounds = wanted
    proj.threshold = min(wanted[1] - wanted[0], wanted[3] - wanted[2]) / 1000.0
    return proj


def coord_values(da, dim: Hashable) -> np.ndarray:
    """The coordinate values along ``dim`` (positions when ``dim`` has no coordinate)."""
    if dim in da.coords:
        return np.asarray(da[dim].values, dtype=float)
    return np.arange(da.sizes[dim], dtype=float)


def map_extent(da, y: Hashable, x: Hashable) -> tuple[float, float, float, float]:
    """Outer edges of the grid cells: (x0, x1, y0, y1), increasing."""
    out = []
    for dim in (x, y):
        c = coord_values(da, dim)
        half = abs(c[1] - c[0]) / 2 if c.size > 1 else 0.5
        out += [float(np.nanmin(c) - half), float(np.nanmax(c) + half)]
    return tuple(out)


def map_axes(fig, nrows: int, ncols: int, index: int, crs):
    """Panel ``index`` of an ``nrows`` x ``ncols`` grid: map axes in ``crs``, or plain axes when None."""
    if crs is None:
        ax = fig.add_subplot(nrows, ncols, index)
        ax.set_aspect("equal", adjustable="box")
        return ax
    return fig.add_subplot(nrows, ncols, index, projection=crs)


def draw_field(ax, image: xr.DataArray, crs, y, x, *, cmap=None, vmin=None, vmax=None):
    """``image`` as a mesh on ``ax`` (in ``crs`` when given); the mesh."""
    kwargs = {} if crs is None else {"transform": crs}
    mesh = ax.pcolormesh(
        coord_values(image, x), coord_values(image, y), np.asarray(image.values, dtype=float),
        shading="nearest", cmap=cmap, vmin=vmin, vmax=vmax, **kwargs,
    )
    set_extent(ax, image, crs, y, x)
    return mesh


def set_extent(ax, da, crs, y, x) -> None:
    """Fit ``ax`` to the extent of ``da``."""
    x0, x1, y0, y1 = map_extent(da, y, x)
    if crs is None:
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)  # increasing upward, never inverted: +v points up
        ax.set_xlabel(str(x))
        ax.set_ylabel(str(y))
    else:
        ax.set_extent((x0, x1, y0, y1), crs=crs)
        graticule(ax)


def graticule(ax) -> None:
    """Longitude/latitude lines labelled in degrees on the bottom and left edges, and the axes
    named (once per map: the extent may be set again)."""
    if getattr(ax, "_xlatent_graticule", False):
        return
    from cartopy.mpl.ticker import LatitudeLocator, LongitudeLocator

    ax._xlatent_graticule = True
    # a few lines of 30 points each: cartopy projects every line at every draw (constrained layout
    # draws several times), and its defaults made a map 8x slower to save
    lines = ax.gridlines(draw_labels=True, linewidth=0.4, color="0.35", alpha=0.6, linestyle="--",
                         x_inline=False, y_inline=False, xlocs=LongitudeLocator(nbins=6),
                         ylocs=LatitudeLocator(nbins=6))
    lines.n_steps = 30
    lines.top_labels = lines.right_labels = False
    lines.xlabel_style = lines.ylabel_style = {"size": "x-small"}
    ax.text(0.5, -0.13, "longitude", transform=ax.transAxes, ha="center", va="top", fontsize="x-small")
    ax.text(-0.16, 0.5, "latitude", transform=ax.transAxes, ha="right", va="center", rotation=90,
            fontsize="x-small")


def no_coastlines(axes: list, why: str) -> None:
    """Say on the figure itself that the coastlines asked for are not drawn, and why."""
    axes[0].figure.text(0.99, 0.0, f"no coastlines: {why}", fontsize="x-small", ha="right", va="bottom",
                        color="0.3")


def coastlines(axes: list, crs) -> None:
    """Coastlines from Natural Earth files already on disk; a warning and a note on the figure
    instead of a download."""
    if crs is None:
        warnings.warn("coastlines=True ignored: the data has no CRS.", UserWarning, stacklevel=3)
        no_coastlines(axes, "the data has no CRS")
        return
    import cartopy
    from cartopy.io import Downloader

    ccrs = cartopy_crs()
    try:
        lon0, lon1, lat0, lat1 = axes[0].get_extent(ccrs.PlateCarree())
        span = max(lon1 - lon0, lat1 - lat0)
    except Exception:
        span = 360.0
    preferred = "10m" if span < 15 else "50m" if span < 50 else "110m"  # as cartopy's auto_scaler
    for resolution in [preferred] + [r for r in ("50m", "10m", "110m") if r != preferred]:
        spec = {"config": cartopy.config, "category": "physical", "name": "coastline", "resolution": resolution}
        loader = Downloader.from_config(("shapefiles", "natural_earth", resolution, "physical", "coastline"))
        pre = loader.pre_downloaded_path(spec)
        if (pre is not None and pre.exists()) or loader.target_path(spec).exists():
            for ax in axes:
                ax.coastlines(resolution=resolution, linewidth=0.6)
            return
    no_coastlines(axes, "Natural Earth files not on disk (offline; xlatent never downloads them)")
    warnings.warn(
        f"coastlines skipped: no Natural Earth coastline files under {cartopy.config['data_dir']} "
        "(xlatent never lets cartopy download them). Fetch them once where there is network, e.g. "
        "cartopy.io.shapereader.natural_earth(resolution='50m'), or set cartopy.config['data_dir'].",
        UserWarning,
        stacklevel=3,
    )


def label_of(da: xr.DataArray | None, fallback: str = "") -> str:
    """A colour-bar label: ``long_name`` (or the name, or ``fallback``) and ``units``."""
    if da is None:
        return fallback
    name = da.attrs.get("long_name") or (str(da.name) if da.name is not None else fallback)
    units = da.attrs.get("units")
    return f"{name} [{units}]" if units else str(name)


def stamp_of(da) -> str:
    """Title of a slice: its time stamp and/or interp_fraction."""
    parts = []
    if "time" in da.coords and da["time"].ndim == 0:
        value = da["time"].values
        if np.issubdtype(np.asarray(value).dtype, np.datetime64):
            parts.append(np.datetime_as_string(value, unit="m").replace("T", " "))
        elif not np.issubdtype(np.asarray(value).dtype, np.number):
            parts.append(str(np.asarray(value).item())[:16])
    fraction = fraction_of(da)
    if fraction is not None:
        parts.append(f"t = {fraction:.2f}")
    return "\n".join(parts)


def color_limits(values: np.ndarray, vmin, vmax) -> tuple[float | None, float | None]:
    """``vmin``/``vmax`` as given, else from the finite ``values``."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return vmin, vmax
    return (float(finite.min()) if vmin is None else vmin), (float(finite.max()) if vmax is None else vmax)


# --------------------------------------------------------------------------- arrows


def thinned(stage: xr.Dataset, y, x, density: int | None) -> xr.Dataset:
    """Block means so that about ``density`` arrows span the wider side."""
    across = max(stage.sizes[y], stage.sizes[x])
    factor = max(1, int(round(across / (density or DEFAULT_DENSITY))))
    if factor == 1:
        return stage
    return stage.coarsen({y: factor, x: factor}, boundary="trim").mean(keep_attrs=True)


def nice_number(value: float) -> float:
    """1, 2 or 5 times a power of ten, near ``value``."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** np.floor(np.log10(value))
    return float(min((1, 2, 5, 10), key=lambda m: abs(np.log(m * power / value))) * power)


def draw_flow(ax, stage: xr.Dataset, crs, y, x, *, density=None, style="quiver", color="k"):
    """Quiver (with key) or streamlines of one flow stage; returns the matplotlib artist."""
    units = stage["u"].attrs.get("units", "")
    if style == "streamplot":
        from matplotlib.axes import Axes

        # increasing, evenly spaced coords as streamplot needs; at most ~100 cells across
        ordered = thinned(stage, y, x, 100).sortby([x, y])
        u = np.ma.masked_invalid(ordered["u"].transpose(y, x).values)
        v = np.ma.masked_invalid(ordered["v"].transpose(y, x).values)
        speed = np.hypot(u, v)
        # The map is in the flow's own CRS, so the plain matplotlib streamplot in data
        # coordinates is exact; cartopy's would regrid through scipy's griddata (slow).
        return Axes.streamplot(
            ax, coord_values(ordered, x), coord_values(ordered, y), u, v, color=color,
            density=(density or DEFAULT_DENSITY) / 30.0, linewidth=0.5 + 1.5 * speed / (speed.max() or 1),
            arrowsize=0.8,
        )
    kwargs = {} if crs is None else {"transform": crs}
    if style != "quiver":
        raise InputError(f"style must be 'quiver' or 'streamplot', got {style!r}.")
    thin = thinned(stage, y, x, density)
    xs, ys = np.meshgrid(coord_values(thin, x), coord_values(thin, y))
    u = thin["u"].transpose(y, x).values
    v = thin["v"].transpose(y, x).values
    speed = np.hypot(u, v)
    typical = float(np.nanpercentile(speed, 90)) if np.isfinite(speed).any() else 0.0
    key = nice_number(typical) if typical > 0 else 1.0
    # angles="xy": each arrow points from (x, y) toward (x + u, y + v) in the map's coordinates,
    # which is the documented meaning of u and v whatever the row order of the array. Lengths in
    # map units too: a typical (90th percentile) arrow spans 0.9 of the spacing between arrows.
    spacing = float(np.abs(np.diff(coord_values(thin, x))).mean()) if thin.sizes[x] > 1 else 1.0
    scale = (typical or 1.0) / (0.9 * spacing)
    q = ax.quiver(xs, ys, u, v, color=color, angles="xy", scale_units="xy", scale=scale, width=0.004, **kwargs)
    ax.quiverkey(q, 0.98, 1.02, key, f"{key:g} {units}", labelpos="W", coordinates="axes",
                 fontproperties={"size": "small"})
    return q


# --------------------------------------------------------------------------- output


def save_figure(fig, path: str | os.PathLike | None) -> None:
    """Write the figure atomically (:func:`xlatent.io.atomic_write`)."""
    if path is None:
        return
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    with atomic_write(path, f".{fmt}") as tmp:
        fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight")
