"""The ``xlatent`` command line, in-process (main(argv) -> exit code) and once as a subprocess."""

import re
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
    assert set(flow.data_vars) == {"u", "v", "u_east", "v_north", "confidence"} and frames.name == "backscatter"
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
    again = [*FAST, "--overwrite"]
    assert cli.main(["interpolate", series, "--out", str(out), *again]) == cli.EXIT_USAGE
    assert "--first-index and --last-index" in capsys.readouterr().err
    assert cli.main(["interpolate", series, str(pair_files / "last.nc"), "--out", str(out), *again]) == cli.EXIT_USAGE
    assert "--first-index N" in capsys.readouterr().err
    args = ["interpolate", series, "--first-index", "0", "--last-index", "9", "--out", str(out), *again]
    assert cli.main(args) == cli.EXIT_USAGE
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
    assert Path(path).parent == tmp_path and Path(path).suffix == ".png"  # drawn beside it, then moved in
    assert frames.sizes["time"] == 3 and frames.rio.crs.to_epsg() == 3413
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.png", "r.nc"]
    assert flow.u.dims[0] == "time"  # the library's layout, not the file's stage_time


def test_plot_without_the_extra_fails_before_any_work(pair_files, tmp_path, monkeypatch, capsys):
    monkeypatch.delattr(xlatent, "plot", raising=False)  # first: hasattr may import it
    monkeypatch.setitem(sys.modules, "xlatent.plot", None)  # import fails as if not installed
    monkeypatch.setattr(xlatent, "interpolate", lambda *a, **k: pytest.fail("ran without the plot extra"))
    _expect(["interpolate", str(pair_files / "first.nc"), str(pair_files / "last.nc"), "--out", str(tmp_path / "r.nc"),
             "--plot", str(tmp_path / "p.png")], cli.EXIT_DEPENDENCY, capsys, "pip install 'xlatent[plot]'")
    assert list(tmp_path.iterdir()) == []


def test_demo_writes_inputs_truth_and_result(tmp_path, monkeypatch, capsys):
    monkeypatch.delattr(xlatent, "plot", raising=False)  # first: hasattr may import it
    monkeypatch.setitem(sys.modules, "xlatent.plot", None)
    outdir = tmp_path / "demo"
    assert cli.main(["demo", str(outdir), "--size", "32", "--steps", "2"]) == 0
    said = capsys.readouterr().out
    assert "PSNR" in said and "xlatent interpolate" in said and "no overview.png" in said
    assert sorted(p.name for p in outdir.iterdir()) == ["first.nc", "last.nc", "result.nc", "truth.nc"]
    frames, flow = xlatent.open_result(outdir / "result.nc")
    assert frames.sizes["time"] == 3 and flow.u.attrs["standard_name"] == "sea_ice_x_velocity"
    assert frames.attrs["xlatent_method"] == "flow" and frames.rio.crs.to_epsg() == 3413  # the default
    truth = xr.open_dataset(outdir / "truth.nc", decode_coords="all")
    assert truth.u.sizes["time"] == 3 and truth.rio.crs.to_epsg() == 3413


def test_help_documents_every_option():
    parser = cli.build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(subs.choices) == {"interpolate", "fit-interpolator", "demo"}
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
    assert cli.main(["demo", str(outdir), "--size", "32", "--steps", "2", "--quiet"]) == 0
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


# --------------------------------------------------------------------------------------------
# Every exit code in the help, and nothing left behind by a failing run

LINEAR = ["--method", "linear", "--steps", "2", "--quiet"]


def _fake_plot(monkeypatch, draw):
    """A stand-in ``xlatent.plot`` whose ``overview`` calls ``draw(path)``."""
    fake = types.ModuleType("xlatent.plot")

    def overview(frames, flow=None, *, coastlines=False, path=None):
        draw(Path(path))
        return object()

    fake.overview = overview
    monkeypatch.setitem(sys.modules, "xlatent.plot", fake)
    monkeypatch.setattr(xlatent, "plot", fake, raising=False)


def _half_then(error):
    def draw_or_write(self_or_path, path=None, *args, **kwargs):
        Path(path if path is not None else self_or_path).write_bytes(b"half")
        raise error
    return draw_or_write


def _missing(monkeypatch, *modules):
    for module in modules:  # `import module` raises ImportError, as if not installed
        monkeypatch.setitem(sys.modules, module, None)


