"""Files written whole or not at all: a temporary file (or store) beside the target, moved onto it
only when the writing succeeds (:func:`atomic_write`, :func:`atomic_store`), signals held for
the steps that must happen together (:func:`uninterrupted`), and errors that name the
temporary file re-raised naming the target (:func:`naming`). Standard library only."""

from __future__ import annotations

import os
import re
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM for the length of the block, then deliver them.

    For the few steps that must happen together or not at all (create a temporary file and
    note it, rename it onto the target, remove it): a signal arriving in between would leave a
    partial or orphaned file. Outside the main thread (where Python delivers no signal) it does
    nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is None:  # installed outside Python: leave it alone
            continue
        previous[sig] = handler
        signal.signal(sig, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if held:
            handler = previous[held[0]]
            if callable(handler):
                handler(held[0], None)  # Python's default for SIGINT raises KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                signal.raise_signal(held[0])


@contextmanager
def atomic_write(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    The temporary file is in the same folder (so the final ``os.replace`` is atomic) and keeps
    ``path``'s suffix, or ``suffix`` when given (writers that pick a format by suffix still
    work). Any exception, Ctrl-C included, removes it and leaves an existing ``path`` untouched;
    a Ctrl-C during the creation, the rename or the removal waits for it to end
    (:func:`uninterrupted`).
    """
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    tmp = None
    with naming(path):
        try:
            with uninterrupted():
                fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
                os.close(fd)
            yield Path(tmp)
            with uninterrupted():
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it the usual mode
                os.replace(tmp, path)
        except BaseException:
            if tmp is not None:
                with uninterrupted(), suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise


@contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """Re-raise an error that names one of the hidden temporary files or folders beside ``path``
    (``.<stem>.<random>.tmp<suffix>``, written by :func:`atomic_write`, :func:`atomic_store` and the
    NetCDF staging store) as the same error naming ``path``: the user never asked for the other."""
    try:
        yield
    except Exception as err:
        renamed = _renamed(err, Path(path))
        if renamed is None:
            raise
        raise renamed.with_traceback(err.__traceback__) from err.__cause__


def _temporary_names(path: Path) -> re.Pattern:
    """Temporary names beside ``path`` (and paths inside such a temporary store), in any text."""
    stem = re.escape(f".{path.stem}.")
    name = re.escape(f".{path.name}.")
    return re.compile(rf"[^\s'\"]*?(?:{stem}[^/\\\s'\"]*?\.tmp|{name}[^/\\\s'\"]*?\.old)[^/\\\s'\"]*")


def _renamed(err: Exception, path: Path) -> Exception | None:
    """``err`` with the temporary names replaced by ``path``; None when it names none."""
    pattern = _temporary_names(path)
    user = str(path)
    if isinstance(err, OSError) and type(err).__module__ == "builtins" and err.errno is not None and err.strerror:
        names = [str(n) for n in (err.filename, err.filename2) if n is not None]
        if not any(pattern.search(n) for n in names):
            return None
        return OSError(err.errno, err.strerror, user)  # the subclass for errno: PermissionError...
    text = str(err)
    if not pattern.search(text):
        return None
    try:
        return type(err)(pattern.sub(lambda m: user, text))
    except Exception:  # noqa: BLE001  built from other arguments: leave the error as it is
        return None


@contextmanager
def atomic_store(path: Path) -> Iterator[Path]:
    """:func:`atomic_write` for a folder store (Zarr): a temporary folder beside ``path``,
    moved onto it only if the block succeeds (an existing store is replaced then)."""
    import shutil

    with naming(path):
        with uninterrupted():
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent))
            tmp.rmdir()  # the writer creates it
        try:
            yield tmp
            with uninterrupted():  # the old store moved aside and the new one in: both, or neither
                if path.exists():
                    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                    os.replace(path, old / path.name)
                    os.replace(tmp, path)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(tmp, path)
        except BaseException:
            with uninterrupted():
                shutil.rmtree(tmp, ignore_errors=True)
            raise
