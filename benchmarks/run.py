"""Quality and cost of xlatent's methods on held-out intermediate frames.

Cases: the synthetic pairs of :mod:`xlatent.datasets` (true frames and true u/v), its analytic
flows (exact solutions; ``curved`` is the rotations and vortices) and 30-minute cases cut from
the MeteoSwiss radar files (frames t and t+6 given, t+1..t+5 held out). Prints a markdown table
with a mean row per group and writes it to ``benchmarks/out/results.md``.

    python benchmarks/run.py                      # the whole table, every method
    python benchmarks/run.py --cases curved --methods flow flow:motion=svf skimage-tvl1
    python benchmarks/run.py --cases rotation --set max_iters=200 --set stages=4
    python benchmarks/run.py --mch-dir ../shared/data --size 256   # 256 x 256 synthetic

A method ``name:key=value,key=value`` passes options to the method (JSON values, else strings).
``skimage-tvl1`` is the outside baseline: scikit-image TV-L1 with its default settings on the
two images scaled together to [0, 1], rendered with ``flow``'s forward/backward blend.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import xarray as xr

import xlatent
import xlatent.methods
from xlatent import datasets

MCH_FILES = ("mch_20150515.nc", "mch_20160711.nc", "mch_20170131.nc")
MCH_STARTS = (10, 24)  # two 30-minute windows per file: frames t..t+6


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak resident memory above the starting level while the block runs (polled)."""

    def __enter__(self):
        self.start, self.peak, self._run = _rss(), _rss(), True
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def _poll(self):
        while self._run:
            self.peak = max(self.peak, _rss())
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._run = False
        self._t.join()
        self.mib = (self.peak - self.start) / 2**20


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """PSNR (range of the true frames), SSIM (explicit data_range), MAE over held-out frames."""
    from skimage.metrics import structural_similarity

    valid = np.isfinite(pred) & np.isfinite(truth)
    rng = float(np.nanmax(truth) - np.nanmin(truth))
    mse = float(np.mean((pred[valid] - truth[valid]) ** 2))
    ssim = np.mean([
        structural_similarity(np.nan_to_num(t), np.nan_to_num(p), data_range=rng)
        for p, t in zip(pred, truth)
    ])
    return {"psnr": 10 * np.log10(rng**2 / mse), "ssim": float(ssim), "mae": float(np.mean(np.abs(pred[valid] - truth[valid])))}


def epe(flow: xr.Dataset | None, truth: xr.Dataset | None) -> float:
    """Mean end-point error (m s-1) of the time-mean flow against the time-mean truth."""
    if flow is None or truth is None:
        return float("nan")
    du = flow.u.mean("time").values - truth.u.mean("time").values
    dv = flow.v.mean("time").values - truth.v.mean("time").values
    return float(np.nanmean(np.hypot(du, dv)))


def panel(name: str, truth: np.ndarray, true_flow, outputs: dict, path: Path) -> None:
    """Truth and each method at the middle held-out frame; below, each method's mean motion."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mid = truth.shape[0] // 2
    columns = [("truth", truth[mid], true_flow)] + [(m, f.values[1 + mid], fl) for m, (f, fl) in outputs.items()]
    vmin, vmax = float(np.nanmin(truth)), float(np.nanmax(truth))
    fig, axes = plt.subplots(2, len(columns), figsize=(2.6 * len(columns), 5.4), squeeze=False)
    for k, (label, image, flow) in enumerate(columns):
        ax = axes[0, k]
        ax.imshow(np.squeeze(image), vmin=vmin, vmax=vmax, cmap="viridis")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
        ax = axes[1, k]
        ax.set_axis_off()
        if flow is None:
            continue
        u, v = flow.u.mean("time").values, flow.v.mean("time").values
        speed = np.hypot(u, v)
        ax.imshow(speed, cmap="magma", vmin=0)
        step = max(1, max(u.shape) // 16)
        rows, cols = np.mgrid[0 : u.shape[0] : step, 0 : u.shape[1] : step]
        # image rows grow downward; v > 0 points to increasing y, which is up on a north-up raster
        flip = -1.0 if np.diff(flow[flow.u.dims[-2]].values[:2])[0] < 0 else 1.0
        ax.quiver(cols, rows, u[::step, ::step], flip * v[::step, ::step], color="white", scale_units="xy", angles="xy")
        ax.set_title(f"{label} motion ({flow.u.attrs.get('units', '')})", fontsize=7)
    fig.suptitle(f"{name}: middle held-out frame (top), mean motion (bottom)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


GROUPS = {
    "synthetic": lambda n: n in datasets.CASES,
    "analytic": lambda n: n in datasets.ANALYTIC,
    "curved": lambda n: n in datasets.CURVED,
    "radar": lambda n: "@" in n,
    "in-place": lambda n: n in datasets.IN_PLACE,
}


def expand(names):
    """Case names with the groups ``all``, ``synthetic``, ``analytic``, ``curved`` spelled out."""
    out = []
    for name in names:
        if name == "all":
            out += [*datasets.CASES, *datasets.ANALYTIC, "mch", *datasets.IN_PLACE]
        elif name == "synthetic":
            out += list(datasets.CASES)
        elif name == "in-place":
            out += list(datasets.IN_PLACE)
        elif name in ("analytic", "curved"):
            out += list(datasets.ANALYTIC if name == "analytic" else datasets.CURVED)
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def motion_note(attrs) -> str:
    """The latent model's choice of motion and the SVF objectives it compared, if any."""
    if "xlatent_motion_choice" not in attrs:
        return ""
    note = f"{attrs['xlatent_motion_choice']}, w {attrs.get('xlatent_svf_weight', float('nan')):g}"
    if "xlatent_objective_prior" in attrs:
        note += f", obj {attrs['xlatent_objective_prior']:.4f} / {attrs['xlatent_objective_trained']:.4f}"
    return note


