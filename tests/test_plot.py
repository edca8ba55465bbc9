"""xlatent.plot: maps in the data's CRS, arrows that point the documented way, no downloads."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

matplotlib = pytest.importorskip("matplotlib")
cartopy = pytest.importorskip("cartopy")
matplotlib.use("Agg")

import cartopy.crs as ccrs  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402
from PIL import Image  # noqa: E402

import xlatent  # noqa: E402
from xlatent import datasets  # noqa: E402
from xlatent import plot as xplot  # noqa: E402
from xlatent.exceptions import InputError, InputTypeError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error::cartopy.io.DownloadWarning")
SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "MPLBACKEND": "Agg"}


@pytest.fixture(autouse=True)
def offline_cartopy(tmp_path, monkeypatch):
    """Natural Earth lookups go to an empty temp folder, and any download attempt fails."""
    data_dir = tmp_path / "cartopy_data"
    data_dir.mkdir()
    monkeypatch.setitem(cartopy.config, "data_dir", data_dir)
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", data_dir)

    def no_network(self, url):
        raise AssertionError(f"cartopy tried to download {url}")

    monkeypatch.setattr(cartopy.io.Downloader, "_urlopen", no_network)
    yield data_dir
    plt.close("all")


@pytest.fixture(scope="module")
def translation():
    """5 cells east and 3 north in 12 h: true flow and a fast estimate (method='flow')."""
    case = datasets.translation(size=48, steps=4)
    # TV-L1 (not the default stationary-velocity fit): these tests are about the maps, and it is ~20x quicker
    frames, flow = xlatent.interpolate(case.first, case.last, steps=4, method="flow", motion="tvl1", progress=False)
    return case, frames, flow


def assert_png(path, min_side=200):
    assert path.exists()
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.verify()
    with Image.open(path) as img:
        assert min(img.size) >= min_side and max(img.size) < 6000
        colours = img.convert("L").getextrema()
        assert colours[1] - colours[0] > 50  # not a blank image
    assert not [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")]  # no temp left


def arrow_angles(fig) -> np.ndarray:
    """Screen direction (degrees counter-clockwise from the +x screen axis) of every arrow drawn."""
    fig.canvas.draw()
    quivers = [c for ax in fig.axes for c in ax.collections if isinstance(c, Quiver)]
    assert quivers, "no quiver on the figure"
    angles = []
    for q in quivers:
        for path in q.get_paths():  # arrow polygons in screen-oriented units, tail at the origin
            if len(path.vertices):
                cx, cy = path.vertices.mean(axis=0)
                angles.append(np.degrees(np.arctan2(cy, cx)))
    return np.array(angles)


def test_lazy_imports_and_missing_extra_names_the_pip_command():
    """One subprocess: `import xlatent` loads neither; a missing cartopy, then matplotlib, is named."""
    code = (
        "import sys, xlatent\n"
        "print('matplotlib' in sys.modules, 'cartopy' in sys.modules)\n"
        "assert xlatent.plot.overview and 'matplotlib' not in sys.modules  # attribute access, no import yet\n"
        "from xlatent import datasets, plot\n"
        "frames = datasets.translation(size=16, steps=1).frames\n"
        "for missing in ('cartopy', 'matplotlib.pyplot'):\n"
        "    sys.modules[missing] = None\n"
        "    try:\n"
        "        plot.frames(frames)\n"
        "    except ImportError as err:\n"
        "        print(missing, '|', err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=SUBPROCESS_ENV)
    lines = out.stdout.splitlines()
    assert lines[0] == "False False", out.stdout
    assert len(lines) == 3 and all("pip install 'xlatent[plot]'" in line for line in lines[1:]), out.stdout + out.stderr


def test_frames_panel_in_data_crs(translation, tmp_path):
    _, frames, _ = translation
    path = tmp_path / "frames.png"
    fig = xplot.frames(frames, col_wrap=3, cmap="viridis", path=path)
    assert_png(path)
    maps = [ax for ax in fig.axes if hasattr(ax, "projection")]
    assert len(maps) == frames.sizes["time"]
    assert maps[0].projection.to_epsg() == 3413 or maps[0].projection == ccrs.Projection(frames.rio.crs)
    meshes = [ax.collections[0] for ax in maps]
    assert len({m.get_clim() for m in meshes}) == 1  # one shared colour scale
    assert meshes[0].get_clim() == pytest.approx((float(frames.min()), float(frames.max())))
    assert "2024-03-01 06:00" in maps[2].get_title() and "0.50" in maps[2].get_title()
    colourbar = fig.axes[-1]
    assert "synthetic SAR-like backscatter" in colourbar.get_ylabel() and "[1]" in colourbar.get_ylabel()
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


@pytest.mark.parametrize("which", ["truth", "estimate"])
@pytest.mark.parametrize("row_order", ["north-up", "south-up"])
def test_flow_arrows_point_with_the_motion(translation, tmp_path, which, row_order):
    case, frames, estimate = translation
    flow = case.flow if which == "truth" else estimate
    if row_order == "south-up":  # ascending y: the same motion, rows stored the other way
        flow, frames = flow.sortby("y"), frames.sortby("y")
        assert flow.y.values[0] < flow.y.values[-1]
    fig = xplot.flow(flow, frames, path=tmp_path / "flow.png")
    assert_png(tmp_path / "flow.png")
    angles = arrow_angles(fig)
    # 5 cells east, 3 north on a north-up polar stereographic map: 31 degrees above +x
    assert len(angles) > 100
    assert np.median(angles) == pytest.approx(np.degrees(np.arctan2(3, 5)), abs=8)
    key = [t.get_text() for ax in fig.axes for t in ax.texts] + [
        c.text.get_text() for ax in fig.axes for c in ax.artists if hasattr(c, "text")
    ]
    assert any("m s-1" in k for k in key)


def test_flow_thinned_to_a_readable_density(translation):
    case, _, _ = translation
    big = datasets.translation(size=160, steps=2).flow
    for flow, density in ((case.flow, None), (big, None), (big, 10)):
        fig = xplot.flow(flow, time=0, density=density)
        q = next(c for c in fig.axes[0].collections if isinstance(c, Quiver))
        across = int(np.sqrt(q.N))
        assert 16 <= across <= 32 if density is None else across == 10
        plt.close(fig)


def test_rotation_streamplot_and_stage_choice(tmp_path):
    case = datasets.rotation(size=48, steps=4)
    path = tmp_path / "stream.png"
    xplot.flow(case.flow, case.frames, style="streamplot", time=2, path=path)
    assert_png(path)
    with pytest.raises(InputError, match="stage"):
        xplot.flow(case.flow, time=99)
    with pytest.raises(InputError, match="style"):
        xplot.flow(case.flow, style="barbs")


def test_overview_and_without_flow(translation, tmp_path):
    case, frames, flow = translation
    fig = xplot.overview(frames, flow, path=tmp_path / "overview.png")
    assert_png(tmp_path / "overview.png")
    titles = [ax.get_title() for ax in fig.axes if hasattr(ax, "projection")]
    assert titles[0].startswith("2024-03-01 00:00") and titles[2].startswith("2024-03-01 12:00")
    assert titles[3] == "mean flow"
    linear, none = xlatent.interpolate(case.first, case.last, steps=2, method="linear", progress=False)
    assert none is None
    fig = xplot.overview(linear, path=tmp_path / "linear.png")
    assert_png(tmp_path / "linear.png")
    assert len([ax for ax in fig.axes if hasattr(ax, "projection")]) == 3


def test_animate_writes_a_gif_with_every_frame(translation, tmp_path):
    _, frames, flow = translation
    out = xplot.animate(frames, tmp_path / "movie.gif", flow=flow, fps=5)
    assert out == tmp_path / "movie.gif"
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames == frames.sizes["time"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".movie.gif.")]


def test_channel_dim_shows_the_chosen_channel(translation):
    _, frames, _ = translation
    stacked = xr.concat([frames, 10 * frames], dim="band").assign_coords(band=["hh", "hv"])
    stacked = stacked.transpose("time", "band", "y", "x")
    for channel, factor in ((None, 1), (1, 10), ("hv", 10)):
        fig = xplot.frames(stacked, times=[0], channel=channel)
        shown = np.asarray(fig.axes[0].collections[0].get_array())
        assert np.nanmax(shown) == pytest.approx(factor * float(frames.isel(time=0).max()), rel=1e-5)
        plt.close(fig)


def test_no_crs_gives_plain_axes_and_lat_lon_gives_plate_carree(tmp_path):
    rng = np.random.default_rng(0)
    plain = xr.DataArray(rng.random((3, 20, 30)), dims=("time", "y", "x"), name="field")
    fig = xplot.frames(plain, path=tmp_path / "plain.png")
    assert_png(tmp_path / "plain.png", min_side=100)
    assert not any(hasattr(ax, "projection") for ax in fig.axes)
    assert fig.axes[0].get_ylim()[0] < fig.axes[0].get_ylim()[1]  # +y upward, never inverted
    lonlat = xr.DataArray(
        rng.random((2, 20, 30)), dims=("time", "lat", "lon"), name="sst",
        coords={"lat": np.linspace(40, 50, 20), "lon": np.linspace(-10, 5, 30)},
    ).rio.write_crs("EPSG:4326")
    fig = xplot.frames(lonlat, path=tmp_path / "lonlat.png")
    assert_png(tmp_path / "lonlat.png", min_side=100)
    assert isinstance(fig.axes[0].projection, ccrs.PlateCarree)


def test_coastlines_missing_warn_and_never_download(translation, tmp_path, offline_cartopy):
    _, frames, _ = translation
    with pytest.warns(UserWarning, match="coastlines skipped"):
        xplot.frames(frames, times=[0], coastlines=True, path=tmp_path / "c.png")
    assert_png(tmp_path / "c.png")
    assert not any(offline_cartopy.rglob("*.shp"))


def test_coastlines_drawn_from_files_on_disk(translation, tmp_path, offline_cartopy):
    """A small coastline shapefile in cartopy's layout: drawn, and still nothing downloaded."""
    import pyproj
    import shapefile  # pyshp, a cartopy dependency

    _, frames, flow = translation
    to_lonlat = pyproj.Transformer.from_crs(frames.rio.crs, "EPSG:4326", always_xy=True)
    xs, ys = frames.x.values, frames.y.values
    lon, lat = to_lonlat.transform([xs[0], xs[-1]], [ys[-1], ys[0]])  # a diagonal across the scene
    folder = offline_cartopy / "shapefiles" / "natural_earth" / "physical"
    folder.mkdir(parents=True)
    for resolution in ("10m", "50m", "110m"):
        with shapefile.Writer(str(folder / f"ne_{resolution}_coastline"), shapeType=shapefile.POLYLINE) as w:
            w.field("name", "C")
            w.line([[[lon[0], lat[0]], [lon[1], lat[1]]]])
            w.record("test")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "skipped" warning, no DownloadWarning
        fig = xplot.overview(frames, flow, coastlines=True, path=tmp_path / "coast.png")
    assert_png(tmp_path / "coast.png")
    from cartopy.mpl.feature_artist import FeatureArtist

    assert sum(isinstance(a, FeatureArtist) for ax in fig.axes for a in ax.artists + ax.collections) == 4


