"""The ``xlatent`` command line: frames and motion between two image files, and a demo.

``xlatent interpolate FIRST LAST --steps 8 --out result.nc`` and ``xlatent demo OUTDIR``; also
``python -m xlatent``. :func:`main` takes the arguments and returns the exit code, so that tests
and other Python code can call it in-process.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import signal
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

import xlatent
from xlatent import datasets, methods
from xlatent._version import __version__
from xlatent.cf import KINDS, append_history
from xlatent.exceptions import (
    ConfigError,
    CRSError,
    DeviceError,
    GridMismatchError,
    InputError,
    InputFileError,
    InputTypeError,
    ModelFileError,
    SpatialDimsError,
    TimeOrderError,
    UnknownKindError,
    UnknownMethodError,
    UnknownVariableError,
    XlatentError,
)
from xlatent.geo import time_dim
from xlatent.io import is_zarr_store, open_image, result_dataset, save_result, to_netcdf, uninterrupted

EXIT_OK = 0
EXIT_FAILED = 1  # any other error
EXIT_USAGE = 2  # bad options (argparse's own code too)
EXIT_FILE = 3  # an input file is missing or unreadable
EXIT_VARIABLE = 4  # unknown variable, or several and none named
EXIT_GRID = 5  # FIRST and LAST are not on the same grid
EXIT_DATA = 6  # the images cannot be used (all NaN, too small, time order, no CRS...)
EXIT_WRITE = 7  # an output could not be written
EXIT_DEPENDENCY = 8  # an optional package is missing (--plot, .zarr, --method ot)
EXIT_INTERRUPTED = 130  # Ctrl-C

EXIT_CODES = f"""exit codes (outputs and optional packages are checked before any work; after a
failure nothing this run wrote is left behind: no partial file, no half of --out and --plot):
  {EXIT_OK}    success
  {EXIT_FAILED}    other error (unexpected: the traceback is printed; please report it)
  {EXIT_USAGE}    bad option or option value (unknown method or kind, bad time index, --out is an input,
       --out or --plot exists without --overwrite, --plot format not supported, device not available...)
  {EXIT_FILE}    input file missing or unreadable (or a folder that is not a Zarr store)
  {EXIT_VARIABLE}    unknown variable (the message lists those in the file), or several and no --variable
  {EXIT_GRID}    FIRST and LAST are not on the same grid (dims, shape, coords or CRS)
  {EXIT_DATA}    the images cannot be used as they are (no valid cell, too small, time order...)
  {EXIT_WRITE}    an output cannot be written (folder missing or not writable, --out is a folder...)
       or drawn (--plot)
  {EXIT_DEPENDENCY}    an optional package is missing: --plot needs pip install 'xlatent[plot]'; a Zarr
       --out or input, or --chunks, needs 'xlatent[zarr]'; --method ot needs 'xlatent[ot]'
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C or SIGTERM)"""

_OUTPUT_LAYOUT = """output file (NetCDF, CF-1.8, compressed; a Zarr store when OUT ends in .zarr):
  <variable>(time, [band,] y, x)   the steps + 1 frames, FIRST to LAST inclusive, coord interp_fraction
  u, v(stage_time, y, x)           motion of each advection stage, stamped at its middle, coord
                                   stage_fraction; grid-relative (toward +x, +y coordinate) in m s-1
                                   when the grid spacing and times are known, else grid cells
  u_east, v_north                  with --earth-relative: the same motion, eastward/northward
  spatial_ref                      the CRS of FIRST, linked from every variable (grid_mapping)
