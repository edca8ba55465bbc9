"""Maps of frames and motion: matplotlib and cartopy (the ``plot`` extra, imported lazily).

Every map is drawn in the data's own CRS (``frames.rio.crs`` through cartopy; lat/lon grids on
``PlateCarree``), so a polar stereographic scene stays polar stereographic and the arrows of the
flow need no rotation: ``u`` points toward increasing x coordinate and ``v`` toward increasing y
coordinate, whatever the row order of the array. Without a CRS the maps are plain axes in the
data's coordinates (y increasing upward).

Figures are made with :mod:`matplotlib.pyplot`, so they show in notebooks and with
``plt.show()``; close them with ``plt.close(fig)`` when you make many. With ``path=`` the image is
also written, atomically (a temporary file in the same folder, then a rename).

Maps in a CRS carry a longitude/latitude graticule labelled in degrees; plain axes (no CRS) are
labelled with the coordinate names. Coastlines (``coastlines=True``) are drawn only when cartopy's
Natural Earth coastline files are already on disk (``cartopy.config["data_dir"]``); otherwise a
warning and a note on the figure say so. xlatent never makes cartopy download them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xlatent import geo
from xlatent.exceptions import InputError, InputTypeError
from xlatent.io import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["frames", "flow", "animate", "overview"]

_INSTALL = "pip install 'xlatent[plot]'"
_DEFAULT_DENSITY = 25  # arrows across the wider side of the map
_PANEL_INCHES = 3.6


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"xlatent.plot needs matplotlib and cartopy: {_INSTALL}") from err
    return plt


def _cartopy_crs():
    try:
        import cartopy.crs as ccrs
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"Maps in the data's CRS need cartopy: {_INSTALL}") from err
    return ccrs


# --------------------------------------------------------------------------- inputs


def _as_frames(frames: Any, channel: int | Hashable | None, label: str = "frames") -> xr.DataArray:
    """``frames`` as ``(time, y, x)`` (a single image gets a length-1 time dim)."""
    if not isinstance(frames, xr.DataArray):
        raise InputTypeError(
            f"{label} must be an xarray.DataArray of dims (time, y, x), got {type(frames).__name__}. "
            "For a Dataset, pick a variable: ds['name']."
        )
    y, x = geo.spatial_dims(frames)
    extra = [d for d in frames.dims if d not in (y, x, "time")]
    if len(extra) > 1:
        raise InputError(f"{label} has dims {tuple(frames.dims)}: expected (time, [channel], y, x).")
    if extra:
        dim = extra[0]
        if channel is None:
            frames = frames.isel({dim: 0})
        elif isinstance(channel, (int, np.integer)):
            frames = frames.isel({dim: int(channel)})
        else:
            frames = frames.sel({dim: channel})
    if "time" not in frames.dims:
        frames = frames.expand_dims("time")
    return frames.transpose("time", y, x)


def _as_flow(flow: Any) -> xr.Dataset:
    if not isinstance(flow, xr.Dataset) or "u" not in flow or "v" not in flow:
        raise InputTypeError(
            f"flow must be the xarray.Dataset of u and v returned by xlatent.interpolate, got "
            f"{type(flow).__name__}{'' if not isinstance(flow, xr.Dataset) else ' without u/v'}."
        )
    return flow


def _select_stage(flow: xr.Dataset, time: Any) -> xr.Dataset:
    """One stage of the flow (``int``: position; else a time stamp, nearest), or the time mean."""
    if "time" not in flow.dims:
        return flow
    if time is None:
        mean = flow.mean("time", keep_attrs=True)
        if "interp_fraction" in flow.coords:
            mean = mean.assign_coords(interp_fraction=float(flow["interp_fraction"].mean()))
        return mean
    if isinstance(time, (int, np.integer)):
        n = flow.sizes["time"]
        if not -n <= time < n:
            raise InputError(f"time={time} is out of range: the flow has {n} stage(s) (0..{n - 1}).")
        return flow.isel(time=int(time))
    return flow.sel(time=time, method="nearest")


def _fraction(da: xr.DataArray | xr.Dataset) -> float | None:
    if "interp_fraction" in da.coords and da["interp_fraction"].ndim == 0:
        return float(da["interp_fraction"])
    return None


def _nearest_slice(frames: xr.DataArray, fraction: float | None) -> xr.DataArray:
    """The frame nearest to ``fraction`` (the middle one when unknown)."""
    if fraction is None or "interp_fraction" not in frames.coords:
        return frames.isel(time=frames.sizes["time"] // 2)
    return frames.isel(time=int(np.argmin(np.abs(frames["interp_fraction"].values - fraction))))


# --------------------------------------------------------------------------- maps


def _map_crs(da: xr.DataArray | xr.Dataset, y: Hashable, x: Hashable):
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
    ccrs = _cartopy_crs()
    if crs is None or crs.is_geographic:
        return ccrs.PlateCarree()
    import pyproj

    proj = ccrs.Projection(pyproj.CRS.from_user_input(crs.to_wkt()))
    # A CRS without an area of use (custom or from WKT) has no bounds: take the data's extent
    # with a wide margin, so that the map and any coastline clip to something sensible.
    x0, x1, y0, y1 = _extent(da, y, x)
    pad = 2 * max(x1 - x0, y1 - y0)
    wanted = (x0 - pad, x1 + pad, y0 - pad, y1 + pad)
    if proj.bounds is not None:
        b = proj.bounds
        wanted = (min(b[0], wanted[0]), max(b[1], wanted[1]), min(b[2], wanted[2]), max(b[3], wanted[3]))
    proj.bounds = wanted
    proj.threshold = min(wanted[1] - wanted[0], wanted[3] - wanted[2]) / 1000.0
    return proj


def _coord(da, dim: Hashable) -> np.ndarray:
    if dim in da.coords:
        return np.asarray(da[dim].values, dtype=float)
    return np.arange(da.sizes[dim], dtype=float)


def _extent(da, y: Hashable, x: Hashable) -> tuple[float, float, float, float]:
    """Outer edges of the grid cells: (x0, x1, y0, y1), increasing."""
    out = []
    for dim in (x, y):
        c = _coord(da, dim)
        half = abs(c[1] - c[0]) / 2 if c.size > 1 else 0.5
        out += [float(np.nanmin(c) - half), float(np.nanmax(c) + half)]
    return tuple(out)


def _axes(fig, nrows: int, ncols: int, index: int, crs):
    if crs is None:
        ax = fig.add_subplot(nrows, ncols, index)
        ax.set_aspect("equal", adjustable="box")
        return ax
    return fig.add_subplot(nrows, ncols, index, projection=crs)


def _draw_field(ax, image: xr.DataArray, crs, y, x, *, cmap=None, vmin=None, vmax=None):
    kwargs = {} if crs is None else {"transform": crs}
    mesh = ax.pcolormesh(
        _coord(image, x), _coord(image, y), np.asarray(image.values, dtype=float),
        shading="nearest", cmap=cmap, vmin=vmin, vmax=vmax, **kwargs,
    )
    _set_extent(ax, image, crs, y, x)
    return mesh


def _set_extent(ax, da, crs, y, x) -> None:
    x0, x1, y0, y1 = _extent(da, y, x)
    if crs is None:
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)  # increasing upward, never inverted: +v points up
        ax.set_xlabel(str(x))
        ax.set_ylabel(str(y))
    else:
        ax.set_extent((x0, x1, y0, y1), crs=crs)
        _graticule(ax)


def _graticule(ax) -> None:
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


def _no_coastlines(axes: list, why: str) -> None:
    """Say on the figure itself that the coastlines asked for are not drawn, and why."""
    axes[0].figure.text(0.99, 0.0, f"no coastlines: {why}", fontsize="x-small", ha="right", va="bottom",
                        color="0.3")


def _coastlines(axes: list, crs) -> None:
    """Coastlines from Natural Earth files already on disk; a warning and a note on the figure
    instead of a download."""
    if crs is None:
        warnings.warn("coastlines=True ignored: the data has no CRS.", UserWarning, stacklevel=3)
        _no_coastlines(axes, "the data has no CRS")
        return
    import cartopy
    from cartopy.io import Downloader

    ccrs = _cartopy_crs()
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
    _no_coastlines(axes, "Natural Earth files not on disk (offline; xlatent never downloads them)")
    warnings.warn(
        f"coastlines skipped: no Natural Earth coastline files under {cartopy.config['data_dir']} "
        "(xlatent never lets cartopy download them). Fetch them once where there is network, e.g. "
        "cartopy.io.shapereader.natural_earth(resolution='50m'), or set cartopy.config['data_dir'].",
        UserWarning,
        stacklevel=3,
    )


def _label(da: xr.DataArray | None, fallback: str = "") -> str:
    if da is None:
        return fallback
    name = da.attrs.get("long_name") or (str(da.name) if da.name is not None else fallback)
    units = da.attrs.get("units")
    return f"{name} [{units}]" if units else str(name)


def _stamp(da) -> str:
    """Title of a slice: its time stamp and/or interp_fraction."""
    parts = []
    if "time" in da.coords and da["time"].ndim == 0:
        value = da["time"].values
        if np.issubdtype(np.asarray(value).dtype, np.datetime64):
            parts.append(np.datetime_as_string(value, unit="m").replace("T", " "))
        elif not np.issubdtype(np.asarray(value).dtype, np.number):
            parts.append(str(np.asarray(value).item())[:16])
    fraction = _fraction(da)
    if fraction is not None:
        parts.append(f"t = {fraction:.2f}")
    return "\n".join(parts)


def _limits(values: np.ndarray, vmin, vmax) -> tuple[float | None, float | None]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return vmin, vmax
    return (float(finite.min()) if vmin is None else vmin), (float(finite.max()) if vmax is None else vmax)


# --------------------------------------------------------------------------- arrows


def _thin(stage: xr.Dataset, y, x, density: int | None) -> xr.Dataset:
    """Block means so that about ``density`` arrows span the wider side."""
    across = max(stage.sizes[y], stage.sizes[x])
    factor = max(1, int(round(across / (density or _DEFAULT_DENSITY))))
    if factor == 1:
        return stage
    return stage.coarsen({y: factor, x: factor}, boundary="trim").mean(keep_attrs=True)


def _nice(value: float) -> float:
    """1, 2 or 5 times a power of ten, near ``value``."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** np.floor(np.log10(value))
    return float(min((1, 2, 5, 10), key=lambda m: abs(np.log(m * power / value))) * power)


