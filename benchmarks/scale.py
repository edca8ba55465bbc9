"""Scale benchmark: a synthetic pair generated chunk by chunk into Zarr, opened lazily,
interpolated with the chunked path and streamed to Zarr. Not a test: prints a markdown row
per run (wall time, megapixels per second, peak resident memory, and the middle frame's PSNR
against the analytic truth on the central 1024² cells, beside a linear blend's) and appends it to
``benchmarks/out/scale.md``.

    python benchmarks/scale.py --size 1024 4096 --scheduler threads cluster
    python benchmarks/scale.py --size 16384 --scheduler threads --steps 2

The scene is an analytic texture (a sum of Fourier modes, evaluated per chunk at global
coordinates) translated by ``--shift`` cells: no array the size of the scene exists in memory
at any point. Training (``xlatent.fit`` on ``sample_patches`` windows cut from the lazy scene)
is timed apart from inference (frames and flow written to one Zarr store by
``xlatent.save_result``, band by band; ``--writer xarray`` uses xarray's ``to_zarr`` instead). Peak
memory is the resident set of this process plus its children (the LocalCluster's workers),
polled every 0.1 s with psutil.
"""

from __future__ import annotations

import argparse
import json
import shutil
import threading
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import rioxarray  # noqa: F401  (.rio)
import xarray as xr

import xlatent
from xlatent.io import result_dataset

OUT = Path(__file__).parent / "out"
N_MODES = 48
SCENE = f"broadband texture, {N_MODES} modes, wavelengths 4-1024 cells"  # stored with the pair


def _texture_block(block_info=None, shift=(0.0, 0.0), seed=0):
    """Texture of one chunk at global cell coordinates, moved by ``shift`` (columns, rows)."""
    loc = block_info[None]["array-location"]
    rows = np.arange(*loc[0], dtype=np.float64)[:, None] - shift[1]
    cols = np.arange(*loc[1], dtype=np.float64)[None, :] - shift[0]
    rng = np.random.default_rng(seed)
    # wavelengths 4 to 1024 cells, log-uniform, amplitude ~ 1/k: energy at every scale, as in
    # geophysical fields (a narrow band of scales is nearly periodic and makes the motion ambiguous)
    k = 2 * np.pi / np.exp(rng.uniform(np.log(4), np.log(1024), N_MODES))
    angle = rng.uniform(0, 2 * np.pi, N_MODES)
    phase = rng.uniform(0, 2 * np.pi, N_MODES)
    out = np.zeros((rows.shape[0], cols.shape[1]))
    for kk, aa, pp in zip(k, angle, phase):
        out += np.cos(kk * (np.cos(aa) * cols + np.sin(aa) * rows) + pp) / kk
    spread = np.sqrt(np.sum(0.5 / k**2))  # the texture's standard deviation, the same in every chunk
    return np.exp(0.6 * out / spread).astype(np.float32)


def generate(path: Path, size: int, chunk: int, shift: tuple[float, float]) -> None:
    """Write the pair ``first``/``last`` to a Zarr store, chunk by chunk."""
    chunks = da.core.normalize_chunks((chunk, chunk), (size, size))
    first, last = (da.map_blocks(_texture_block, chunks=chunks, dtype=np.float32, shift=s,
                                 meta=np.empty((0, 0), np.float32)) for s in ((0.0, 0.0), shift))
    coords = {"y": 500_000.0 - 1000.0 * (np.arange(size) + 0.5), "x": -500_000.0 + 1000.0 * (np.arange(size) + 0.5)}
    ds = xr.Dataset({"first": (("y", "x"), first), "last": (("y", "x"), last)}, coords=coords)
    ds = ds.rio.write_crs("EPSG:3413")
    ds.attrs["scene"] = SCENE
    with dask.config.set(scheduler="threads"):
        ds.to_zarr(path, mode="w")


def _stored_scene(path: Path) -> str | None:
    try:
        return xr.open_zarr(path).attrs.get("scene")
    except (FileNotFoundError, KeyError, ValueError):
        return None


def _rss_tree() -> int:
    import psutil

    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


class Peak:
    """Peak resident memory of this process and its children while the block runs."""

    def __enter__(self):
        self.peak, self._run = _rss_tree(), True
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def _poll(self):
        while self._run:
            self.peak = max(self.peak, _rss_tree())
            time.sleep(0.1)

    def __exit__(self, *exc):
        self._run = False
        self._t.join()
        self.gib = self.peak / 2**30


