"""The ``xlatent`` command line, in-process (main(argv) -> exit code) and once as a subprocess."""

import subprocess
import sys
import types
from pathlib import Path

import cf_xarray  # noqa: F401
import numpy as np
import pytest
import xarray as xr

import xlatent
from xlatent import cli, datasets

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--method", "flow", "--quiet"]


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    """first.nc / last.nc of a small synthetic case, and a one-file time series."""
    folder = tmp_path_factory.mktemp("cli")
    case = datasets.rotation(size=32, steps=4)
    xlatent.to_netcdf(case.first, folder / "first.nc")
    xlatent.to_netcdf(case.last, folder / "last.nc")
    xlatent.to_netcdf(case.frames.to_dataset(), folder / "series.nc")
    return folder


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]


def test_interpolate_two_files(pair_files, tmp_path):
    out = tmp_path / "result.nc"
    code = cli.main(["interpolate", str(pair_files / "first.nc"), str(pair_files / "last.nc"), "--steps", "4",
                     "--kind", "sea_ice", "--earth-relative", "--out", str(out), *FAST])
    assert code == 0
    ds = xr.open_dataset(out, decode_coords="all")
    assert ds.backscatter.sizes["time"] == 5 and ds.u.dims[0] == "stage_time"
    assert ds.rio.crs.to_epsg() == 3413 and ds.u.rio.crs.to_epsg() == 3413
    assert ds.cf.standard_names["sea_ice_x_velocity"] == ["u"]
    assert ds.cf.standard_names["eastward_sea_ice_velocity"] == ["u_east"]
    assert ds.u.encoding["zlib"] and ds.attrs["Conventions"] == "CF-1.8"
    assert ds.attrs["history"].endswith("--out " + str(out) + " --method flow --quiet")
    frames, flow = xlatent.open_result(out)
    assert set(flow.data_vars) == {"u", "v", "u_east", "v_north"} and frames.name == "backscatter"
    assert _leftovers(tmp_path) == []


def test_time_series_in_one_file(pair_files, tmp_path, capsys):
    out = tmp_path / "r.nc"
    series = str(pair_files / "series.nc")
    assert cli.main(["interpolate", series, "--first-index", "0", "--last-index", "-1", "--out", str(out), "--steps", "2",
                     "--method", "linear"]) == 0
    assert "wrote" in capsys.readouterr().out
    frames, flow = xlatent.open_result(out)
    assert flow is None and frames.sizes["time"] == 3
    case = datasets.rotation(size=32, steps=4)
    np.testing.assert_allclose(frames.values[-1], case.frames.values[-1], rtol=1e-6)
    assert cli.main(["interpolate", series, "--out", str(out), *FAST]) == cli.EXIT_USAGE
    assert "--first-index and --last-index" in capsys.readouterr().err
    assert cli.main(["interpolate", series, str(pair_files / "last.nc"), "--out", str(out), *FAST]) == cli.EXIT_USAGE
    assert "--first-index N" in capsys.readouterr().err
    assert cli.main(["interpolate", series, "--first-index", "0", "--last-index", "9", "--out", str(out), *FAST]) == cli.EXIT_USAGE
    assert "out of range" in capsys.readouterr().err