def _draw_flow(ax, stage: xr.Dataset, crs, y, x, *, density=None, style="quiver", color="k"):
    """Quiver (with key) or streamlines of one flow stage; returns the matplotlib artist."""
    units = stage["u"].attrs.get("units", "")
    if style == "streamplot":
        from matplotlib.axes import Axes

        # increasing, evenly spaced coords as streamplot needs; at most ~100 cells across
        ordered = _thin(stage, y, x, 100).sortby([x, y])
        u = np.ma.masked_invalid(ordered["u"].transpose(y, x).values)
        v = np.ma.masked_invalid(ordered["v"].transpose(y, x).values)
        speed = np.hypot(u, v)
        # The map is in the flow's own CRS, so the plain matplotlib streamplot in data
        # coordinates is exact; cartopy's would regrid through scipy's griddata (slow).
        return Axes.streamplot(
            ax, _coord(ordered, x), _coord(ordered, y), u, v, color=color,
            density=(density or _DEFAULT_DENSITY) / 30.0, linewidth=0.5 + 1.5 * speed / (speed.max() or 1),
            arrowsize=0.8,
        )
    kwargs = {} if crs is None else {"transform": crs}
    if style != "quiver":
        raise InputError(f"style must be 'quiver' or 'streamplot', got {style!r}.")
    thin = _thin(stage, y, x, density)
    xs, ys = np.meshgrid(_coord(thin, x), _coord(thin, y))
    u = thin["u"].transpose(y, x).values
    v = thin["v"].transpose(y, x).values
    speed = np.hypot(u, v)
    typical = float(np.nanpercentile(speed, 90)) if np.isfinite(speed).any() else 0.0
    key = _nice(typical) if typical > 0 else 1.0
    # angles="xy": each arrow points from (x, y) toward (x + u, y + v) in the map's coordinates,
    # which is the documented meaning of u and v whatever the row order of the array. Lengths in
    # map units too: a typical (90th percentile) arrow spans 0.9 of the spacing between arrows.
    spacing = float(np.abs(np.diff(_coord(thin, x))).mean()) if thin.sizes[x] > 1 else 1.0
    scale = (typical or 1.0) / (0.9 * spacing)
    q = ax.quiver(xs, ys, u, v, color=color, angles="xy", scale_units="xy", scale=scale, width=0.004, **kwargs)
    ax.quiverkey(q, 0.98, 1.02, key, f"{key:g} {units}", labelpos="W", coordinates="axes",
                 fontproperties={"size": "small"})
    return q


