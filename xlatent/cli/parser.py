"""The ``xlatent`` command line's parser, exit codes and the error that carries one
(:class:`Failure`)."""

from __future__ import annotations

import argparse

from xlatent._version import __version__
from xlatent.cf import KINDS

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


class Failure(Exception):
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
                    help="a model written by 'xlatent fit-interpolator' (or ArchiveInterpolator.save), or the name of "
                         "one shipped with xlatent (radar-rain-2km: rain rate in mm h-1 on 2 km cells): one forward "
                         "pass, its correction of flow's frames used only where it is trusted (outside its range flow's frames "
                         "and a second motion's, weighed by what each explains)")
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
    fp.add_argument("--init", default=None, metavar="PATH",
                    help="start from this model instead of untrained weights (fine-tuning): a model file or the "
                         "name of a shipped one (radar-rain-2km); its units must be the series'")
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
