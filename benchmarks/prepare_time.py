"""Time of the pair's preparation (validation, statistics, normalisation) in memory and on dask.

``xlatent.backends.prepare`` on a random ``N x N`` float32 pair with a block of NaN, the best of
5 calls in memory and of 3 on the same pair chunked 512 x 512 (its statistics pass computed with
dask's threaded scheduler). Prints ``memory_s lazy_s``. Run it on two checkouts to compare::

    OMP_NUM_THREADS=1 PYTHONPATH=<checkout> python benchmarks/prepare_time.py 1024
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import xarray as xr

from xlatent.backends import prepare


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("size", type=int, nargs="?", default=1024)
    n = parser.parse_args().size
    rng = np.random.default_rng(0)
    a = xr.DataArray(rng.random((n, n), dtype=np.float32), dims=("y", "x"),
                     coords={"y": np.arange(n), "x": np.arange(n)})
    a[:10, :10] = np.nan
    b = a.roll(x=1)
    memory = best(lambda: prepare(a, b), 5)
    ca, cb = a.chunk(512), b.chunk(512)
    lazy = best(lambda: prepare(ca, cb).first.sum().compute(), 3)
    print(f"{memory:.3f} {lazy:.3f}")


if __name__ == "__main__":
    main()