def _unwritable(monkeypatch, folder):
    """Make file creation in ``folder`` fail as on a read-only mount. The tests run as root, and
    root may write into a folder whatever its mode bits, so chmod cannot make one read-only here;
    /proc is also tried for real in test_out_in_a_folder_where_nothing_can_be_created."""
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == folder:
            raise PermissionError(13, "Read-only file system", str(Path(dir) / "x"))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def _raising(monkeypatch, error):
    def interpolate(*args, **kwargs):
        raise error
    monkeypatch.setattr(xlatent, "interpolate", interpolate)


# id: (exit code, fails before any computation, case(files, out, monkeypatch) -> options after "interpolate")
CASES = {
    "unknown-method": (cli.EXIT_USAGE, True, lambda f, o, m: [f.first, f.last, "--out", o / "r.nc", "--method", "magic"]),
    "steps-zero": (cli.EXIT_USAGE, True, lambda f, o, m: [f.first, f.last, "--out", o / "r.nc", "--steps", "0"]),
    "unknown-kind": (cli.EXIT_USAGE, True, lambda f, o, m: [f.first, f.last, "--out", o / "r.nc", "--kind", "lava"]),
    "out-is-an-input": (cli.EXIT_USAGE, True, lambda f, o, m: [f.first, f.last, "--out", f.first, *LINEAR]),
    "plot-is-out": (cli.EXIT_USAGE, True, lambda f, o, m: [f.first, f.last, "--out", o / "r.nc", "--plot", o / "r.nc", *LINEAR]),
    "plot-format": (cli.EXIT_USAGE, True, lambda f, o, m: [f.first, f.last, "--out", o / "r.nc", "--plot", o / "m.xyz", *LINEAR]),
    "series-without-index": (cli.EXIT_USAGE, True, lambda f, o, m: [f.series, "--out", o / "r.nc", *LINEAR]),
    "bad-first-time": (cli.EXIT_USAGE, True,
                       lambda f, o, m: [f.first, f.last, "--first-time", "soon", "--out", o / "r.nc", *LINEAR]),
    "missing-input": (cli.EXIT_FILE, True, lambda f, o, m: [f.folder / "nope.nc", f.last, "--out", o / "r.nc", *LINEAR]),
    "plain-folder-input": (cli.EXIT_FILE, True, lambda f, o, m: [f.plain, f.last, "--out", o / "r.nc", *LINEAR]),
    "junk-input": (cli.EXIT_FILE, True, lambda f, o, m: [f.junk, f.last, "--out", o / "r.nc", *LINEAR]),
    "unknown-variable": (cli.EXIT_VARIABLE, True,
                         lambda f, o, m: [f.first, f.last, "--variable", "sst", "--out", o / "r.nc", *LINEAR]),
    "several-variables": (cli.EXIT_VARIABLE, True, lambda f, o, m: [f.two, f.last, "--out", o / "r.nc", *LINEAR]),
    "grid-mismatch": (cli.EXIT_GRID, False, lambda f, o, m: [f.first, f.small, "--out", o / "r.nc", *LINEAR]),
    "time-order": (cli.EXIT_DATA, False, lambda f, o, m: [f.last, f.first, "--out", o / "r.nc", *LINEAR]),
    "out-folder-missing": (cli.EXIT_WRITE, True, lambda f, o, m: [f.first, f.last, "--out", o / "no" / "r.nc", *LINEAR]),
    "out-folder-is-a-file": (cli.EXIT_WRITE, True, lambda f, o, m: [f.first, f.last, "--out", o / "keep.nc" / "r.nc", *LINEAR]),
    "out-folder-read-only": (cli.EXIT_WRITE, True,
                             lambda f, o, m: _unwritable(m, o) or [f.first, f.last, "--out", o / "r.nc", *LINEAR]),
    "out-is-a-folder": (cli.EXIT_WRITE, True, lambda f, o, m: [f.first, f.last, "--out", o / "sub", *LINEAR]),
    "zarr-out-is-a-plain-folder": (cli.EXIT_WRITE, True, lambda f, o, m: [f.first, f.last, "--out", o / "data.zarr", *LINEAR]),
    "plot-folder-missing": (cli.EXIT_WRITE, True,
                            lambda f, o, m: [f.first, f.last, "--out", o / "r.nc", "--plot", o / "no" / "m.png", *LINEAR]),
    "write-fails": (cli.EXIT_WRITE, False,
                    lambda f, o, m: m.setattr(xr.Dataset, "to_netcdf", _half_then(OSError(28, "No space left on device")))
                    or [f.first, f.last, "--out", o / "r.nc", *LINEAR]),
    "write-fails-after-plot": (cli.EXIT_WRITE, False,
                               lambda f, o, m: _fake_plot(m, lambda p: p.write_bytes(b"png"))
                               or m.setattr(xr.Dataset, "to_netcdf", _half_then(OSError(28, "No space left on device")))
                               or [f.first, f.last, "--out", o / "r.nc", "--plot", o / "m.png", *LINEAR]),
    "plot-fails": (cli.EXIT_WRITE, False, lambda f, o, m: _fake_plot(m, _half_then(RuntimeError("no projection")))
                   or [f.first, f.last, "--out", o / "r.nc", "--plot", o / "m.png", *LINEAR]),
    "plot-write-fails": (cli.EXIT_WRITE, False, lambda f, o, m: _fake_plot(m, _half_then(OSError(28, "No space left on device")))
                         or [f.first, f.last, "--out", o / "r.nc", "--plot", o / "m.png", *LINEAR]),
    "zarr-out-without-zarr": (cli.EXIT_DEPENDENCY, True,
                              lambda f, o, m: _missing(m, "zarr") or [f.first, f.last, "--out", o / "r.zarr", *LINEAR]),
    "zarr-input-without-zarr": (cli.EXIT_DEPENDENCY, True,
                                lambda f, o, m: _missing(m, "zarr") or [f.store, f.last, "--out", o / "r.nc", *LINEAR]),
    "chunks-without-zarr": (cli.EXIT_DEPENDENCY, True,
                            lambda f, o, m: _missing(m, "zarr")
                            or [f.first, f.last, "--chunks", "16", "--out", o / "r.nc", *LINEAR]),
    "plot-without-matplotlib": (cli.EXIT_DEPENDENCY, True, lambda f, o, m: _missing(m, "matplotlib")
                                or [f.first, f.last, "--out", o / "r.nc", "--plot", o / "m.png", *LINEAR]),
    "plot-without-cartopy": (cli.EXIT_DEPENDENCY, True, lambda f, o, m: _missing(m, "cartopy")
                             or [f.first, f.last, "--out", o / "r.nc", "--plot", o / "m.png", *LINEAR]),
    "ot-without-pot": (cli.EXIT_DEPENDENCY, True, lambda f, o, m: _missing(m, "ot")
                       or [f.first, f.last, "--out", o / "r.nc", "--method", "ot", "--quiet"]),
    "import-error-during-the-work": (cli.EXIT_DEPENDENCY, False, lambda f, o, m: _raising(m, ImportError("no module x"))
                                     or [f.first, f.last, "--out", o / "r.nc", *LINEAR]),
    "unexpected-error": (cli.EXIT_FAILED, False, lambda f, o, m: _raising(m, RuntimeError("a bug"))
                         or [f.first, f.last, "--out", o / "r.nc", *LINEAR]),
    "interrupted-while-writing": (cli.EXIT_INTERRUPTED, False,
                                  lambda f, o, m: m.setattr(xr.Dataset, "to_netcdf", _half_then(KeyboardInterrupt()))
                                  or [f.first, f.last, "--out", o / "r.nc", *LINEAR]),
    "interrupted-while-drawing": (cli.EXIT_INTERRUPTED, False, lambda f, o, m: _fake_plot(m, _half_then(KeyboardInterrupt()))
                                  or [f.first, f.last, "--out", o / "r.nc", "--plot", o / "m.png", *LINEAR]),
}


