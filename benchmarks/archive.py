"""Benchmark of the archive model (issue 21): frames left out of series, scored against linear and flow.

Parts (``--part``):

- ``mch``: fit on two MeteoSwiss days, test on the third, all three rotations; windows
  ``(t, t + K)``, K 3-12, every in-between frame scored (PSNR on the range of the true frames).
- ``other``: fit on the three MeteoSwiss days, test on the RMI, OPERA and MRMS files, K 3-12,
  and on the analytic flows (rain texture, 64²); the model is written to ``--save`` (the shipped
  ``xlatent.pretrained_interpolator("radar-rain-2km")`` is this file).
- ``own``: fit on one radar's frames before a cut, test on windows after it (time-blocked).
- ``shipped``: the model ``--model`` (a file or a shipped name) on the windows of ``other``, no fit.
- ``cost``: seconds per pair, model against ``flow`` (same pairs, same process).
- ``fit-time``: the default fit on the three MeteoSwiss days end to end, nothing cached.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/archive.py --part mch --out /tmp/archive_mch.json``
(``--budget``: seconds of training per fit; the SVF fits of the windows are cached in ``--cache``).
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
from xlatent import datasets
from xlatent.archive import fit_interpolator, window_pairs
from xlatent.archive import windows as archive_windows
from xlatent.archive.pretrained import named_or_file
from xlatent.stack import Series

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MCH = ("20150515", "20160711", "20170131")
OTHER = ("rmi_20210704", "opera_20180824", "opera_20241126", "mrms_20190610")


def _open(name: str) -> xr.DataArray:
    path = DATA / f"{name}.nc"
    if not path.is_file():
        path = Path("/work/shared/data") / f"{name}.nc"
    return xr.open_dataset(path, decode_coords="all").rainfall_rate.load()


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    """PSNR over the in-between frames, on the range of the true frames (benchmarks/run.py)."""
    valid = np.isfinite(pred) & np.isfinite(truth)
    rng = float(np.nanmax(truth) - np.nanmin(truth))
    return float(10 * np.log10(rng**2 / np.mean((pred[valid] - truth[valid]) ** 2)))


def closed(model):
    """The same model with its gate shut: exactly ``flow``'s frames, from the same SVF fits."""
    import copy

    shut = copy.copy(model)
    shut._meta = {**model._meta, "min_skill": float("inf")}
    return shut


def score_windows(model, series: xr.DataArray, windows, cache) -> list[dict]:
    """Each window's in-between frames by linear, ``flow`` and the model, scored on the truth.

    The path of ``model.interpolate`` (the same hypotheses, gate and clipping to the ends'
    range) on the window's cached hypotheses (``xlatent.archive.windows.window``): each window's ``flow`` and
    TV-L1 fits are made once and shared by every model scored on it. Normalised values: PSNR on
    the truth's range is the same as in physical units."""
    s = Series.from_dataarray(series)
    rows = []
    for t, k in windows:
        win = archive_windows.window(s, t, k, model.trained_on["step_s"], cache, "cpu")
        span = float(s.seconds[t + k] - s.seconds[t])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shut, _ = model._gate(s.frame(t), s.grid, span, win["v"], win["mask"])
        frac = np.asarray(win["fractions"])
        hyp = win if model.gate_open else {"base": win["base"]}
        pred, gate = model._frames(win["first"], win["last"], win["mask"], hyp, frac, win["steps"], shut)
        ends = np.stack((win["first"], win["last"]))[..., win["mask"]]
        lo, hi = ends.min(axis=(0, 2))[:, None, None], ends.max(axis=(0, 2))[:, None, None]
        lin = (1 - frac[:, None, None, None]) * win["first"] + frac[:, None, None, None] * win["last"]
        valid = win["valid"].all(axis=0)
        def score(x, lo=lo, hi=hi, truth=win["targets"], valid=valid):
            return archive_windows.psnr(np.clip(x, lo, hi), truth, valid)

        rows.append({"t": t, "K": k, "linear": score(lin), "flow": score(win["base"]), "model": score(pred),
                     "alt": score(win["alt"]), "mean2": score(0.5 * (win["base"] + win["alt"])),
                     "gate": gate})
    return rows


def summary(rows: list[dict]) -> dict:
    out = {m: float(np.mean([r[m] for r in rows])) for m in ("linear", "flow", "model", "alt", "mean2")}
    out["windows"] = len(rows)
    out["open"] = sum(r["gate"] == "open" for r in rows)
    out["better"] = sum(r["model"] > r["flow"] + 1e-9 for r in rows)
    return out


FIT_OPTIONS: dict = {}  # fit_interpolator options from the command line (--windows)


def _lr(lr):
    """``lr=`` for fit_interpolator when one was asked for, else nothing (its default), and the
    other options given on the command line."""
    return {**FIT_OPTIONS, **({} if lr is None else {"lr": lr})}


def part_mch(budget, cache, n_test, lr=None):
    days = {d: _open(f"mch_{d}") for d in MCH}
    result = {}
    for test in MCH:
        t0 = time.perf_counter()
        model = fit_interpolator([days[d] for d in MCH if d != test], time_budget=budget, cache=cache, **_lr(lr),
                                 progress=False)
        fit_s = time.perf_counter() - t0
        # every window fit_interpolator would take from this day (its SVF fits are cached): the
        # whole day is held out of this model
        windows = sum(window_pairs(days[test].sizes["time"], (3, 12), 32, 0.25), [])
        rows = score_windows(model, days[test], windows, cache)
        result[test] = {"fit_s": fit_s, "skill": model.skill, "stopped": model.history["stopped"],
                        "summary": summary(rows), "rows": rows}
        print(test, result[test]["summary"], model.skill, flush=True)
    return result