def parse_method(text: str) -> tuple[str, dict]:
    """``"flow:motion=svf,svf_weight=0.1"`` -> ``("flow", {"motion": "svf", "svf_weight": 0.1})``."""
    name, _, opts = text.partition(":")
    kwargs = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return name, kwargs


def skimage_tvl1(first: xr.DataArray, last: xr.DataArray, steps: int):
    """Outside baseline: scikit-image TV-L1, default settings, images scaled together to [0, 1];
    frames by the same forward/backward semi-Lagrangian blend as ``flow``; flow in m s-1."""
    import torch
    from skimage.registration import optical_flow_tvl1

    from xlatent.model.advection import arrival, departure, sample

    a, b = first.values.astype(np.float64), last.values.astype(np.float64)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    rows, cols = optical_flow_tvl1((a - lo) / (hi - lo), (b - lo) / (hi - lo))
    field = torch.from_numpy(np.stack((cols, rows)).astype(np.float32))[None]
    ta, tb = (torch.from_numpy(x.astype(np.float32))[None, None] for x in (a, b))
    frames = []
    for t in np.linspace(0, 1, steps + 1):
        fwd = sample(ta, departure([field] * 8, [t / 8] * 8)) if t > 0 else ta
        bwd = sample(tb, arrival([field] * 8, [(1 - t) / 8] * 8)) if t < 1 else tb
        frames.append(((1 - t) * fwd + t * bwd)[0, 0].numpy())
    frames = xr.DataArray(np.stack(frames), dims=("time",) + first.dims)
    seconds = float((last.time - first.time) / np.timedelta64(1, "s"))
    dx = float(first[first.dims[1]][1] - first[first.dims[1]][0])
    dy = float(first[first.dims[0]][1] - first[first.dims[0]][0])
    flow = xr.Dataset({"u": (("time",) + first.dims, (cols * dx / seconds)[None]),
                       "v": (("time",) + first.dims, (rows * dy / seconds)[None])},
                      coords={d: (d, first[d].values) for d in first.dims})
    return frames, flow


def cases(names, mch_dir, size):
    for name in names:
        if name in datasets.CASES or name in datasets.ANALYTIC or name in datasets.IN_PLACE:
            case = datasets.load(name, size=size, steps=6)
            yield name, case.first, case.last, case.frames.values[1:-1], case.flow
    if "mch" not in names:
        return
    for fname in MCH_FILES:
        path = Path(mch_dir) / fname
        if not path.exists():
            print(f"skipping the radar cases of {fname}: not found in {mch_dir} (pass --mch-dir)", file=sys.stderr)
            continue
        rain = xr.open_dataset(path, decode_coords="all").rainfall_rate.load()
        for t in MCH_STARTS:
            yield f"{fname[4:12]}@{t}", rain.isel(time=t), rain.isel(time=t + 6), rain.isel(time=slice(t + 1, t + 6)).values, None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=["all"],
                    help="case names, 'mch', or the groups 'synthetic', 'analytic', 'curved', 'in-place', 'all'")
    ap.add_argument("--methods", nargs="+", default=["linear", "ot", "flow", "advection", "latent"])
    ap.add_argument("--mch-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--size", type=int, default=128, help="side of the synthetic cases")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="LatentConfig override (JSON value)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "out" / "results.md"))
    ap.add_argument("--no-figures", action="store_true", help="skip the PNG panels")
    args = ap.parse_args(argv)
    names = expand(args.cases)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    rows, lines = [], []
    header = ("| case | method | PSNR dB | SSIM | MAE | EPE m/s | time s | peak MiB | motion |\n"
              "|---|---|---|---|---|---|---|---|---|")
    print(header, flush=True)
    for name, first, last, truth, true_flow in cases(names, args.mch_dir, args.size):
        outputs = {}
        for method in args.methods:
            base, options = parse_method(method)
            t0 = time.perf_counter()
            with PeakMemory() as mem:
                if base == "skimage-tvl1":
                    frames, flow = skimage_tvl1(first, last, 6)
                else:
                    trained = xlatent.methods.spec(base).trained
                    frames, flow = xlatent.interpolate(first, last, steps=6, method=base, progress=False,
                                                       **options, **(overrides if trained else {}))
            wall = time.perf_counter() - t0
            outputs[method] = (frames, flow)
            s = scores(frames.values[1:-1], truth)
            s["epe"] = epe(flow, true_flow)
            row = (f"| {name} | {method} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['mae']:.4f} | {s['epe']:.3f} | {wall:.1f} "
                   f"| {mem.mib:.0f} | {motion_note(frames.attrs)} |")
            print(row, flush=True)
            lines.append(row)
            rows.append((name, method, s))
        if not args.no_figures:
            panel(name, truth, true_flow, outputs, Path(args.out).parent / f"{name.replace('@', '_t')}.png")
    summary = ["", "| group | cases | method | mean PSNR dB | mean SSIM | mean EPE m/s |", "|---|---|---|---|---|---|"]
    for group, member in GROUPS.items():
        for method in args.methods:
            xs = [s for n, m, s in rows if m == method and member(n)]
            if not xs:
                continue
            mean = {k: np.nanmean([x[k] for x in xs]) if any(np.isfinite(x[k]) for x in xs) else np.nan
                    for k in ("psnr", "ssim", "epe")}
            summary.append(f"| {group} | {len(xs)} | {method} | {mean['psnr']:.2f} | {mean['ssim']:.3f} | {mean['epe']:.3f} |")
    print("\n".join(summary))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join([header, *lines, *summary]) + "\n")


if __name__ == "__main__":
    main()
