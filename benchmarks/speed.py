"""Speed of the in-memory methods per scene size, against scikit-image TV-L1 in the same run.

Not a test: prints one markdown row per size and method with the wall time (median of
``--repeats``), its ratio to scikit-image TV-L1's time at that size (measured in this run, so
that the ratio holds on a shared or busy machine), the peak resident memory above the start
(polled) and, on a GPU, the peak GPU memory and the GPU's mean utilisation while the method ran.

    python benchmarks/speed.py                       # 128², 512², 2048²; flow on the GPU if any
    python benchmarks/speed.py --sizes 128 512 --repeats 3 --device cpu

Methods: ``linear``; ``skimage-tvl1`` (scikit-image TV-L1 with its defaults on the two images
scaled to [0, 1], rendered with ``flow``'s blend: benchmarks/run.py); ``flow`` (xlatent's
default motion, the stationary velocity, on ``--device``); ``latent-forward``: the latent
model's inference alone (F's fields and the rendered frames of an untrained default model, tiles
and halo as in use; training is not timed), up to ``--latent-max`` cells a side on a CPU. The
pair is the synthetic rotation of :func:`xlatent.datasets.rotation` at each size, ``--steps``
intervals.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
from run import PeakMemory, skimage_tvl1

import xlatent
from xlatent import datasets


class GpuUse:
    """Mean GPU utilisation (percent, polled every 0.05 s) while the block runs, and the peak
    GPU memory it allocated; both None without a CUDA GPU."""

    def __init__(self, device: str):
        import torch

        self.cuda = device != "cpu" and torch.cuda.is_available()
        self.samples: list[float] = []
        self.util = self.peak_mib = None

    def _read(self) -> float | None:
        import torch

        try:
            return float(torch.cuda.utilization())
        except Exception:  # torch reads it through pynvml, which may be missing
            if shutil.which("nvidia-smi") is None:
                return None
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, check=False).stdout.split()
            return float(out[0]) if out else None

    def _poll(self):
        while self._run:
            value = self._read()
            if value is not None:
                self.samples.append(value)
            time.sleep(0.05)

    def __enter__(self):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._run = True
            self._t = threading.Thread(target=self._poll, daemon=True)
            self._t.start()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self._run = False
            self._t.join()
            self.util = statistics.mean(self.samples) if self.samples else None
            self.peak_mib = torch.cuda.max_memory_allocated() / 2**20


def latent_forward(first, last, steps: int, device: str):
    """F's fields and the frames of an untrained default latent model on the pair (inference only)."""
    from xlatent.config import LatentConfig
    from xlatent.engine import LatentCore

    a = first.values[None].astype(np.float32)
    b = last.values[None].astype(np.float32)
    core = LatentCore(1, LatentConfig(flow_prior=None), device=device, seed=0)
    fields = core.fields(a, b)
    return core.frames(a, b, fields, np.linspace(0.0, 1.0, steps + 1))


def run_method(method: str, first, last, steps: int, device: str):
    if method == "skimage-tvl1":
        return skimage_tvl1(first, last, steps)
    if method == "latent-forward":
        return latent_forward(first, last, steps, device)
    return xlatent.interpolate(first, last, steps=steps, method=method, progress=False,
                               **({"device": device} if method == "flow" else {}))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 2048])
    ap.add_argument("--methods", nargs="+", default=["linear", "skimage-tvl1", "flow", "latent-forward"])
    ap.add_argument("--device", default="auto", help="torch device of flow and latent-forward")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--latent-max", type=int, default=512, help="largest size of latent-forward on a CPU")
    args = ap.parse_args(argv)

    import torch

    from xlatent.device import resolve_device

    device = str(resolve_device(args.device))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else ""), file=sys.stderr)
    warm = datasets.rotation(size=32, steps=2)
    for method in args.methods:  # first calls pay one-off imports (torch.optim loads torch._dynamo)
        run_method(method, warm.first, warm.last, 2, device)
    print("| size | method | device | time s | / TV-L1 | peak MiB | GPU peak MiB | GPU util % |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        case = datasets.rotation(size=size, steps=2)
        base = None
        for method in sorted(args.methods, key=lambda m: m != "skimage-tvl1"):  # the reference first
            on = device if method in ("flow", "latent-forward") else "cpu"
            if method == "latent-forward" and on == "cpu" and size > args.latent_max:
                print(f"| {size}² | {method} | {on} | skipped (--latent-max {args.latent_max}) | | | | |", flush=True)
                continue
            times, peak = [], 0.0
            for _ in range(args.repeats):
                with PeakMemory() as mem, GpuUse(on) as gpu:
                    t0 = time.perf_counter()
                    run_method(method, case.first, case.last, args.steps, on)
                    if gpu.cuda:
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - t0)
                peak = max(peak, mem.mib)
            seconds = statistics.median(times)
            if method == "skimage-tvl1":
                base = seconds
            ratio = f"{seconds / base:.2f}" if base else "–"
            gpu_peak = f"{gpu.peak_mib:.0f}" if gpu.peak_mib is not None else "–"
            util = f"{gpu.util:.0f}" if gpu.util is not None else "–"
            print(f"| {size}² | {method} | {on} | {seconds:.2f} | {ratio} | {peak:.0f} | {gpu_peak} | {util} |", flush=True)


if __name__ == "__main__":
    main()