def _expect(argv, code, capsys, *needles):
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("xlatent: error:") or code == cli.EXIT_USAGE, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_error_exit_codes(pair_files, tmp_path, capsys):
    first, last, out = str(pair_files / "first.nc"), str(pair_files / "last.nc"), str(tmp_path / "r.nc")
    _expect(["interpolate", str(tmp_path / "nope.nc"), last, "--out", out, *FAST], cli.EXIT_FILE, capsys, "No such file")
    two = tmp_path / "two.nc"
    datasets.rotation(size=32, steps=1).frames.to_dataset().assign(extra=lambda d: d.backscatter * 2).to_netcdf(two)
    _expect(["interpolate", str(two), last, "--out", out, *FAST], cli.EXIT_VARIABLE, capsys, "backscatter, extra", "--variable")
    _expect(["interpolate", first, last, "--variable", "sst", "--out", out, *FAST], cli.EXIT_VARIABLE, capsys,
            "no variable 'sst'", "backscatter")
    small = tmp_path / "small.nc"
    xlatent.to_netcdf(datasets.rotation(size=40, steps=1).last, small)
    _expect(["interpolate", first, str(small), "--out", out, *FAST], cli.EXIT_GRID, capsys, "Shapes differ")
    _expect(["interpolate", last, first, "--out", out, *FAST], cli.EXIT_DATA, capsys, "not after the first")
    _expect(["interpolate", first, last, "--out", out, "--method", "magic"], cli.EXIT_USAGE, capsys, "latent")
    _expect(["interpolate", first, last, "--out", out, "--steps", "0"], cli.EXIT_USAGE, capsys, "--steps")
    _expect(["interpolate", first, last, "--out", out, "--kind", "lava"], cli.EXIT_USAGE, capsys, "sea_ice")
    _expect(["interpolate", first, last, "--out", first, *FAST], cli.EXIT_USAGE, capsys, "one of the inputs")
    _expect(["interpolate", first, last, "--out", str(tmp_path / "no" / "r.nc"), *FAST], cli.EXIT_WRITE, capsys, "does not exist")
    assert not (tmp_path / "r.nc").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("error, code", [(OSError("disk full"), cli.EXIT_WRITE), (KeyboardInterrupt(), cli.EXIT_INTERRUPTED)])
