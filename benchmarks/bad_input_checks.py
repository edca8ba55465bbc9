"""Cost of the input checks added for issue 23, against the conversion they sit in.

``geo.to_array`` (decode, inf and huge-value checks, the float64 copy) with and without the
undeclared-fill-value check (``geo.check_fills``) on one in-memory image, best of ``--repeat`` runs.

    python benchmarks/bad_input_checks.py --size 2048 --repeat 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import xarray as xr

from xlatent import geo


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    da = xr.DataArray(rng.normal(280.0, 10.0, (args.size, args.size)).astype("float32"), dims=("y", "x"))
    grid = geo.describe(da)
    values = geo.to_array(da, grid, "first")
    full = best(lambda: geo.to_array(da, grid, "first"), args.repeat)
    fills = best(lambda: geo.check_fills(values, "first", da), args.repeat)
    print(f"{args.size}x{args.size} float32: to_array {full:.3f} s, of which check_fills {fills:.3f} s "
          f"({fills / full:.0%})")


if __name__ == "__main__":
    main()
