"""Whole-series benchmark: a radar series subsampled to 30 minutes and brought back to its native
step with ``interp``, and hourly ``accumulate`` against the native-step accumulation.

For each file of ``../shared/data`` (or ``--data``): the frames on the half hour are the inputs,
the others are held out. Scored:

- PSNR of the held-out frames (dB, over the range of each true frame, mean over frames) for
  ``interp(method="flow")``, the same pairs through ``xlatent.interpolate(steps=...)`` (pairwise
  ``flow``; the series path must give the same frames), ``flow`` with probability matching
  (``match=True``) and the linear blend;
- the wobble (:func:`xlatent.series.wobble`) of each, and of the true frames;
- hourly totals: RMSE (mm) of ``accumulate(method="flow")`` (default sub-steps of 1 minute), of
  the same at the native step (``substep=`` the native step: the trapezoid sum of ``interp``'s
  frames) and of the plain trapezoid sum of the 30-minute frames (``accumulate(method="linear")``)
  against the trapezoid sum of the native-step frames, and the reductions
  ``1 - RMSE_flow / RMSE_trapezoid``; and the reference the issue names, pysteps' advection
  correction (its gallery example ``advection_correction.py``, after Anagnostou and Krajewski
  1999: Lucas-Kanade motion of each pair on the log rates, both frames carried along it at
  1-minute sub-steps with bilinear ``map_coordinates`` and blended linearly in time), summed with
  the same trapezoid rule (needs ``opencv-python-headless``; the column is left out without it).

With ``--model`` (a model file or a shipped name), ``interp`` (also with probability matching,
as ``interp(model=..., match=True)``) and ``accumulate`` with that archive model are scored too.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python benchmarks/series.py [--data DIR] [--files mch_20160711.nc ...] [--json out.json]
        [--model radar-rain-2km]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

import xlatent
from xlatent import series as xs
from xlatent.archive.pretrained import named_or_file

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = ("mch_20150515.nc", "mch_20160711.nc", "mch_20170131.nc", "rmi_20210704.nc", "opera_20180824.nc",
         "opera_20241126.nc", "mrms_20190610.nc")
INPUT_STEP = np.timedelta64(30, "m")
PERIOD = np.timedelta64(1, "h")


def psnr(frames: xr.DataArray, truth: xr.DataArray) -> float:
    """Mean over frames of the PSNR against each true frame, over the range of that frame."""
    out = []
    for k in range(truth.sizes["time"]):
        t = truth.values[k]
        err = np.nanmean((frames.values[k].astype(np.float64) - t) ** 2)
        span = float(np.nanmax(t) - np.nanmin(t))
        out.append(10 * np.log10(span**2 / err) if err > 0 and span > 0 else np.nan)
    return float(np.nanmean(out))


def trapezoid_totals(native: xr.DataArray, ends: np.ndarray) -> np.ndarray:
    """Trapezoid sum (mm) of the native-step rate (mm h-1) over each period ``(end - 1 h, end]``."""
    totals = []
    for end in ends:
        win = native.sel(time=slice(end - PERIOD, end))
        if win.time.values[0] != end - PERIOD or win.time.values[-1] != end:
            raise ValueError(f"native frames do not cover the period ending {end}")
        hours = np.diff(win.time.values) / np.timedelta64(1, "h")
        v = win.values.astype(np.float64)
        totals.append(np.tensordot(hours, (v[1:] + v[:-1]) / 2, axes=1))
    return np.stack(totals)


SUBSTEP = np.timedelta64(1, "m")


def pysteps_advection_corrected(sub: xr.DataArray, substep: np.timedelta64 = SUBSTEP) -> xr.DataArray:
    """Frames at every ``substep`` between the inputs, by pysteps' advection correction.

    The gallery's procedure for each pair: Lucas-Kanade motion ``V`` (cells per interval) on the
    log rates (``buffer_mask=10``), then at fraction ``s`` the first frame carried forward by
    ``s V`` and the second carried back by ``(1 - s) V``, blended with weights ``1 - s`` and ``s``.
    """
    from pysteps import motion
    from scipy.ndimage import map_coordinates

    lucas_kanade = motion.get_method("LK")
    ny, nx = sub.shape[-2:]
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    times, frames = [], []
    for i in range(sub.sizes["time"] - 1):
        pair = sub.values[i: i + 2].astype(np.float64)
        with np.errstate(divide="ignore"):
            v = lucas_kanade(np.log(pair), fd_kwargs={"buffer_mask": 10}, verbose=False)
        t0, t1 = sub.time.values[i], sub.time.values[i + 1]
        n = int((t1 - t0) / substep)
        for k in range(0 if i == 0 else 1, n + 1):
            s = k / n
            carried_first = map_coordinates(pair[0], (y - s * v[1], x - s * v[0]), order=1)
            carried_last = map_coordinates(pair[1], (y + (1 - s) * v[1], x + (1 - s) * v[0]), order=1)
            frames.append((1 - s) * carried_first + s * carried_last)
            times.append(t0 + k * substep)
    return xr.DataArray(np.stack(frames), dims=sub.dims, coords={"time": np.array(times)})


def run_file(path: Path, model=None) -> dict:
    native = xr.open_dataset(path, decode_coords="all").rainfall_rate.load()
    times = native.time.values
    step = np.diff(times)[0]
    factor = int(INPUT_STEP / step)
    on_half_hour = times.astype("datetime64[ns]").astype(np.int64) % INPUT_STEP.astype("timedelta64[ns]").astype(np.int64) == 0
    start = int(np.flatnonzero(on_half_hour)[0])  # inputs on the half hour: hourly periods start on an input
    sub = native.isel(time=slice(start, None, factor))
    wanted = times[start: start + factor * (sub.sizes["time"] - 1) + 1]
    truth = native.sel(time=wanted)
    held = ~np.isin(wanted, sub.time.values)
    row = {"file": path.name, "native_step_min": float(step / np.timedelta64(1, "m")), "inputs": int(sub.sizes["time"]),
           "held_out": int(held.sum())}

    t0 = time.perf_counter()
    frames, flow = xs.interp(sub, wanted, progress=False)
    row["interp_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairwise = []
    for i in range(sub.sizes["time"] - 1):
        f, _ = xlatent.interpolate(sub.isel(time=i), sub.isel(time=i + 1), steps=factor, method="flow", progress=False)
        pairwise.append(f if i == 0 else f.isel(time=slice(1, None)))
    pairwise = xr.concat(pairwise, "time").drop_vars("interp_fraction")
    row["pairwise_s"] = time.perf_counter() - t0
    row["max_abs_diff_interp_vs_pairwise"] = float(np.nanmax(np.abs(frames.values - pairwise.values)))
    matched = frames.copy(data=np.stack([_match(frames, sub, t) for t in wanted]))
    linear, _ = xs.interp(sub, wanted, method="linear", progress=False)
    for name, fr in (("flow", frames), ("pairwise_flow", pairwise), ("flow_match", matched), ("linear", linear)):
        row[f"psnr_{name}"] = psnr(fr.isel(time=np.flatnonzero(held)), truth.isel(time=np.flatnonzero(held)))
        row[f"wobble_{name}"] = xs.wobble(fr, sub.time.values)
    row["wobble_truth"] = xs.wobble(truth, sub.time.values)

    t0 = time.perf_counter()
    acc_flow = xlatent.accumulate(sub, "1h", progress=False)
    row["accumulate_s"] = time.perf_counter() - t0
    acc_lin = xlatent.accumulate(sub, "1h", method="linear", progress=False)
    true_totals = trapezoid_totals(native, acc_flow.time.values)
    # accumulate(substep=<native step>) renders the fractions interp rendered: its totals are the
    # trapezoid sums of interp's frames (tests/test_series.py checks the equality)
    acc_native = trapezoid_totals(frames, acc_flow.time.values)
    rmse = {k: float(np.sqrt(np.nanmean((np.asarray(a) - true_totals) ** 2)))
            for k, a in (("flow", acc_flow.values), ("flow_native", acc_native), ("trapezoid", acc_lin.values))}
    row.update({"periods": int(acc_flow.sizes["time"]), "rmse_flow_mm": rmse["flow"], "rmse_trapezoid_mm": rmse["trapezoid"],
                "rmse_flow_native_mm": rmse["flow_native"], "rmse_reduction": 1 - rmse["flow"] / rmse["trapezoid"],
                "rmse_reduction_native": 1 - rmse["flow_native"] / rmse["trapezoid"]})
    try:
        import cv2  # noqa: F401  (pysteps' Lucas-Kanade needs it)
    except ImportError:
        pass
    else:
        t0 = time.perf_counter()
        corrected = pysteps_advection_corrected(sub)
        row["pysteps_s"] = time.perf_counter() - t0
        row["rmse_pysteps_mm"] = float(np.sqrt(np.nanmean((trapezoid_totals(corrected, acc_flow.time.values)
                                                           - true_totals) ** 2)))
        row["rmse_reduction_pysteps"] = 1 - row["rmse_pysteps_mm"] / rmse["trapezoid"]
    if model is not None:  # the archive model on the same series: interp and accumulate with model=
        t0 = time.perf_counter()
        by_model, _ = xs.interp(sub, wanted, model=model, progress=False)
        row["interp_model_s"] = time.perf_counter() - t0
        row["psnr_model"] = psnr(by_model.isel(time=np.flatnonzero(held)), truth.isel(time=np.flatnonzero(held)))
        row["wobble_model"] = xs.wobble(by_model, sub.time.values)
        matched_model = by_model.copy(data=np.stack([_match(by_model, sub, t) for t in wanted]))
        row["psnr_model_match"] = psnr(matched_model.isel(time=np.flatnonzero(held)), truth.isel(time=np.flatnonzero(held)))
        row["wobble_model_match"] = xs.wobble(matched_model, sub.time.values)
        t0 = time.perf_counter()
        acc_model = xlatent.accumulate(sub, "1h", model=model, progress=False)
        row["accumulate_model_s"] = time.perf_counter() - t0
        row["rmse_model_mm"] = float(np.sqrt(np.nanmean((acc_model.values - true_totals) ** 2)))
        row["rmse_reduction_model"] = 1 - row["rmse_model_mm"] / rmse["trapezoid"]
    return row


def _match(frames: xr.DataArray, sub: xr.DataArray, t: np.datetime64) -> np.ndarray:
    """The frame at ``t`` with :func:`xlatent.series.match_quantiles` applied as ``interp(match=True)``
    does (input frames unchanged)."""
    frame = frames.sel(time=t).values
    if t in sub.time.values:
        return frame
    i = int(np.searchsorted(sub.time.values, t)) - 1
    t0, t1 = sub.time.values[i], sub.time.values[i + 1]
    return xs.match_quantiles(frame, sub.values[i], sub.values[i + 1], float((t - t0) / (t1 - t0)))


def table(rows: list[dict]) -> str:
    head = ("| file | step | held out | PSNR flow (interp) | pairwise flow | flow + match | linear | wobble flow / match / "
            "linear / truth | hourly RMSE flow / trapezoid (mm) | reduction | reduction, native substep | "
            "reduction, pysteps LK | interp s | accumulate s |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        lines.append(
            f"| {r['file']} | {r['native_step_min']:g} min | {r['held_out']} | {r['psnr_flow']:.2f} | "
            f"{r['psnr_pairwise_flow']:.2f} | "
            f"{r['psnr_flow_match']:.2f} | {r['psnr_linear']:.2f} | {r['wobble_flow']:.3f} / {r['wobble_flow_match']:.3f} / "
            f"{r['wobble_linear']:.3f} / {r['wobble_truth']:.3f} | {r['rmse_flow_mm']:.3f} / {r['rmse_trapezoid_mm']:.3f} | "
            f"{100 * r['rmse_reduction']:.1f} % | {100 * r['rmse_reduction_native']:.1f} % | "
            f"{100 * r.get('rmse_reduction_pysteps', np.nan):.1f} % | {r['interp_s']:.0f} | "
            f"{r['accumulate_s']:.0f} |")
    keys = ("psnr_flow", "psnr_pairwise_flow", "psnr_flow_match", "psnr_linear", "wobble_flow", "wobble_flow_match",
            "wobble_linear", "wobble_truth", "rmse_reduction", "rmse_reduction_native", "rmse_reduction_pysteps")
    # the wobble is NaN with one held-out frame per interval
    mean = {k: float(np.nanmean([r.get(k, np.nan) for r in rows])) for k in keys}
    lines.append(
        f"| mean | | | {mean['psnr_flow']:.2f} | {mean['psnr_pairwise_flow']:.2f} | {mean['psnr_flow_match']:.2f} | "
        f"{mean['psnr_linear']:.2f} | {mean['wobble_flow']:.3f} / {mean['wobble_flow_match']:.3f} / "
        f"{mean['wobble_linear']:.3f} / {mean['wobble_truth']:.3f} | | {100 * mean['rmse_reduction']:.1f} % | "
        f"{100 * mean['rmse_reduction_native']:.1f} % | {100 * mean['rmse_reduction_pysteps']:.1f} % | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--files", nargs="*", default=list(FILES))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--model", default=None,
                        help="also interp/accumulate with this archive model: a file, or a shipped name (radar-rain-2km)")
    args = parser.parse_args()
    model = None if args.model is None else named_or_file(args.model, device="cpu")
    rows = []
    for name in args.files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", xlatent.exceptions.XlatentWarning)
            rows.append(run_file(args.data / name, model))
        r = rows[-1]
        if model is not None:
            print(f"{name}: model PSNR {r['psnr_model']:.2f} (flow {r['psnr_flow']:.2f}), with match "
                  f"{r['psnr_model_match']:.2f}; wobble {r['wobble_model']:.3f}, with match {r['wobble_model_match']:.3f} "
                  f"(flow {r['wobble_flow']:.3f} / {r['wobble_flow_match']:.3f}); RMSE reduction "
                  f"{100 * r['rmse_reduction_model']:.1f} % (flow {100 * r['rmse_reduction']:.1f} %); "
                  f"interp {r['interp_model_s']:.0f} s (flow {r['interp_s']:.0f} s)", flush=True)
        print(f"{name}: PSNR flow {r['psnr_flow']:.2f} pairwise {r['psnr_pairwise_flow']:.2f} linear {r['psnr_linear']:.2f}; "
              f"wobble {r['wobble_flow']:.3f}; RMSE reduction {100 * r['rmse_reduction']:.1f} % "
              f"(native substep {100 * r['rmse_reduction_native']:.1f} %, pysteps LK "
              f"{100 * r.get('rmse_reduction_pysteps', np.nan):.1f} %)", flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