Read it with xr.open_dataset(OUT, decode_coords="all"), or frames, flow = xlatent.open_result(OUT)."""


DEMO_FILES = ("first.nc", "last.nc", "truth.nc", "result.nc", "overview.png")


class _Failure(Exception):
    """An error with its exit code, reported as one line without a traceback."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``interpolate`` and ``demo``."""
    p.add_argument("--steps", type=_positive_int, default=8,
                   help="intervals between FIRST and LAST: steps + 1 frames are written (default: %(default)s)")
    p.add_argument("--method", default=None,
                   help="flow (SVF motion and a forward/backward blend, no training; the default), latent (latent "
                        "space advection trained on the pair, ~40x slower), advection (the same, in image space), "
                        "ot (optimal transport, POT), linear (cross-dissolve, no motion); see "
                        "xlatent.methods.available(). With --model: the archive model")
    p.add_argument("--kind", choices=sorted(KINDS), default=None,
                   help="what moves; sets the CF standard_name of u/v (e.g. sea_ice_x_velocity). Default: none")
    p.add_argument("--device", default="auto",
                   help="torch device: auto (CUDA when available, else CPU), cpu, cuda, cuda:1... (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="random seed; same seed and device give the same result (default: %(default)s)")
    p.add_argument("--max-iters", type=_positive_int, default=None, metavar="N",
                   help="training steps at most (latent method; default: LatentConfig.max_iters, 400)")
    p.add_argument("--time-budget", type=_positive_float, default=None, metavar="SECONDS",
                   help="stop training after this many seconds (latent method; default: no limit)")
    p.add_argument("--earth-relative", action="store_true",
                   help="also write u_east/v_north, the motion rotated to eastward/northward (needs a CRS)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars and no summary; errors are still printed")
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs that already exist (without it, an existing --out or --plot, or demo files, "
                        "is an error and nothing is written)")


def build_parser() -> argparse.ArgumentParser:
    """The ``xlatent`` argument parser (subcommands ``interpolate`` and ``demo``)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="xlatent",
        description="In-between frames and motion fields for two georeferenced images.",
        epilog=EXIT_CODES + "\n\nRun 'xlatent interpolate --help' or 'xlatent demo --help' for the options.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"xlatent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{interpolate,fit-interpolator,demo}")

    ip = sub.add_parser(
        "interpolate",
        help="frames and motion between two images (NetCDF, GeoTIFF, Zarr)",
        description=(
            "Estimate the frames between FIRST and LAST and the motion between them; write both to one "
            "NetCDF file.\n\nFIRST and LAST: NetCDF/HDF5 (read with decode_coords='all'), Zarr, or GeoTIFF "
            "(and other GDAL rasters; bands become channels). No-data and scale/offset are honoured. Both "
            "must be on the same grid (same dims, coords, CRS).\n\nA time series in one file: omit LAST and "
            "pick two steps, e.g.  xlatent interpolate radar.nc --first-index 10 --last-index 16 --out r.nc"
        ),
        epilog=_OUTPUT_LAYOUT + "\n\n" + EXIT_CODES,
        formatter_class=formatter,
    )
    ip.add_argument("first", metavar="FIRST", help="file with the first image (earlier time)")
    ip.add_argument("last", metavar="LAST", nargs="?", default=None,
                    help="file with the last image (later time); omit it to take both images from FIRST's time series")
    ip.add_argument("--out", "-o", required=True, metavar="OUT.nc",
                    help="output NetCDF file, or Zarr store when it ends in .zarr (written atomically)")
    ip.add_argument("--chunks", type=_positive_int, default=None, metavar="N",
                    help="open the inputs lazily in N x N dask chunks and run chunk by chunk, for scenes larger "
                         "than memory (latent and linear methods; best with --out OUT.zarr, written band by band)")
    ip.add_argument("--variable", default=None, metavar="NAME",
                    help="variable to read from NetCDF/Zarr inputs (needed when a file holds several)")
    ip.add_argument("--first-index", type=int, default=None, metavar="I",
                    help="time step of FIRST to use when it holds a time series (0-based; negative counts from the end)")
    ip.add_argument("--last-index", type=int, default=None, metavar="J",
                    help="time step of LAST (or of FIRST when LAST is omitted) to use")
    ip.add_argument("--first-time", default=None, metavar="ISO",
                    help="time of FIRST when the file has none (GeoTIFF; replaces one it has, with a warning), "
                         "e.g. 2024-03-01T00:00; with both times the motion is in m s-1")
    ip.add_argument("--last-time", default=None, metavar="ISO", help="time of LAST when the file has none")
    ip.add_argument("--x-dim", default=None, metavar="DIM", help="name of the x (column) dim, when it cannot be guessed")
    ip.add_argument("--y-dim", default=None, metavar="DIM", help="name of the y (row) dim, when it cannot be guessed")
    ip.add_argument("--plot", default=None, metavar="PNG",
                    help="also draw first/middle/last frame and the motion to this PNG, on a labelled longitude/latitude "
                         "graticule, with coastlines when cartopy's Natural Earth files are on disk (never downloaded; "
                         "the map says when they are not); needs pip install 'xlatent[plot]'")
    ip.add_argument("--model", default=None, metavar="PATH",
                    help="a model written by 'xlatent fit-interpolator' (or ArchiveInterpolator.save): one forward "
                         "pass, its correction of flow's frames used only where it is trusted")
    _add_run_options(ip)

    fp = sub.add_parser(
        "fit-interpolator",
        help="fit the archive model once on series of images, for 'xlatent interpolate --model'",
        description=(
            "Fit the archive model (xlatent.fit_interpolator) on one or more files, each a (time, y, x) series "
            "of one variable in one unit: windows of K time steps as inputs, the frames between them as "
            "targets; the last part of each series is held out and its skill over flow printed."
        ),
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    fp.add_argument("series", metavar="SERIES", nargs="+", help="NetCDF/Zarr files, each a time series")
    fp.add_argument("--out", "-o", required=True, metavar="MODEL.pt", help="where to write the model")
    fp.add_argument("--variable", default=None, metavar="NAME", help="variable to read (needed when a file holds several)")
    fp.add_argument("--k-min", type=_positive_int, default=3, help="shortest window, time steps (default: %(default)s)")
    fp.add_argument("--k-max", type=_positive_int, default=12, help="longest window, time steps (default: %(default)s)")
    fp.add_argument("--windows", type=_positive_int, default=32, metavar="N",
                    help="windows taken from each series, each one SVF fit (default: %(default)s)")
    fp.add_argument("--time-budget", type=_positive_float, default=480.0, metavar="SECONDS",
                    help="training seconds at most, SVF fits not counted (default: %(default)s)")
    fp.add_argument("--max-iters", type=_positive_int, default=1500, metavar="N",
                    help="training steps at most (default: %(default)s)")
    fp.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda... (default: %(default)s)")
    fp.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    fp.add_argument("--quiet", "-q", action="store_true", help="no progress bars and no summary")

    dp = sub.add_parser(
        "demo",
        help="run the bundled synthetic sea-ice case and write inputs, truth and result to a folder",
        description=(
            "Run a synthetic case with known truth (xlatent.datasets: SAR-like sea-ice texture on a 1 km "
            "EPSG:3413 grid, two images 12 h apart) and write into OUTDIR: first.nc and last.nc (inputs for "
            "'xlatent interpolate'), truth.nc (true frames and motion), result.nc (as 'xlatent interpolate' "
            "writes it) and overview.png (when the plot extra is installed)."
        ),
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    dp.add_argument("outdir", metavar="OUTDIR", help="folder for the outputs (created if missing)")
    dp.add_argument("--case", choices=["translation", "rotation", "new_features"], default="rotation",
                    help="which synthetic motion (default: %(default)s)")
    dp.add_argument("--size", type=_positive_int, default=128, help="grid cells per side (default: %(default)s)")
    dp.add_argument("--no-plot", action="store_true", help="do not draw overview.png")
    _add_run_options(dp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors (argparse printed them)
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    with warnings.catch_warnings(), _sigterm_as_interrupt():
        warnings.showwarning = _show_warning
        try:
            if args.command == "interpolate":
                _interpolate(args, argv)
            elif args.command == "fit-interpolator":
                _fit_interpolator(args)
            else:
                _demo(args, argv)
        except _Failure as err:
            _error(str(err))
            return err.code
        except KeyboardInterrupt:
            _error("interrupted; no partial output was left behind.")
            return EXIT_INTERRUPTED
        except XlatentError as err:
            _error(str(err))
            return _code_for(err)
        except ImportError as err:  # an optional package found missing only now
            _error(str(err))
            return EXIT_DEPENDENCY
        except Exception as err:  # noqa: BLE001  a bug: keep the traceback for the report, end on one line
            traceback.print_exc()
            _error(f"unexpected {type(err).__name__}: {err}")
            return EXIT_FAILED
    return EXIT_OK


@contextmanager
def _sigterm_as_interrupt():
    """Treat SIGTERM (kill, job schedulers) like Ctrl-C, so that temporary files are removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _error(message: str) -> None:
    print(f"xlatent: error: {message}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"xlatent: warning: {message}", file=sys.stderr)


# By xlatent's own classes, first match wins; never by the built-in base (ConfigError is a bad
# option whether it derives from TypeError or ValueError).
_EXIT_BY_ERROR: tuple[tuple[type[XlatentError] | tuple[type[XlatentError], ...], int], ...] = (
    (GridMismatchError, EXIT_GRID),
    ((InputFileError, ModelFileError), EXIT_FILE),
    (UnknownVariableError, EXIT_VARIABLE),
    ((UnknownMethodError, UnknownKindError, ConfigError, DeviceError), EXIT_USAGE),
    ((InputError, InputTypeError, SpatialDimsError, TimeOrderError, CRSError), EXIT_DATA),
)


def _code_for(err: XlatentError) -> int:
    """The exit code for one of xlatent's errors (:data:`EXIT_FAILED` for any other)."""
    return next((code for kinds, code in _EXIT_BY_ERROR if isinstance(err, kinds)), EXIT_FAILED)


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message)


def _check_options(args: argparse.Namespace) -> None:
    """Fail fast, before reading files or training, on what can be checked up front."""
    if args.method is not None and args.method not in methods.available():
        raise _Failure(f"unknown --method {args.method!r}; available: {', '.join(methods.available())}.", EXIT_USAGE)
    if args.method == "ot":
        _need("ot", "--method ot needs POT (Python Optimal Transport): pip install 'xlatent[ot]'")
    if getattr(args, "plot", None) is not None or (args.command == "demo" and not args.no_plot):
        args.plot_module = _plot_module(required=args.command == "interpolate")
    else:
        args.plot_module = None


def _need(module: str, message: str) -> None:
    """Import ``module`` now, or fail with :data:`EXIT_DEPENDENCY` and ``message``."""
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise _Failure(f"{message} ({err}).", EXIT_DEPENDENCY) from err


def _plot_module(required: bool):
    try:
        for module in ("matplotlib", "cartopy"):  # xlatent.plot imports them only when drawing
            importlib.import_module(module)
        from xlatent import plot
    except ImportError as err:
        if not required:
            return None
        raise _Failure(f"--plot needs matplotlib and cartopy: pip install 'xlatent[plot]' ({err}).", EXIT_DEPENDENCY) from err
    return plot


def _plot_formats() -> set[str]:
    from matplotlib.backend_bases import FigureCanvasBase

    return set(FigureCanvasBase.get_supported_filetypes())


def _check_folder(target: Path, what: str) -> None:
    """``target``'s folder exists and a file can be created there (tried: permissions alone do not
    tell, e.g. for root, on a read-only mount or in /proc), else :data:`EXIT_WRITE`."""
    folder = target.parent
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise _Failure(f"cannot write {what} {target}: folder {folder} {state}.", EXIT_WRITE)
    try:
        fd, probe = tempfile.mkstemp(prefix=".xlatent-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise _Failure(f"cannot write {what} {target}: no file can be created in {folder} "
                       f"({err.strerror or err}).", EXIT_WRITE) from err


def _check_outputs(args: argparse.Namespace, out: Path, plot: Path | None) -> None:
    """Every output path and the packages it needs, before any input is read."""
    inputs = {Path(p).resolve() for p in (args.first, args.last) if p is not None}
    if out.resolve() in inputs:
        raise _Failure(f"--out {out} is one of the inputs; choose another file name.", EXIT_USAGE)
    if plot is not None:
        if plot.resolve() in inputs | {out.resolve()}:
            raise _Failure(f"--plot {plot} is {'--out' if plot.resolve() == out.resolve() else 'one of the inputs'}; "
                           "choose another file name.", EXIT_USAGE)
        formats = _plot_formats()
        if plot.suffix and plot.suffix[1:].lower() not in formats:
            raise _Failure(f"--plot {plot}: {plot.suffix!r} is not an image format matplotlib writes; use one of "
                           f"{', '.join(sorted(formats))} (.png is usual).", EXIT_USAGE)
    _refuse_existing(args, [out] + ([plot] if plot is not None else []), {out: "--out", plot: "--plot"})
    zarr_out = out.suffix.lower() == ".zarr"
    if zarr_out:
        _need("zarr", f"--out {out} is a Zarr store: it needs the zarr package: pip install 'xlatent[zarr]'")
        if out.is_dir() and not is_zarr_store(out):
            raise _Failure(f"cannot write --out {out}: it is a folder that is not a Zarr store, and would be "
                           "replaced; choose another name.", EXIT_WRITE)
    elif out.is_dir():
        raise _Failure(f"cannot write --out {out}: it is a folder; give a file name, e.g. {out / 'result.nc'}.",
                       EXIT_WRITE)
    elif args.chunks is not None:
        _need("zarr", "--chunks with a NetCDF --out writes the result through a temporary Zarr store: it needs the "
                      "zarr package: pip install 'xlatent[zarr]' (or leave --chunks out)")
    for path in (args.first, args.last):
        if path is not None and (is_zarr_store(path) or Path(path).suffix.lower() == ".zarr"):
            _need("zarr", f"{path} is read as a Zarr store: it needs the zarr package: pip install 'xlatent[zarr]'")
    _check_folder(out, "--out")
    if plot is not None:
        if plot.is_dir():
            raise _Failure(f"cannot write --plot {plot}: it is a folder; give a file name, e.g. {plot / 'map.png'}.",
                           EXIT_WRITE)
        _check_folder(plot, "--plot")


def _refuse_existing(args: argparse.Namespace, paths: list[Path], names: dict) -> None:
    """Refuse (:data:`EXIT_USAGE`) to replace files that exist, unless ``--overwrite``."""
    if args.overwrite:
        return
    there = [path for path in paths if path.exists() and not (path.is_dir() and not is_zarr_store(path))]
    if there:
        shown = ", ".join(f"{names.get(p, '')} {p}".strip() for p in there)
        raise _Failure(f"{shown} already exist{'s' if len(there) == 1 else ''}: pass --overwrite to replace "
                       f"{'it' if len(there) == 1 else 'them'}, or choose another name.", EXIT_USAGE)


def _options(args: argparse.Namespace) -> dict:
    options = {"steps": args.steps, "method": args.method, "kind": args.kind, "device": args.device,
               "seed": args.seed, "progress": not args.quiet}
    if args.max_iters is not None:
        options["max_iters"] = args.max_iters
    if args.time_budget is not None:
        options["time_budget"] = args.time_budget
    return options


def _read(path: str, variable, index, timestamp, label: str, option: str, chunks=None):
    try:
        da = open_image(path, variable, time_index=index, timestamp=timestamp, chunks=chunks)
    except InputError as err:  # a bad --*-index or --*-time
        raise _Failure(f"{label} ({path}): {err}", EXIT_USAGE) from err
    dim = time_dim(da)
    if dim is not None:
        raise _Failure(
            f"{label} ({path}) holds a time series ({da.sizes[dim]} steps along {dim!r}): choose one with {option} N.",
            EXIT_USAGE,
        )
    return da


def _inputs(args: argparse.Namespace):
    if args.last is None:
        if args.first_index is None or args.last_index is None:
            raise _Failure("with one input file, give --first-index and --last-index (two steps of its time series).", EXIT_USAGE)
        if args.last_time is not None or args.first_time is not None:
            raise _Failure("--first-time/--last-time are for files without a time; a time series has its own.", EXIT_USAGE)
        first = _read(args.first, args.variable, args.first_index, None, "FIRST", "--first-index", args.chunks)
        last = _read(args.first, args.variable, args.last_index, None, "FIRST", "--last-index", args.chunks)
    else:
        first = _read(args.first, args.variable, args.first_index, args.first_time, "FIRST", "--first-index", args.chunks)
        last = _read(args.last, args.variable, args.last_index, args.last_time, "LAST", "--last-index", args.chunks)
    return first, last


def _run(first, last, args: argparse.Namespace, argv: Sequence[str]):
    """Interpolate, then add the command line to the outputs' history."""
    options = _options(args)
    if getattr(args, "model", None) is not None:
        options = {k: v for k, v in options.items() if k not in ("seed", "device")}
        options["model"] = xlatent.load_interpolator(args.model, device=args.device)
    frames, flow = xlatent.interpolate(first, last, x_dim=getattr(args, "x_dim", None),
                                       y_dim=getattr(args, "y_dim", None), **options)
    if flow is not None and args.earth_relative:
        earth = xlatent.to_earth_relative(flow)
        flow = flow.assign(u_east=earth.u_east, v_north=earth.v_north)
    command = "command line: " + shlex.join(["xlatent", *argv])
    for obj in (frames, flow):
        if obj is not None:
            obj.attrs["history"] = append_history(obj.attrs.get("history"), command)
    return frames, flow


def _write(frames, flow, out: Path, args: argparse.Namespace) -> None:
    """Write the result to ``out`` and, with ``--plot``, the map: both or neither. The map is drawn
    first into a temporary file beside it, moved in once the result is written; if anything fails,
    nothing this run wrote is left and files already at those paths stay as they were."""
    plot = Path(args.plot) if args.plot_module is not None and args.plot is not None else None
    drawn = None
    before = _identity(out)
    try:
        if plot is not None:
            drawn = _draw(frames, flow, plot, args)
        _write_result(frames, flow, out, args)
        if drawn is not None:
            with uninterrupted():  # Ctrl-C now waits for the map to be in place
                try:
                    os.replace(drawn, plot)
                except OSError as err:
                    raise _Failure(f"cannot write --plot {plot}: {err.strerror or err}; {out} was removed too.",
                                   EXIT_WRITE) from err
                drawn = None
    except BaseException:
        # the result went in but the map did not (an error, or Ctrl-C in between): neither stays
        if drawn is not None and _identity(out) != before:
            with uninterrupted():
                _remove(out)
        raise
    finally:
        if drawn is not None:
            with uninterrupted():
                drawn.unlink(missing_ok=True)
    units = "" if flow is None else f", motion u/v on {flow.sizes.get('time', 0)} stages in {flow.u.attrs.get('units')}"
    _say(args, f"wrote {out}: {frames.sizes['time']} frames{units}")
    if plot is not None:
        _say(args, f"wrote {plot}")


def _draw(frames, flow, plot: Path, args: argparse.Namespace) -> Path:
    """The overview map in a temporary file beside ``plot`` (same format); its path."""
    suffix = plot.suffix or ".png"
    try:
        fd, name = tempfile.mkstemp(prefix=f".{plot.name}.", suffix=f".tmp{suffix}", dir=plot.parent)
        os.close(fd)
    except OSError as err:
        raise _Failure(f"cannot write --plot {plot}: {err.strerror or err}.", EXIT_WRITE) from err
    drawn = Path(name)
    try:
        args.plot_module.overview(frames, flow, coastlines=True, path=drawn)
    except BaseException as err:
        drawn.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _Failure(f"cannot write --plot {plot}: {err.strerror or err}.", EXIT_WRITE) from err
        if isinstance(err, Exception) and not isinstance(err, (XlatentError, ImportError)):
            text = str(err).replace(str(drawn), str(plot))
            raise _Failure(f"cannot draw --plot {plot}: {type(err).__name__}: {text}", EXIT_WRITE) from err
        raise
    return drawn


def _write_result(frames, flow, out: Path, args: argparse.Namespace) -> None:
    zarr = out.suffix.lower() == ".zarr"  # Zarr's default compression; dask results band by band
    names = [] if zarr else list(result_dataset(frames, flow).data_vars)
    encoding = None if zarr else {name: {"zlib": True, "complevel": 4} for name in names}
    try:
        save_result(frames, flow, out, encoding=encoding, progress=not args.quiet)
    except OSError as err:
        if isinstance(err, XlatentError):
            raise
        raise _Failure(f"cannot write {out}: {err.strerror or err}", EXIT_WRITE) from err


def _identity(path: Path) -> tuple | None:
    """What tells a file (or store) apart from the one that replaces it: inode and change time."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_ctime_ns


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _interpolate(args: argparse.Namespace, argv: Sequence[str]) -> None:
    _check_options(args)
    out = Path(args.out)
    _check_outputs(args, out, None if args.plot is None else Path(args.plot))
    first, last = _inputs(args)
    frames, flow = _run(first, last, args, argv)
    _write(frames, flow, out, args)


def _fit_interpolator(args: argparse.Namespace) -> None:
    series = [open_image(path, args.variable) for path in args.series]
    model = xlatent.fit_interpolator(series, k_range=(args.k_min, args.k_max), windows_per_series=args.windows,
                                     time_budget=args.time_budget,
                                     max_iters=args.max_iters, device=args.device, seed=args.seed,
                                     progress=not args.quiet)
    out = Path(args.out)
    try:
        model.save(out)
    except OSError as err:
        raise _Failure(f"cannot write {out}: {err.strerror or err}", EXIT_WRITE) from err
    skill = model.skill
    _say(args, f"wrote {out}: {skill['db_over_flow']} dB over flow, {skill['db_over_linear']} dB over linear "
               f"on {skill['windows']} held-out windows; correction {'on' if model.gate_open else 'off'}")


def _demo(args: argparse.Namespace, argv: Sequence[str]) -> None:
    _check_options(args)
    outdir = Path(args.outdir)
    created = [folder for folder in (outdir, *outdir.parents) if not folder.exists()]
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _Failure(f"cannot create {outdir}: {err.strerror or err}", EXIT_WRITE) from err
    written: list[Path] = []
    try:
        _refuse_existing(args, [outdir / name for name in DEMO_FILES], {})
        _check_folder(outdir / "result.nc", "into")
        _demo_files(args, argv, outdir, written)
    except BaseException:  # nothing this run wrote is left, the folders it made included
        for path in written:
            _remove(path)
        for folder in created:  # innermost first
            with suppress(OSError):
                folder.rmdir()
        raise


def _demo_files(args: argparse.Namespace, argv: Sequence[str], outdir: Path, written: list[Path]) -> None:
    case = datasets.load(args.case, size=args.size, steps=args.steps, seed=args.seed)
    _say(args, f"case {case.name}: {case.description}")
    try:
        for name, obj in (("first.nc", case.first), ("last.nc", case.last),
                          ("truth.nc", case.frames.to_dataset().merge(case.flow, compat="override"))):
            to_netcdf(obj, outdir / name)
            written.append(outdir / name)
    except OSError as err:
        raise _Failure(f"cannot write into {outdir}: {err.strerror or err}", EXIT_WRITE) from err
    if args.kind is None:
        args.kind = "sea_ice"  # what the synthetic case shows
    frames, flow = _run(case.first, case.last, args, argv)
    args.plot = None if args.plot_module is None else str(outdir / "overview.png")
    _write(frames, flow, outdir / "result.nc", args)
    if args.plot_module is None and not args.no_plot:
        _say(args, "no overview.png: the plot extra is not installed (pip install 'xlatent[plot]')")
    inner = slice(1, -1) if frames.sizes["time"] > 2 else slice(None)
    truth = case.frames.values[inner]
    err = np.nanmean((frames.values[inner] - truth) ** 2)
    psnr = 10 * np.log10(float(np.nanmax(truth) - np.nanmin(truth)) ** 2 / err) if err > 0 else float("inf")
    _say(args, f"in-between frames vs truth: PSNR {psnr:.1f} dB")
    _say(args, f"same from the files: xlatent interpolate {outdir / 'first.nc'} {outdir / 'last.nc'} "
               f"--steps {args.steps} --kind {args.kind} --out result.nc")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
