"""What ``forecast`` costs with its defaults: seconds per method on the MeteoSwiss series.

Not a timed test. Each series in ``../shared/data/mch_*.nc`` (40 frames of 128 x 128, 5 min) is
forecast 12 frames ahead with ``method="latent"`` (the default: :func:`xlatent.fit_forecaster` on
its sliding windows with :class:`xlatent.ForecastConfig`'s defaults, then the rollout), ``"flow"``
and ``"persistence"``; prints the wall-clock seconds, the training steps and why training stopped.

Run: ``python benchmarks/forecast_cost.py`` (``--threads 2``: torch threads, the machine's cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import xarray as xr

import xlatent

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--series", nargs="+", default=sorted(p.stem for p in DATA.glob("mch_*.nc")))
    parser.add_argument("--out", default=None, help="JSON file for the rows")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for name in args.series:
        series = xr.open_dataset(DATA / f"{name}.nc", decode_coords="all").rainfall_rate.load()
        for method in ("persistence", "flow", "latent"):
            t0 = time.perf_counter()
            out = xlatent.forecast(series, horizon=12, method=method, progress=False, seed=0)
            seconds = time.perf_counter() - t0
            row = {"series": name, "frames": series.sizes["time"], "shape": list(series.shape[1:]),
                   "method": method, "seconds": round(seconds, 1), "threads": args.threads}
            if method == "latent":
                row["training"] = out.attrs.get("xlatent_training", "")
            rows.append(row)
            print(row, flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