# --------------------------------------------------------------------------- output


def _save(fig, path: str | os.PathLike | None) -> None:
    """Write the figure atomically (:func:`xlatent.io.atomic_write`)."""
    if path is None:
        return
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    with atomic_write(path, f".{fmt}") as tmp:
        fig.savefig(tmp, format=fmt, dpi=120, bbox_inches="tight")


# --------------------------------------------------------------------------- public


def frames(
    frames: xr.DataArray,
    *,
    times: Sequence[int] | None = None,
    col_wrap: int = 4,
    cmap: Any = None,
    vmin: float | None = None,
    vmax: float | None = None,
    coastlines: bool = False,
    path: str | os.PathLike | None = None,
    channel: int | Hashable | None = None,
) -> Figure:
    """Panel of frames on maps in the data's CRS, one colour scale for all.

    Parameters
    ----------
    frames : xarray.DataArray
        ``(time, y, x)`` as returned by :func:`xlatent.interpolate` (a single ``(y, x)`` image
        works too), optionally with a channel dim.
    times : sequence of int, optional
        Positions along ``time`` to show; all frames by default.
    col_wrap : int
        Panels per row.
    cmap : str or matplotlib colormap, optional
        Colour map (matplotlib's default otherwise).
    vmin, vmax : float, optional
        Colour scale limits; by default the minimum and maximum over the frames shown.
    coastlines : bool
        Draw coastlines, only from Natural Earth files already on disk (never downloaded).
    path : str or path-like, optional
        Also write the figure there (format from the suffix, PNG by default), atomically.
    channel : int or label, optional
        With a channel dim, the channel to show: a position (int) or a label; the first one
        by default.

    Returns
    -------
    matplotlib.figure.Figure
        Titles give each frame's time stamp and ``interp_fraction``; the colour bar is labelled
        with the variable's ``long_name`` and ``units``.
    """
    plt = _pyplot()
    data = _as_frames(frames, channel)
    if times is not None:
        data = data.isel(time=list(times))
    y, x = geo.spatial_dims(data)
    crs = _map_crs(data, y, x)
    lo, hi = _limits(np.asarray(data.values, dtype=float), vmin, vmax)
    n = data.sizes["time"]
    ncols = max(1, min(int(col_wrap), n))
    nrows = -(-n // ncols)
    fig = plt.figure(figsize=(_PANEL_INCHES * ncols + 1.0, _PANEL_INCHES * nrows), layout="constrained")
    axes = []
    for k in range(n):
        ax = _axes(fig, nrows, ncols, k + 1, crs)
        mesh = _draw_field(ax, data.isel(time=k), crs, y, x, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(_stamp(data.isel(time=k)), fontsize="small")
        axes.append(ax)
    if coastlines:
        _coastlines(axes, crs)
    if crs is None:
        fig.text(0.01, 0.0, "no CRS: axes in the data's coordinates", fontsize="x-small", va="bottom")
    fig.colorbar(mesh, ax=axes, shrink=0.8, label=_label(data))
    _save(fig, path)
    return fig


def flow(
    flow: xr.Dataset,
    background: xr.DataArray | None = None,
    *,
    time: Any = None,
    density: int | None = None,
    style: str = "quiver",
    coastlines: bool = False,
    path: str | os.PathLike | None = None,
    channel: int | Hashable | None = None,
) -> Figure:
    """Arrows (or streamlines) of the motion field, over an optional background image.

    Parameters
    ----------
    flow : xarray.Dataset
        ``u``, ``v`` as returned by :func:`xlatent.interpolate`.
    background : xarray.DataArray, optional
        An image ``(y, x)`` or the frames ``(time, y, x)``; of frames, the one nearest in
        ``interp_fraction`` to the flow shown is drawn.
    time : int or datetime-like, optional
        The stage to show: a position along ``time`` (int) or a time stamp (nearest stage).
        By default the mean over all stages.
    density : int, optional
        About how many arrows span the wider side of the map (25 by default); the field is
        block-averaged to that. With ``style="streamplot"``, the spacing of the lines (30 gives
        matplotlib's ``density=1``).
    style : {"quiver", "streamplot"}
        Arrows with a key in the flow's units, or streamlines whose width grows with speed.
    coastlines : bool
        Draw coastlines, only from Natural Earth files already on disk (never downloaded).
    path : str or path-like, optional
        Also write the figure there (format from the suffix, PNG by default), atomically.
    channel : int or label, optional
        With a channel dim in ``background``, the channel to show (first by default).

    Returns
    -------
    matplotlib.figure.Figure
        Arrows point toward increasing x and y *coordinate* for positive ``u`` and ``v``, as the
        flow is defined; the map is in the flow's CRS, so no rotation is involved.
    """
    plt = _pyplot()
    stage = _select_stage(_as_flow(flow), time)
    y, x = geo.spatial_dims(stage["u"])
    crs = _map_crs(stage["u"], y, x)
    fig = plt.figure(figsize=(6.4, 5.6), layout="constrained")
    ax = _axes(fig, 1, 1, 1, crs)
    if background is not None:
        image = _nearest_slice(_as_frames(background, channel, "background"), _fraction(stage))
        mesh = _draw_field(ax, image, crs, y, x, cmap="Greys_r")
        fig.colorbar(mesh, ax=ax, shrink=0.8, label=_label(image))
    _draw_flow(ax, stage, crs, y, x, density=density, style=style, color="tab:red" if background is not None else "k")
    _set_extent(ax, stage, crs, y, x)
    which = "mean over stages" if time is None or "time" not in flow.dims else _stamp(stage).replace("\n", ", ")
    ax.set_title(f"flow ({which})", fontsize="small", loc="left")
    if coastlines:
        _coastlines([ax], crs)
    _save(fig, path)
    return fig


def overview(
    frames: xr.DataArray,
    flow: xr.Dataset | None = None,
    *,
    coastlines: bool = False,
    path: str | os.PathLike | None = None,
    channel: int | Hashable | None = None,
) -> Figure:
    """First, middle and last frame, and the mean flow over the middle frame, in one row.

    Parameters
    ----------
    frames : xarray.DataArray
        ``(time, [channel], y, x)`` frames from :func:`xlatent.interpolate`.
    flow : xarray.Dataset, optional
        Its ``u``, ``v``; without it (``method="linear"``) only the three frames are drawn.
    coastlines : bool
        Draw coastlines, only from Natural Earth files already on disk (never downloaded).
    path : str or path-like, optional
        Also write the figure there (format from the suffix, PNG by default), atomically.
    channel : int or label, optional
        With a channel dim, the channel to show (first by default).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    data = _as_frames(frames, channel)
    y, x = geo.spatial_dims(data)
    crs = _map_crs(data, y, x)
    n = data.sizes["time"]
    picks = sorted(set((0, n // 2, n - 1)))
    lo, hi = _limits(np.asarray(data.values, dtype=float), None, None)
    panels = len(picks) + (flow is not None)
    fig = plt.figure(figsize=(_PANEL_INCHES * panels + 1.0, _PANEL_INCHES + 0.4), layout="constrained")
    axes = []
    for k, pick in enumerate(picks):
        ax = _axes(fig, 1, panels, k + 1, crs)
        mesh = _draw_field(ax, data.isel(time=pick), crs, y, x, vmin=lo, vmax=hi)
        ax.set_title(_stamp(data.isel(time=pick)), fontsize="small")
        axes.append(ax)
    if flow is not None:
        stage = _select_stage(_as_flow(flow), None)
        ax = _axes(fig, 1, panels, panels, crs)
        _draw_field(ax, data.isel(time=picks[len(picks) // 2]), crs, y, x, cmap="Greys_r", vmin=lo, vmax=hi)
        _draw_flow(ax, stage, crs, y, x, density=16, color="tab:red")  # a small panel: fewer arrows
        ax.set_title("mean flow", fontsize="small")
        axes.append(ax)
    if coastlines:
        _coastlines(axes, crs)
    fig.colorbar(mesh, ax=axes[: len(picks)], shrink=0.8, label=_label(data))
    _save(fig, path)
    return fig


def animate(
    frames: xr.DataArray,
    path: str | os.PathLike,
    *,
    flow: xr.Dataset | None = None,
    fps: int = 4,
    channel: int | Hashable | None = None,
) -> Path:
    """Write a GIF of the frames, with the flow's arrows over each if given.

    Parameters
    ----------
    frames : xarray.DataArray
        ``(time, [channel], y, x)`` frames from :func:`xlatent.interpolate`.
    path : str or path-like
        The GIF to write (atomically: a temporary file beside it, then a rename).
    flow : xarray.Dataset, optional
        Its ``u``, ``v``; each frame shows the stage nearest to it in ``interp_fraction``.
    fps : int
        Frames per second.
    channel : int or label, optional
        With a channel dim, the channel to show (first by default).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    plt = _pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    data = _as_frames(frames, channel)
    y, x = geo.spatial_dims(data)
    crs = _map_crs(data, y, x)
    lo, hi = _limits(np.asarray(data.values, dtype=float), None, None)
    fig = plt.figure(figsize=(5.6, 5.0), layout="constrained")
    ax = _axes(fig, 1, 1, 1, crs)
    mesh = _draw_field(ax, data.isel(time=0), crs, y, x, vmin=lo, vmax=hi)
    fig.colorbar(mesh, ax=ax, shrink=0.8, label=_label(data))
    title = ax.set_title(_stamp(data.isel(time=0)), fontsize="small")
    arrows, stages = None, None
    if flow is not None:
        flow = _as_flow(flow)
        stages = flow if "time" in flow.dims else flow.expand_dims("time")
        arrows = _draw_flow(ax, stages.isel(time=0), crs, y, x, color="tab:red")

    def stage_of(k: int, frame: xr.DataArray) -> xr.Dataset:
        fraction = _fraction(frame)
        if fraction is None or "interp_fraction" not in stages.coords:  # spread stages evenly
            return stages.isel(time=min(k * stages.sizes["time"] // data.sizes["time"], stages.sizes["time"] - 1))
        return stages.isel(time=int(np.argmin(np.abs(stages["interp_fraction"].values - fraction))))

    def update(k: int):
        frame = data.isel(time=k)
        mesh.set_array(np.asarray(frame.values, dtype=float))
        title.set_text(_stamp(frame))
        if arrows is not None:
            thin = _thin(stage_of(k, frame), y, x, None)
            arrows.set_UVC(thin["u"].transpose(y, x).values, thin["v"].transpose(y, x).values)
        return (mesh, title)

    anim = FuncAnimation(fig, update, frames=data.sizes["time"], blit=False)
    path = Path(path)
    try:
        with atomic_write(path, ".gif") as tmp:
            anim.save(tmp, writer=PillowWriter(fps=fps), dpi=90)
    finally:
        plt.close(fig)
    return path
