"""The ``xlatent`` command line: frames and motion between two image files, and a demo.

``xlatent interpolate FIRST LAST --steps 8 --out result.nc`` and ``xlatent demo OUTDIR``; also
``python -m xlatent``. :func:`main` takes the arguments and returns the exit code, so that tests
and other Python code can call it in-process.

The package's modules: ``parser`` (the parser, the exit codes, :class:`~xlatent.cli.parser.Failure`)
and ``commands`` (what each subcommand does); :func:`main` (here) runs one and turns errors into
exit codes.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Sequence
from contextlib import contextmanager

from xlatent.cli.commands import demo_command, fit_interpolator_command, interpolate_command
from xlatent.cli.parser import (
    DEMO_FILES,
    EXIT_CODES,
    EXIT_DATA,
    EXIT_DEPENDENCY,
    EXIT_FAILED,
    EXIT_FILE,
    EXIT_GRID,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VARIABLE,
    EXIT_WRITE,
    Failure,
    build_parser,
)
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

__all__ = [
    "DEMO_FILES", "EXIT_CODES", "EXIT_DATA", "EXIT_DEPENDENCY", "EXIT_FAILED", "EXIT_FILE", "EXIT_GRID",
    "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "EXIT_VARIABLE", "EXIT_WRITE", "build_parser", "main",
]


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
                interpolate_command(args, argv)
            elif args.command == "fit-interpolator":
                fit_interpolator_command(args)
            else:
                demo_command(args, argv)
        except Failure as err:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
