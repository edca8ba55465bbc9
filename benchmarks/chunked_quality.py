"""Does the chunked (dask) path lose quality against the in-memory one?

Same synthetic cases and scores as ``benchmarks/run.py``; each case is interpolated once in
memory and once from dask-backed copies of the same inputs (``--chunks`` cells a side), where
the TV-L1 starting field is computed per training patch and per chunk (with
``prior_margin`` cells of context) instead of on the whole scene.

    python benchmarks/chunked_quality.py --cases translation rotation --size 256 --chunks 128
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import dask

sys.path.insert(0, str(Path(__file__).parent))

from run import cases, epe, scores  # noqa: E402

import xlatent  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["translation", "rotation"])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--chunks", type=int, default=128)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="LatentConfig override (JSON value)")
    args = ap.parse_args(argv)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    print("| case | inputs | PSNR dB | SSIM | EPE m/s | time s |\n|---|---|---|---|---|---|", flush=True)
    for name, first, last, truth, true_flow in cases(args.cases, None, args.size):
        for label, (a, b) in (("in memory", (first, last)),
                              (f"dask, chunks {args.chunks}", (first.chunk(args.chunks), last.chunk(args.chunks)))):
            t0 = time.perf_counter()
            frames, flow = xlatent.interpolate(a, b, steps=6, progress=False, **overrides)
            with dask.config.set(scheduler="threads"):
                frames, flow = dask.compute(frames, flow)
            wall = time.perf_counter() - t0
            s = scores(frames.values[1:-1], truth)
            cells = f"{s['psnr']:.2f} | {s['ssim']:.3f} | {epe(flow, true_flow):.3f} | {wall:.0f}"
            print(f"| {name} | {label} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
