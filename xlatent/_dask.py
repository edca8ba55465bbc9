"""Thread counts of the dask scheduler and of torch inside a dask task, and bands of chunk rows
(the unit :func:`xlatent.io.to_zarr` and :mod:`xlatent.chunked` compute at a time).

dask is imported inside the functions: ``import xlatent`` stays free of it.
"""

from __future__ import annotations

import os

import numpy as np


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def dask_threads() -> int:
    """Threads of the active dask scheduler: a distributed client's, else the local one's."""
    import dask

    try:
        from distributed import default_client

        return max(1, sum(default_client().nthreads().values()))
    except (ImportError, ValueError):
        return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)


def torch_threads() -> int:
    """Threads torch should use inside a dask task.

    The ``xlatent.torch-threads`` dask config value; else ``OMP_NUM_THREADS`` (dask's nanny sets
    it to 1 on worker processes); else the CPUs divided by the dask threads sharing them (so 1
    with the default threaded scheduler).
    """
    import dask

    configured = dask.config.get("xlatent.torch-threads", None)
    if configured:
        return int(configured)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    cpus = _cpus()
    try:
        from distributed import get_worker

        threads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):
        threads = dask.config.get("num_workers", None) or cpus
    return max(1, cpus // max(1, int(threads)))


def bands(chunks: tuple[int, ...], per_row: int, rows: int | None = None) -> list[tuple[int, int]]:
    """``(start, stop)`` of bands of ``rows`` whole chunks along an axis with ``chunks``.

    A row of chunks holds ``per_row`` tasks. Default: the fewest rows that give every dask
    thread four tasks, at least 8 tasks. Computing band after band bounds memory by one band:
    on one graph with a final task (a reduction, xarray's ``to_zarr``) dask's ordering of
    overlapping chunks keeps inputs and results across the whole scene.
    """
    rows = int(rows or max(1, -(-max(8, 4 * dask_threads()) // max(1, per_row))))
    edges = np.concatenate(([0], np.cumsum(chunks))).astype(int).tolist()
    starts = edges[:-1][::rows]
    return list(zip(starts, starts[1:] + [edges[-1]]))
