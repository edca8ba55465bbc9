"""Optimal-transport methods against the others on held-out frames, with their path energies.

Cases: ``growing_blobs`` (mass moved, created and destroyed), ``translation``, ``rotation``
(synthetic, t = 1/6..5/6 held out) and one MeteoSwiss radar case (``mch_20160711.nc``, frames
t = 10 and t = 16 given, t + 1..t + 5 held out). Methods: linear, flow, ot, dynamic-ot,
ot-autoencoder (default alpha) and the plain autoencoder (ot-autoencoder with alpha = 0).
Columns: PSNR and SSIM of the held-out frames (data range of the truth), seconds, and
``xlatent.path_energy`` of each method's seven frames (cells², the motion it assumed; the truth's
own is given on the ``truth`` row).

    python benchmarks/ot_methods.py --size 64 --ae-iters 150
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import xarray as xr

import xlatent
from xlatent import datasets

sys.path.insert(0, str(Path(__file__).parent))
from run import scores  # noqa: E402

METHODS = {
    "linear": ("linear", {}),
    "flow": ("flow", {}),
    "ot": ("ot", {}),
    "dynamic-ot": ("dynamic-ot", {}),
    "ot-autoencoder": ("ot-autoencoder", {}),
    "autoencoder (alpha=0)": ("ot-autoencoder", {"alpha": 0.0}),
}


def cases(size: int, mch: Path):
    for name in ("growing_blobs", "translation", "rotation"):
        case = datasets.load(name, size=size, steps=6)
        yield name, case.first, case.last, case.frames
    if mch.exists():
        rain = xr.open_dataset(mch, decode_coords="all").rainfall_rate.load()
        yield "mch_20160711@10", rain.isel(time=10), rain.isel(time=16), rain.isel(time=slice(10, 17))
    else:
        print(f"skipping the radar case: {mch} not found (pass --mch)", file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64, help="side of the synthetic cases")
    ap.add_argument("--ae-iters", type=int, default=150, help="training steps of the autoencoders")
    ap.add_argument("--ot-iters", type=int, default=500, help="Douglas-Rachford iterations of dynamic-ot")
    ap.add_argument("--mch", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mch_20160711.nc"))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    args = ap.parse_args(argv)
    extra = {"ot-autoencoder": {"ae_iters": args.ae_iters}, "dynamic-ot": {"ot_iters": args.ot_iters}}
    print("| case | method | PSNR dB | SSIM | seconds | path energy |\n|---|---|---|---|---|---|", flush=True)
    for name, first, last, truth in cases(args.size, Path(args.mch)):
        held = truth.values[1:-1]
        print(f"| {name} | truth | - | - | - | {xlatent.path_energy(truth.values):.1f} |", flush=True)
        for label in args.methods:
            method, opts = METHODS[label]
            t0 = time.perf_counter()
            frames, _ = xlatent.interpolate(first, last, steps=6, method=method, progress=False,
                                            **opts, **extra.get(method, {}))
            wall = time.perf_counter() - t0
            s = scores(frames.values[1:-1], held)
            energy = xlatent.path_energy(frames.values)
            print(f"| {name} | {label} | {s['psnr']:.2f} | {s['ssim']:.3f} | {wall:.1f} | {energy:.1f} |", flush=True)


if __name__ == "__main__":
    main()