def run(size: int, scheduler: str, args) -> str:
    work = Path(args.workdir) / f"scale_{size}"
    work.mkdir(parents=True, exist_ok=True)
    src = work / "pair.zarr"
    if _stored_scene(src) != SCENE:  # absent, or written by an earlier generator: the truth would differ
        t0 = time.perf_counter()
        generate(src, size, args.chunks, (args.shift, 0.5 * args.shift))
        print(f"generated {size}^2 in {time.perf_counter() - t0:.0f} s", flush=True)
    ds = xr.open_zarr(src, decode_coords="all", chunks={"y": args.chunks, "x": args.chunks})
    first = ds["first"].assign_coords(time=np.datetime64("2024-03-01T00:00", "ns"))
    last = ds["last"].assign_coords(time=np.datetime64("2024-03-01T12:00", "ns"))
    options = {"max_iters": args.max_iters, "sample_patches": args.sample_patches, "progress": False}
    if args.max_displacement is not None:
        options["max_displacement"] = args.max_displacement
    options.update({k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)})

    client = cluster = None
    if scheduler == "cluster":
        from distributed import Client, LocalCluster

        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, memory_limit="6GiB")
        client = Client(cluster)
        ctx = dask.config.set({})
    else:
        ctx = dask.config.set(scheduler="threads", num_workers=2)
    try:
        with ctx:
            t0 = time.perf_counter()
            with Peak() as fit_mem:
                model = xlatent.fit(first, last, **options)
            fit_s = time.perf_counter() - t0
            out = work / f"out_{scheduler}.zarr"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            with Peak() as mem:
                frames = model.frames(args.steps, first, last, progress=False)
                flow = model.flow(first, last, progress=False)
                if args.writer == "bands":
                    xlatent.save_result(frames, flow, out, progress=False)
                else:  # xarray's own writer, the whole graph at once
                    result_dataset(frames, flow).to_zarr(out, mode="w")
            wall = time.perf_counter() - t0
    finally:
        if client is not None:
            client.close()
            cluster.close()
    mpx = size * size / 1e6
    psnr, blend = check(out, size, args)
    row = (f"| {size}² | {args.chunks} | {scheduler} | {args.writer} | {args.steps} | {model.config.prior_coarsen} "
           f"| {fit_s:.0f} | "
           f"{fit_mem.gib:.2f} | {wall:.0f} | {mpx / wall:.3f} | {mem.gib:.2f} | {psnr:.2f} | {blend:.2f} |")
    print(row, flush=True)
    return row


def check(store: Path, size: int, args, window: int = 1024) -> tuple[float, float]:
    """PSNR (dB) of the middle frame against the analytic texture at that time, and of the
    linear blend of the two inputs, on the central ``window`` cells (the scene's if smaller)."""
    from skimage.metrics import peak_signal_noise_ratio

    frames, _ = xlatent.open_result(store, chunks={})
    k = args.steps // 2
    t = k / args.steps
    n = min(window, size)
    lo = (size - n) // 2
    cut = {"y": slice(lo, lo + n), "x": slice(lo, lo + n)}
    where = {None: {"array-location": [(lo, lo + n), (lo, lo + n)]}}
    shift = (args.shift, 0.5 * args.shift)
    truth = _texture_block(block_info=where, shift=(t * shift[0], t * shift[1]))
    first, last = (_texture_block(block_info=where, shift=s) for s in ((0.0, 0.0), shift))
    got = frames.isel(time=k, **cut).values
    span = float(truth.max() - truth.min())
    return (peak_signal_noise_ratio(truth, got, data_range=span),
            peak_signal_noise_ratio(truth, (1 - t) * first + t * last, data_range=span))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--scheduler", nargs="+", default=["threads", "cluster"], choices=["threads", "cluster"])
    ap.add_argument("--chunks", type=int, default=512, help="dask chunk side (model tiles stay config.tile)")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--shift", type=float, default=3.0, help="true displacement along x, cells (half along y)")
    ap.add_argument("--max-iters", type=int, default=100)
    ap.add_argument("--sample-patches", type=int, default=64)
    ap.add_argument("--max-displacement", type=float, default=None,
                    help="bound on the motion in cells (skips the pass that measures it)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="LatentConfig override (JSON value)")
    ap.add_argument("--workdir", default="/tmp/xlatent_scale")
    ap.add_argument("--writer", default="bands", choices=["bands", "xarray"],
                    help="xlatent.save_result (band by band) or xarray's to_zarr (one graph)")
    args = ap.parse_args(argv)
    header = ("| scene | chunk | scheduler | writer | steps | prior coarsen | fit s | fit peak GiB | inference s | Mpx/s | "
              "inference peak GiB | mid-frame PSNR dB | linear blend PSNR dB |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(header, flush=True)
    OUT.mkdir(exist_ok=True)
    for size in args.size:
        for scheduler in args.scheduler:
            row = run(size, scheduler, args)
            with open(OUT / "scale.md", "a") as f:
                f.write(row + "\n")


if __name__ == "__main__":
    main()