def test_failed_write_leaves_nothing(pair_files, tmp_path, monkeypatch, capsys, error, code):
    def broken(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise error

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    out = tmp_path / "r.nc"
    _expect(["interpolate", str(pair_files / "first.nc"), str(pair_files / "last.nc"), "--out", str(out), *FAST], code, capsys)
    assert list(tmp_path.iterdir()) == []


def test_plot_option_calls_the_plot_helper(pair_files, tmp_path, monkeypatch):
    calls = []

    def overview(frames, flow=None, *, coastlines=False, path=None):
        calls.append((frames, flow, path))
        Path(path).write_bytes(b"\x89PNG")
        return object()

    fake = types.ModuleType("xlatent.plot")
    fake.overview = overview
    monkeypatch.setitem(sys.modules, "xlatent.plot", fake)
    monkeypatch.setattr(xlatent, "plot", fake, raising=False)
    png = tmp_path / "map.png"
    code = cli.main(["interpolate", str(pair_files / "first.nc"), str(pair_files / "last.nc"), "--steps", "2",
                     "--out", str(tmp_path / "r.nc"), "--plot", str(png), *FAST])
    assert code == 0 and png.exists()
    (frames, flow, path), = calls
    assert path == str(png) and frames.sizes["time"] == 3 and frames.rio.crs.to_epsg() == 3413
    assert flow.u.dims[0] == "time"  # the library's layout, not the file's stage_time


def test_plot_without_the_extra_fails_before_any_work(pair_files, tmp_path, monkeypatch, capsys):
    monkeypatch.delattr(xlatent, "plot", raising=False)  # first: hasattr may import it
    monkeypatch.setitem(sys.modules, "xlatent.plot", None)  # import fails as if not installed
    monkeypatch.setattr(xlatent, "interpolate", lambda *a, **k: pytest.fail("ran without the plot extra"))
    _expect(["interpolate", str(pair_files / "first.nc"), str(pair_files / "last.nc"), "--out", str(tmp_path / "r.nc"),
             "--plot", str(tmp_path / "p.png")], cli.EXIT_DEPENDENCY, capsys, "pip install 'xlatent[plot]'")
    assert list(tmp_path.iterdir()) == []


def test_demo_writes_inputs_truth_and_result(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "xlatent.plot", None)
    monkeypatch.delattr(xlatent, "plot", raising=False)
    outdir = tmp_path / "demo"
    assert cli.main(["demo", str(outdir), "--size", "32", "--steps", "2", "--max-iters", "3"]) == 0
    said = capsys.readouterr().out
    assert "PSNR" in said and "xlatent interpolate" in said and "no overview.png" in said
    assert sorted(p.name for p in outdir.iterdir()) == ["first.nc", "last.nc", "result.nc", "truth.nc"]
    frames, flow = xlatent.open_result(outdir / "result.nc")
    assert frames.sizes["time"] == 3 and flow.u.attrs["standard_name"] == "sea_ice_x_velocity"
    assert frames.attrs["xlatent_method"] == "latent" and frames.rio.crs.to_epsg() == 3413
    truth = xr.open_dataset(outdir / "truth.nc", decode_coords="all")
    assert truth.u.sizes["time"] == 3 and truth.rio.crs.to_epsg() == 3413


def test_help_documents_every_option():
    parser = cli.build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(subs.choices) == {"interpolate", "demo"}
    for sub in subs.choices.values():
        text = sub.format_help()
        for action in sub._actions:
            assert action.help, action.dest
            for option in action.option_strings:
                assert option in text
        assert "exit codes" in text and f"{cli.EXIT_GRID}    FIRST and LAST are not on the same grid" in text
    assert cli.main(["--help"]) == 0 and cli.main([]) == cli.EXIT_USAGE


def test_python_dash_m_as_a_subprocess(pair_files, tmp_path):
    help_ = subprocess.run([sys.executable, "-m", "xlatent", "interpolate", "--help"], capture_output=True, text=True,
                           cwd=ROOT, timeout=120)
    assert help_.returncode == 0 and "--first-index" in help_.stdout and "stage_time" in help_.stdout
    run = subprocess.run([sys.executable, "-m", "xlatent", "interpolate", str(tmp_path / "missing.tif"),
                          str(pair_files / "last.nc"), "--out", str(tmp_path / "r.nc")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == cli.EXIT_FILE
    assert run.stderr.strip() == f"xlatent: error: No such file: {tmp_path / 'missing.tif'}"


def test_plot_option_end_to_end(pair_files, tmp_path):
    """The real plot extra: the map PNG is written next to the result, atomically."""
    pytest.importorskip("cartopy")
    from PIL import Image

    png = tmp_path / "map.png"
    code = cli.main(["interpolate", str(pair_files / "first.nc"), str(pair_files / "last.nc"), "--steps", "2",
                     "--out", str(tmp_path / "r.nc"), "--plot", str(png), *FAST])
    assert code == 0 and png.is_file() and not _leftovers(tmp_path)
    with Image.open(png) as im:
        assert im.format == "PNG" and min(im.size) > 200


def test_demo_with_the_plot_extra(tmp_path):
    pytest.importorskip("cartopy")
    outdir = tmp_path / "demo"
    assert cli.main(["demo", str(outdir), "--size", "32", "--steps", "2", "--max-iters", "3", "--quiet"]) == 0
    assert (outdir / "overview.png").stat().st_size > 10_000


def test_chunked_inputs_to_a_zarr_store(pair_files, tmp_path):
    """--chunks opens the inputs lazily; an OUT ending in .zarr is a Zarr store with the same
    content as the NetCDF file of an in-memory run."""
    args = ["interpolate", str(pair_files / "first.nc"), str(pair_files / "last.nc"), "--steps", "2",
            "--method", "linear", "--quiet"]
    assert cli.main([*args, "--chunks", "16", "--out", str(tmp_path / "result.zarr")]) == 0
    assert cli.main([*args, "--out", str(tmp_path / "result.nc")]) == 0
    lazy_frames, _ = xlatent.open_result(tmp_path / "result.zarr", chunks={})
    assert lazy_frames.chunks is not None and lazy_frames.rio.crs.to_epsg() == 3413
    frames, _ = xlatent.open_result(tmp_path / "result.nc")
    np.testing.assert_allclose(lazy_frames.values, frames.values, atol=1e-6)
    assert _leftovers(tmp_path) == []