@pytest.fixture(scope="module")
def bad_files(pair_files):
    """The pair, and inputs that are wrong in one way each."""
    folder = pair_files / "bad"
    folder.mkdir()
    files = types.SimpleNamespace(folder=folder, first=pair_files / "first.nc", last=pair_files / "last.nc",
                                  series=pair_files / "series.nc", plain=folder / "plain", junk=folder / "junk.nc",
                                  two=folder / "two.nc", small=folder / "small.nc", store=folder / "store.zarr")
    files.plain.mkdir()
    (files.plain / "readme.txt").write_text("not a Zarr store")
    files.junk.write_text("not a raster")
    datasets.rotation(size=32, steps=1).frames.to_dataset().assign(extra=lambda d: d.backscatter * 2).to_netcdf(files.two)
    xlatent.to_netcdf(datasets.rotation(size=40, steps=1).last, files.small)
    xlatent.open_image(files.first).to_dataset().to_zarr(files.store)
    return files


def _snapshot(folder):
    """Every file and folder under ``folder`` (hidden ones included) with the bytes of the files."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("name", list(CASES))
def test_every_failure_has_its_exit_code_and_leaves_nothing(name, bad_files, tmp_path, monkeypatch, capsys):
    code, before_work, case = CASES[name]
    out = tmp_path / "out"
    out.mkdir()
    (out / "r.nc").write_bytes(b"an earlier result")  # kept as it was when the run fails
    (out / "m.png").write_bytes(b"an earlier map")
    (out / "keep.nc").write_bytes(b"another file")
    (out / "sub").mkdir()
    (out / "data.zarr").mkdir()
    (out / "data.zarr" / "notes.txt").write_text("a folder named like a store")
    before, inputs = _snapshot(out), _snapshot(bad_files.folder.parent)
    # --overwrite: the earlier files are there on purpose, and must survive a failing run even so
    argv = ["interpolate", *map(str, case(bad_files, out, monkeypatch)), "--overwrite"]
    if before_work:
        monkeypatch.setattr(xlatent, "interpolate", lambda *a, **k: pytest.fail("computed before failing"))
    if code == cli.EXIT_FAILED:  # a bug: its traceback, then the one-line error
        assert cli.main(argv) == code
        err = capsys.readouterr().err
        assert err.splitlines()[-1].startswith("xlatent: error: unexpected")
    else:
        err = _expect(argv, code, capsys)
    assert _snapshot(out) == before
    assert _snapshot(bad_files.folder.parent) == inputs
    assert ".tmp" not in err and "xlatent-probe" not in err  # errors name the user's paths


def test_exit_codes_in_the_help_are_all_tested():
    helped = {int(m) for m in re.findall(r"^  (\d+) {2,}", cli.build_parser().epilog, flags=re.MULTILINE)}
    assert helped == {v for k, v in vars(cli).items() if k.startswith("EXIT_") and isinstance(v, int)}
    assert helped - {cli.EXIT_OK} == {code for code, _, _ in CASES.values()}


def test_unexpected_error_prints_its_traceback_then_one_line(pair_files, tmp_path, monkeypatch, capsys):
    _raising(monkeypatch, RuntimeError("a bug"))
    assert cli.main(["interpolate", str(pair_files / "first.nc"), str(pair_files / "last.nc"), "--out",
                     str(tmp_path / "r.nc"), *LINEAR]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1] == "xlatent: error: unexpected RuntimeError: a bug"


def test_out_in_a_folder_where_nothing_can_be_created(pair_files, monkeypatch, capsys):
    """A real unwritable folder for root: no file can be created in /proc, whatever the user."""
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    monkeypatch.setattr(xlatent, "interpolate", lambda *a, **k: pytest.fail("computed before failing"))
    _expect(["interpolate", str(pair_files / "first.nc"), str(pair_files / "last.nc"), "--out", "/proc/xlatent-r.nc",
             *LINEAR], cli.EXIT_WRITE, capsys, "cannot write --out /proc/xlatent-r.nc", "no file can be created in /proc")
    assert not Path("/proc/xlatent-r.nc").exists()


def test_exit_code_by_xlatent_error_class_not_builtin_base():
    from xlatent import exceptions

    classes = [c for c in vars(exceptions).values() if isinstance(c, type) and issubclass(c, exceptions.XlatentError)]
    for kind in classes:  # every error class has its own code; the base alone is "other"
        assert (cli._code_for(kind("x")) == cli.EXIT_FAILED) == (kind is exceptions.XlatentError), kind
    as_value = type("ConfigError", (exceptions.ConfigError, ValueError), {})  # ConfigError as a ValueError
    assert cli._code_for(as_value("bad option")) == cli.EXIT_USAGE
    assert cli._code_for(exceptions.TimeOrderError("x")) == cli.EXIT_DATA
    assert cli._code_for(exceptions.UnknownKindError("x")) == cli.EXIT_USAGE


def test_failed_demo_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delattr(xlatent, "plot", raising=False)  # first: hasattr may import it
    monkeypatch.setitem(sys.modules, "xlatent.plot", None)
    _raising(monkeypatch, RuntimeError("a bug"))
    assert cli.main(["demo", str(tmp_path / "new" / "demo"), "--size", "32", "--steps", "2", "--quiet"]) == cli.EXIT_FAILED
    assert list(tmp_path.iterdir()) == []  # the folders it made are gone too
    (tmp_path / "mine.txt").write_text("kept")
    assert cli.main(["demo", str(tmp_path), "--size", "32", "--steps", "2", "--quiet"]) == cli.EXIT_FAILED
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    capsys.readouterr()


# --------------------------------------------------------------------------------------------
# Issue 23: truncated files, existing outputs, Ctrl-C at the very end


def test_truncated_geotiff_is_an_unreadable_input(tmp_path, capsys):
    import rioxarray  # noqa: F401

    case = datasets.translation(size=32, steps=1)
    case.first.rio.to_raster(tmp_path / "a.tif")
    case.last.rio.to_raster(tmp_path / "b.tif")
    whole = (tmp_path / "a.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(whole[: len(whole) // 2])  # the header reads, the data does not
    assert cli.main(["interpolate", str(tmp_path / "cut.tif"), str(tmp_path / "b.tif"), "--out", str(tmp_path / "r.nc"),
                     *LINEAR]) == cli.EXIT_FILE
    errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("xlatent: warning:")]
    assert len(errors) == 1 and errors[0].startswith("xlatent: error: Cannot read the data of")  # no traceback
    assert "cut.tif" in errors[0] and "truncated or damaged" in errors[0]
    assert not (tmp_path / "r.nc").exists()


def test_existing_out_and_plot_are_kept_unless_overwrite(pair_files, tmp_path, monkeypatch, capsys):
    out, png = tmp_path / "r.nc", tmp_path / "m.png"
    out.write_bytes(b"an earlier result")
    args = ["interpolate", str(pair_files / "first.nc"), str(pair_files / "last.nc"), "--out", str(out), *LINEAR]
    monkeypatch.setattr(xlatent, "interpolate", lambda *a, **k: pytest.fail("computed before refusing"))
    _expect(args, cli.EXIT_USAGE, capsys, f"--out {out} already exists", "--overwrite")
    assert out.read_bytes() == b"an earlier result"
    _fake_plot(monkeypatch, lambda p: p.write_bytes(b"png"))
    png.write_bytes(b"an earlier map")
    _expect([*args, "--plot", str(png)], cli.EXIT_USAGE, capsys, f"--out {out}, --plot {png} already exist")
    out.unlink()
    _expect([*args, "--plot", str(png)], cli.EXIT_USAGE, capsys, f"--plot {png} already exists")
    assert png.read_bytes() == b"an earlier map"
    monkeypatch.undo()
    assert cli.main([*args, "--overwrite"]) == 0 and xlatent.open_result(out)[0].sizes["time"] == 3


def test_demo_keeps_existing_files_unless_overwrite(tmp_path, monkeypatch, capsys):
    outdir = tmp_path / "demo"
    outdir.mkdir()
    (outdir / "result.nc").write_bytes(b"mine")
    monkeypatch.setattr(xlatent.datasets, "load", lambda *a, **k: pytest.fail("computed before refusing"))
    _expect(["demo", str(outdir), "--no-plot", "--quiet"], cli.EXIT_USAGE, capsys, "result.nc already exists")
    assert sorted(p.name for p in outdir.iterdir()) == ["result.nc"]


@pytest.fixture()
def ctrl_c():
    """Python's own Ctrl-C handler (KeyboardInterrupt) for the test: a run started in the
    background by a shell inherits SIGINT ignored, and the signal sent would do nothing."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_between_result_and_map_leaves_neither(pair_files, tmp_path, monkeypatch, capsys, ctrl_c):
    """SIGINT (a real signal) while the map is moved in, after the result file was written:
    the run ends interrupted, with the map in place and the result kept, or neither."""
    import os
    import signal

    _fake_plot(monkeypatch, lambda p: p.write_bytes(b"png"))
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == "m.png":
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, delivered as the map goes in
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    code = cli.main(["interpolate", str(pair_files / "first.nc"), str(pair_files / "last.nc"), "--out",
                     str(tmp_path / "r.nc"), "--plot", str(tmp_path / "m.png"), *LINEAR])
    assert code == cli.EXIT_INTERRUPTED and "interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["m.png", "r.nc"])
