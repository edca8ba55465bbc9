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

The figures are here; what they are drawn with (projection, graticule, coastlines, arrows) is
:mod:`xlatent.drawing`.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from xlatent import drawing, geo
from xlatent.atomic import atomic_write
from xlatent.exceptions import InputError, InputTypeError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["frames", "flow", "animate", "overview"]

_PANEL_INCHES = 3.6


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


def _nearest_slice(frames: xr.DataArray, fraction: float | None) -> xr.DataArray:
    """The frame nearest to ``fraction`` (the middle one when unknown)."""
    if fraction is None or "interp_fraction" not in frames.coords:
        return frames.isel(time=frames.sizes["time"] // 2)
    return frames.isel(time=int(np.argmin(np.abs(frames["interp_fraction"].values - fraction))))


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
    plt = drawing.pyplot()
    data = _as_frames(frames, channel)
    if times is not None:
        data = data.isel(time=list(times))
    y, x = geo.spatial_dims(data)
    crs = drawing.map_crs(data, y, x)
    lo, hi = drawing.color_limits(np.asarray(data.values, dtype=float), vmin, vmax)
    n = data.sizes["time"]
    ncols = max(1, min(int(col_wrap), n))
    nrows = -(-n // ncols)
    fig = plt.figure(figsize=(_PANEL_INCHES * ncols + 1.0, _PANEL_INCHES * nrows), layout="constrained")
    axes = []
    for k in range(n):
        ax = drawing.map_axes(fig, nrows, ncols, k + 1, crs)
        mesh = drawing.draw_field(ax, data.isel(time=k), crs, y, x, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(drawing.stamp_of(data.isel(time=k)), fontsize="small")
        axes.append(ax)
    if coastlines:
        drawing.coastlines(axes, crs)
    if crs is None:
        fig.text(0.01, 0.0, "no CRS: axes in the data's coordinates", fontsize="x-small", va="bottom")
    fig.colorbar(mesh, ax=axes, shrink=0.8, label=drawing.label_of(data))
    drawing.save_figure(fig, path)
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
    plt = drawing.pyplot()
    stage = _select_stage(_as_flow(flow), time)
    y, x = geo.spatial_dims(stage["u"])
    crs = drawing.map_crs(stage["u"], y, x)
    fig = plt.figure(figsize=(6.4, 5.6), layout="constrained")
    ax = drawing.map_axes(fig, 1, 1, 1, crs)
    if background is not None:
        image = _nearest_slice(_as_frames(background, channel, "background"), drawing.fraction_of(stage))
        mesh = drawing.draw_field(ax, image, crs, y, x, cmap="Greys_r")
        fig.colorbar(mesh, ax=ax, shrink=0.8, label=drawing.label_of(image))
    drawing.draw_flow(ax, stage, crs, y, x, density=density, style=style, color="tab:red" if background is not None else "k")
    drawing.set_extent(ax, stage, crs, y, x)
    which = "mean over stages" if time is None or "time" not in flow.dims else drawing.stamp_of(stage).replace("\n", ", ")
    ax.set_title(f"flow ({which})", fontsize="small", loc="left")
    if coastlines:
        drawing.coastlines([ax], crs)
    drawing.save_figure(fig, path)
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
    plt = drawing.pyplot()
    data = _as_frames(frames, channel)
    y, x = geo.spatial_dims(data)
    crs = drawing.map_crs(data, y, x)
    n = data.sizes["time"]
    picks = sorted(set((0, n // 2, n - 1)))
    lo, hi = drawing.color_limits(np.asarray(data.values, dtype=float), None, None)
    panels = len(picks) + (flow is not None)
    fig = plt.figure(figsize=(_PANEL_INCHES * panels + 1.0, _PANEL_INCHES + 0.4), layout="constrained")
    axes = []
    for k, pick in enumerate(picks):
        ax = drawing.map_axes(fig, 1, panels, k + 1, crs)
        mesh = drawing.draw_field(ax, data.isel(time=pick), crs, y, x, vmin=lo, vmax=hi)
        ax.set_title(drawing.stamp_of(data.isel(time=pick)), fontsize="small")
        axes.append(ax)
    if flow is not None:
        stage = _select_stage(_as_flow(flow), None)
        ax = drawing.map_axes(fig, 1, panels, panels, crs)
        drawing.draw_field(ax, data.isel(time=picks[len(picks) // 2]), crs, y, x, cmap="Greys_r", vmin=lo, vmax=hi)
        drawing.draw_flow(ax, stage, crs, y, x, density=16, color="tab:red")  # a small panel: fewer arrows
        ax.set_title("mean flow", fontsize="small")
        axes.append(ax)
    if coastlines:
        drawing.coastlines(axes, crs)
    fig.colorbar(mesh, ax=axes[: len(picks)], shrink=0.8, label=drawing.label_of(data))
    drawing.save_figure(fig, path)
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
    plt = drawing.pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    data = _as_frames(frames, channel)
    y, x = geo.spatial_dims(data)
    crs = drawing.map_crs(data, y, x)
    lo, hi = drawing.color_limits(np.asarray(data.values, dtype=float), None, None)
    fig = plt.figure(figsize=(5.6, 5.0), layout="constrained")
    ax = drawing.map_axes(fig, 1, 1, 1, crs)
    mesh = drawing.draw_field(ax, data.isel(time=0), crs, y, x, vmin=lo, vmax=hi)
    fig.colorbar(mesh, ax=ax, shrink=0.8, label=drawing.label_of(data))
    title = ax.set_title(drawing.stamp_of(data.isel(time=0)), fontsize="small")
    arrows, stages = None, None
    if flow is not None:
        flow = _as_flow(flow)
        stages = flow if "time" in flow.dims else flow.expand_dims("time")
        arrows = drawing.draw_flow(ax, stages.isel(time=0), crs, y, x, color="tab:red")

    def stage_of(k: int, frame: xr.DataArray) -> xr.Dataset:
        fraction = drawing.fraction_of(frame)
        if fraction is None or "interp_fraction" not in stages.coords:  # spread stages evenly
            return stages.isel(time=min(k * stages.sizes["time"] // data.sizes["time"], stages.sizes["time"] - 1))
        return stages.isel(time=int(np.argmin(np.abs(stages["interp_fraction"].values - fraction))))

    def update(k: int):
        frame = data.isel(time=k)
        mesh.set_array(np.asarray(frame.values, dtype=float))
        title.set_text(drawing.stamp_of(frame))
        if arrows is not None:
            thin = drawing.thinned(stage_of(k, frame), y, x, None)
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