def test_bad_inputs_and_failed_write_keeps_the_old_file(translation, tmp_path):
    _, frames, flow = translation
    with pytest.raises(InputTypeError, match="DataArray"):
        xplot.frames(flow)
    with pytest.raises(InputTypeError, match="u and v"):
        xplot.flow(frames)
    target = tmp_path / "figure.xyz"
    target.write_bytes(b"old")
    with pytest.raises(ValueError):
        xplot.frames(frames, times=[0], path=target)  # matplotlib: format 'xyz' is not supported
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir() if p.name != "cartopy_data"] == ["figure.xyz"]


def test_maps_have_a_labelled_graticule_and_say_when_coastlines_are_missing(translation, tmp_path):
    """Issue 23: longitude/latitude lines labelled in degrees and named axes on every map in a CRS;
    offline, the figure itself says that the coastlines asked for are not drawn."""
    from cartopy.mpl.gridliner import Gridliner

    _, frames, flow = translation
    with pytest.warns(UserWarning, match="coastlines skipped"):
        fig = xplot.overview(frames, flow, coastlines=True, path=tmp_path / "o.png")
    assert_png(tmp_path / "o.png")
    for ax in fig.axes[:-1]:  # every map; the last axes is the colour bar
        if not hasattr(ax, "projection"):
            continue
        lines = [a for a in ax.artists if isinstance(a, Gridliner)]
        assert len(lines) == 1 and lines[0].bottom_labels and lines[0].left_labels
        assert any(text.get_text().endswith(("°N", "°E", "°W", "°")) for text in lines[0].label_artists)
        assert {t.get_text() for t in ax.texts} >= {"longitude", "latitude"}
    assert any("no coastlines" in t.get_text() and "offline" in t.get_text() for t in fig.texts)
    fig = xplot.flow(flow, frames, path=tmp_path / "f.png")
    assert len([a for a in fig.axes[0].artists if isinstance(a, Gridliner)]) == 1  # once, though its extent is set twice
