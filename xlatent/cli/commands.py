"""What the ``xlatent`` subcommands do: every output and optional package checked before any
work, the inputs read, the run, the outputs written whole or not at all, the map drawn, the demo."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

import numpy as np

import xlatent
from xlatent import datasets, methods
from xlatent.archive.pretrained import named_or_file
from xlatent.cf import append_history
from xlatent.cli.parser import DEMO_FILES, EXIT_DEPENDENCY, EXIT_USAGE, EXIT_WRITE, Failure
from xlatent.exceptions import (
    InputError,
    XlatentError,
)
from xlatent.geo import time_dim
from xlatent.io import is_zarr_store, open_image, result_dataset, save_result, to_netcdf, uninterrupted


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message)


def _check_options(args: argparse.Namespace) -> None:
    """Fail fast, before reading files or training, on what can be checked up front."""
    if args.method is not None and args.method not in methods.available():
        raise Failure(f"unknown --method {args.method!r}; available: {', '.join(methods.available())}.", EXIT_USAGE)
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
        raise Failure(f"{message} ({err}).", EXIT_DEPENDENCY) from err


def _plot_module(required: bool):
    try:
        for module in ("matplotlib", "cartopy"):  # xlatent.plot imports them only when drawing
            importlib.import_module(module)
        from xlatent import plot
    except ImportError as err:
        if not required:
            return None
        raise Failure(f"--plot needs matplotlib and cartopy: pip install 'xlatent[plot]' ({err}).", EXIT_DEPENDENCY) from err
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
        raise Failure(f"cannot write {what} {target}: folder {folder} {state}.", EXIT_WRITE)
    try:
        fd, probe = tempfile.mkstemp(prefix=".xlatent-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise Failure(f"cannot write {what} {target}: no file can be created in {folder} "
                       f"({err.strerror or err}).", EXIT_WRITE) from err


def _check_outputs(args: argparse.Namespace, out: Path, plot: Path | None) -> None:
    """Every output path and the packages it needs, before any input is read."""
    inputs = {Path(p).resolve() for p in (args.first, args.last) if p is not None}
    if out.resolve() in inputs:
        raise Failure(f"--out {out} is one of the inputs; choose another file name.", EXIT_USAGE)
    if plot is not None:
        if plot.resolve() in inputs | {out.resolve()}:
            raise Failure(f"--plot {plot} is {'--out' if plot.resolve() == out.resolve() else 'one of the inputs'}; "
                           "choose another file name.", EXIT_USAGE)
        formats = _plot_formats()
        if plot.suffix and plot.suffix[1:].lower() not in formats:
            raise Failure(f"--plot {plot}: {plot.suffix!r} is not an image format matplotlib writes; use one of "
                           f"{', '.join(sorted(formats))} (.png is usual).", EXIT_USAGE)
    _refuse_existing(args, [out] + ([plot] if plot is not None else []), {out: "--out", plot: "--plot"})
    zarr_out = out.suffix.lower() == ".zarr"
    if zarr_out:
        _need("zarr", f"--out {out} is a Zarr store: it needs the zarr package: pip install 'xlatent[zarr]'")
        if out.is_dir() and not is_zarr_store(out):
            raise Failure(f"cannot write --out {out}: it is a folder that is not a Zarr store, and would be "
                           "replaced; choose another name.", EXIT_WRITE)
    elif out.is_dir():
        raise Failure(f"cannot write --out {out}: it is a folder; give a file name, e.g. {out / 'result.nc'}.",
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
            raise Failure(f"cannot write --plot {plot}: it is a folder; give a file name, e.g. {plot / 'map.png'}.",
                           EXIT_WRITE)
        _check_folder(plot, "--plot")


def _refuse_existing(args: argparse.Namespace, paths: list[Path], names: dict) -> None:
    """Refuse (:data:`EXIT_USAGE`) to replace files that exist, unless ``--overwrite``."""
    if args.overwrite:
        return
    there = [path for path in paths if path.exists() and not (path.is_dir() and not is_zarr_store(path))]
    if there:
        shown = ", ".join(f"{names.get(p, '')} {p}".strip() for p in there)
        raise Failure(f"{shown} already exist{'s' if len(there) == 1 else ''}: pass --overwrite to replace "
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
        raise Failure(f"{label} ({path}): {err}", EXIT_USAGE) from err
    dim = time_dim(da)
    if dim is not None:
        raise Failure(
            f"{label} ({path}) holds a time series ({da.sizes[dim]} steps along {dim!r}): choose one with {option} N.",
            EXIT_USAGE,
        )
    return da


def _inputs(args: argparse.Namespace):
    if args.last is None:
        if args.first_index is None or args.last_index is None:
            raise Failure("with one input file, give --first-index and --last-index (two steps of its time series).", EXIT_USAGE)
        if args.last_time is not None or args.first_time is not None:
            raise Failure("--first-time/--last-time are for files without a time; a time series has its own.", EXIT_USAGE)
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
        options["model"] = named_or_file(args.model, device=args.device)
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
                    raise Failure(f"cannot write --plot {plot}: {err.strerror or err}; {out} was removed too.",
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
        raise Failure(f"cannot write --plot {plot}: {err.strerror or err}.", EXIT_WRITE) from err
    drawn = Path(name)
    try:
        args.plot_module.overview(frames, flow, coastlines=True, path=drawn)
    except BaseException as err:
        drawn.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise Failure(f"cannot write --plot {plot}: {err.strerror or err}.", EXIT_WRITE) from err
        if isinstance(err, Exception) and not isinstance(err, (XlatentError, ImportError)):
            text = str(err).replace(str(drawn), str(plot))
            raise Failure(f"cannot draw --plot {plot}: {type(err).__name__}: {text}", EXIT_WRITE) from err
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
        raise Failure(f"cannot write {out}: {err.strerror or err}", EXIT_WRITE) from err


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


def interpolate_command(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """``xlatent interpolate``: options and outputs checked, the inputs read, the frames and flow written."""
    _check_options(args)
    out = Path(args.out)
    _check_outputs(args, out, None if args.plot is None else Path(args.plot))
    first, last = _inputs(args)
    frames, flow = _run(first, last, args, argv)
    _write(frames, flow, out, args)


def fit_interpolator_command(args: argparse.Namespace) -> None:
    """``xlatent fit-interpolator``: an archive model fitted on the series and saved, its skill said."""
    series = [open_image(path, args.variable) for path in args.series]
    model = xlatent.fit_interpolator(series, k_range=(args.k_min, args.k_max), windows_per_series=args.windows,
                                     time_budget=args.time_budget,
                                     max_iters=args.max_iters, device=args.device, seed=args.seed,
                                     init=args.init, progress=not args.quiet)
    out = Path(args.out)
    try:
        model.save(out)
    except OSError as err:
        raise Failure(f"cannot write {out}: {err.strerror or err}", EXIT_WRITE) from err
    skill = model.skill
    _say(args, f"wrote {out}: {skill['db_over_flow']} dB over flow, {skill['db_over_linear']} dB over linear "
               f"on {skill['windows']} held-out windows; correction {'on' if model.gate_open else 'off'}")


def demo_command(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """``xlatent demo``: a synthetic case written with its truth and result (and a map), its PSNR said."""
    _check_options(args)
    outdir = Path(args.outdir)
    created = [folder for folder in (outdir, *outdir.parents) if not folder.exists()]
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise Failure(f"cannot create {outdir}: {err.strerror or err}", EXIT_WRITE) from err
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
        raise Failure(f"cannot write into {outdir}: {err.strerror or err}", EXIT_WRITE) from err
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
