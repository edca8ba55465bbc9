"""Which second motion hypothesis for the archive model (benchmarks/RESULTS.md, entry 43).

On radar windows of ``../shared/data``: PSNR of the mean of ``flow``'s frames and ``flow``'s frames
along TV-L1's motion, minus ``flow``'s, with TV-L1 at full resolution and on 2 x 2 and 4 x 4 block
means (``flow(motion="tvl1", motion_coarsen=k)``), and the seconds of each call.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/second_hypothesis.py``
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from xlatent.backends import InMemory
from xlatent.methods.flow import flow

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = ("mch_20160711", "mch_20170131", "rmi_20210704", "opera_20241126")
VARIANTS = {"tvl1": {"motion": "tvl1"}, "tvl1 2x2": {"motion": "tvl1", "motion_coarsen": 2},
            "tvl1 4x4": {"motion": "tvl1", "motion_coarsen": 4}}


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    ok = np.isfinite(truth)
    rng = np.nanmax(truth) - np.nanmin(truth)
    return float(10 * np.log10(rng**2 / np.mean((pred[ok] - truth[ok]) ** 2)))


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    rows = []
    for name in FILES:
        series = xr.open_dataset(DATA / f"{name}.nc", decode_coords="all").rainfall_rate.load()
        for k in (3, 6, 9, 12):
            for t in (2, 20):
                if t + k >= series.sizes["time"]:
                    continue
                pair = InMemory().prepare(series.isel(time=t), series.isel(time=t + k), None, None)
                fractions = np.arange(k + 1) / k
                truth = series.values[t + 1 : t + k]

                def run(options, pair=pair, fractions=fractions):
                    t0 = time.perf_counter()
                    out = flow(pair.first, pair.last, pair.mask, fractions, mean=pair.mean, std=pair.std,
                               with_confidence=options.get("motion") == "svf", device="cpu", **options)
                    return out.frames[1:-1, 0] * pair.std[0] + pair.mean[0], time.perf_counter() - t0

                base, t_base = run({"motion": "svf"})
                row = {"file": name, "t": t, "K": k, "flow": psnr(base, truth), "flow_s": t_base}
                for label, options in VARIANTS.items():
                    alt, seconds = run(options)
                    row[label] = psnr((base + alt) / 2, truth) - row["flow"]
                    row[f"{label} s"] = seconds
                rows.append(row)
                print(" ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    print(f"{len(rows)} windows; flow {np.median([r['flow_s'] for r in rows]):.2f} s (median)")
    for label in VARIANTS:
        print(f"{label}: mean of two - flow {np.mean([r[label] for r in rows]):+.3f} dB, "
              f"{np.median([r[label + ' s'] for r in rows]):.2f} s (median)")


if __name__ == "__main__":
    main()