def part_other(budget, cache, n_test, lr=None, save="/tmp/archive_mch3.pt"):
    days = [_open(f"mch_{d}") for d in MCH]
    t0 = time.perf_counter()
    model = fit_interpolator(days, time_budget=budget, cache=cache, progress=False, **_lr(lr))
    fit_s = time.perf_counter() - t0
    print("fit on 3 MCH days (defaults)", fit_s, model.skill, model.history["stopped"], flush=True)
    result = {"fit_s": fit_s, "skill": model.skill, "stopped": model.history["stopped"],
              "steps": len(model.history["loss"]), **score_other(model, cache, n_test)}
    model.save(save)
    return result


def score_other(model, cache, n_test) -> dict:
    """``model`` on the other services' windows and on the analytic flows."""
    result = {"services": {}, "analytic": {}}
    for name in OTHER:
        series = _open(name)
        windows = window_pairs(series.sizes["time"], (3, 12), n_test, 0.0)[0]
        rows = score_windows(model, series, windows, cache)
        result["services"][name] = {"summary": summary(rows), "rows": rows}
        print(name, result["services"][name]["summary"], flush=True)
    for name in datasets.ANALYTIC:
        case = datasets.analytic(name, size=64, steps=6, texture="rain")
        truth = case.frames.values[1:-1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fm, _ = model.interpolate(case.first, case.last, 6)
            ff, _ = closed(model).interpolate(case.first, case.last, 6)
        result["analytic"][name] = {"flow": psnr(ff.values[1:-1], truth), "model": psnr(fm.values[1:-1], truth),
                                    "gate": fm.attrs["xlatent_gate"]}
        print(name, result["analytic"][name], flush=True)
    return result


def part_own(budget, cache, cut=30, lr=None, init=None, names=("mch_20160711", "rmi_20210704")):
    result = {}
    for name in names:
        series = _open(name)
        past = series.isel(time=slice(0, cut))
        model = fit_interpolator(past, time_budget=budget, cache=cache, progress=False, init=init, **_lr(lr))
        n = series.sizes["time"]
        windows = [(t, k) for k in range(3, 10) for t in range(cut, n - k, 3)]
        rows = score_windows(model, series, windows, cache)
        result[name] = {"skill": model.skill, "summary": summary(rows), "rows": rows, "stopped": model.history["stopped"],
                        "best_step": model.history["best_step"]}
        if init is not None:  # the starting model alone on the same windows, for scale
            result[name]["init_alone"] = summary(score_windows(named_or_file(init, device="cpu"), series, windows, cache))
        print(name, result[name]["summary"], model.skill, result[name].get("init_alone"), flush=True)
    return result


def part_fit_time():
    """The default fit end to end on the three MeteoSwiss days: no cache, every window's
    hypotheses computed (run with the torch threads of the machine: ``--threads``)."""
    days = [_open(f"mch_{d}") for d in MCH]
    t0 = time.perf_counter()
    model = fit_interpolator(days, progress=False)
    h = model.history
    out = {"seconds": time.perf_counter() - t0, "training_s": h["seconds"], "steps": len(h["loss"]),
           "stopped": h["stopped"], "best_step": h["best_step"], "skill": model.skill}
    print(out, flush=True)
    return out


def part_cost(model_path, pairs=3):
    model = xlatent.load_interpolator(model_path, device="cpu")
    series = _open("mch_20160711")
    out = {"flow": [], "model": []}
    for i in range(pairs):
        a, b = series.isel(time=5 + 8 * i), series.isel(time=11 + 8 * i)
        t0 = time.perf_counter()
        xlatent.interpolate(a, b, 6, method="flow", progress=False)
        out["flow"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.interpolate(a, b, 6)
        out["model"].append(time.perf_counter() - t0)
    out["ratio"] = float(np.sum(out["model"]) / np.sum(out["flow"]))
    print(out, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("mch", "other", "own", "cost", "fit-time", "shipped"), required=True,
                        help="shipped: the model file --model (or a shipped name) on the other services, no fit")
    parser.add_argument("--budget", type=float, default=240.0, help="training seconds per fit")
    parser.add_argument("--cache", default="/tmp/xlatent_archive_cache", help="folder of SVF fits per window")
    parser.add_argument("--tests", type=int, default=8, help="test windows per series of other services")
    parser.add_argument("--model", default="/tmp/archive_mch3.pt", help="model file for --part cost and shipped")
    parser.add_argument("--save", default="/tmp/archive_mch3.pt",
                        help="where --part other writes its model (the shipped 'radar-rain-2km' is this file)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate of the fits (default: the library's)")
    parser.add_argument("--init", default=None, help="--part own: start the fits from this model (file or shipped name)")
    parser.add_argument("--own", nargs="+", default=["mch_20160711", "rmi_20210704"], help="--part own: the series")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--windows", type=int, default=None,
                        help="windows_per_series of the fits (default: the library's)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.windows is not None:
        FIT_OPTIONS["windows_per_series"] = args.windows
    import torch

    torch.set_num_threads(args.threads)
    if args.part == "mch":
        result = part_mch(args.budget, args.cache, args.tests, args.lr)
    elif args.part == "other":
        result = part_other(args.budget, args.cache, args.tests, args.lr, args.save)
    elif args.part == "own":
        result = part_own(args.budget, args.cache, lr=args.lr, init=args.init, names=args.own)
    elif args.part == "shipped":
        result = score_other(named_or_file(args.model, device="cpu"), args.cache, args.tests)
    elif args.part == "fit-time":
        result = part_fit_time()
    else:
        result = part_cost(args.model)
    Path(args.out).write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
