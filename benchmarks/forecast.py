"""Forecast skill by lead time: latent (Donà et al. 2021), its ablation without S, flow, pysteps, persistence.

Not a timed test. Two datasets:

- **WaveEq** (``xlatent.datasets.wave_equation``, 32 x 32): the latent models train on
  ``--wave-train`` sequences and are scored on 2 held-out sequences, from several context windows.
- **Radar** (the MeteoSwiss series in ``../shared/data``, 128 x 128 cells of 2 km, 5 min): the
  latent models train on the first 28 frames of the three series together; each series is then
  forecast from frames 24-27 and scored on frames 28-39 (12 leads, 5 to 60 min).

PSNR uses the range of the true frames of the case; SSIM (scikit-image) the same range; MAE in
the data's units. Prints markdown tables and writes ``benchmarks/out/forecast_skill.png``.

Methods: ``persistence``; ``flow`` (the library's semi-Lagrangian extrapolation along its TV-L1
motion); ``pysteps`` / ``pysteps VET`` (pysteps' Lucas-Kanade / VET motion on the last 3 frames,
dBR for rain, and its semi-Lagrangian extrapolation: the nowcasting reference); ``latent``.

Run: ``python benchmarks/forecast.py --budget 150`` (seconds of training per latent model;
``--budget 0`` trains with :class:`xlatent.ForecastConfig`'s defaults, as ``forecast`` does);
``--methods persistence flow pysteps "pysteps VET"`` skips the latent training (seconds).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import xarray as xr

import xlatent
from xlatent.datasets import wave_equation

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out"
CONTEXT, HORIZON = 4, 12
METHODS = ["persistence", "flow", "pysteps", "pysteps VET", "latent"]


def scores(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(lead, 3)``: PSNR, SSIM, MAE per lead of ``(lead, H, W)`` arrays."""
    from skimage.metrics import structural_similarity

    rng = float(np.nanmax(truth) - np.nanmin(truth)) or 1.0
    out = []
    for p, t in zip(pred, truth):
        ok = np.isfinite(p) & np.isfinite(t)
        p, t = np.where(ok, p, 0.0), np.where(ok, t, 0.0)
        mse = float(((p - t) ** 2)[ok].mean())
        out.append((10 * np.log10(rng**2 / max(mse, 1e-12)), structural_similarity(t, p, data_range=rng),
                    float(np.abs(p - t)[ok].mean())))
    return np.array(out)


def evaluate(cases, forecasters) -> dict[str, np.ndarray]:
    """Mean scores ``(lead, 3)`` per method over ``cases`` of ``(series up to t0, truth frames)``."""
    table: dict[str, list[np.ndarray]] = {}
    for series, truth in cases:
        for name, fn in forecasters.items():
            pred = fn(series)
            table.setdefault(name, []).append(scores(np.asarray(pred.values), np.asarray(truth.values)))
    return {k: np.mean(v, axis=0) for k, v in table.items()}


def baselines(db: bool) -> dict:
    kw = dict(horizon=HORIZON, context=CONTEXT, progress=False)
    return {
        "persistence": lambda s: s.latentdyn.forecast(method="persistence", **kw),
        "flow": lambda s: s.latentdyn.forecast(method="flow", **kw),
        "pysteps": pysteps_forecaster("LK", db),
        "pysteps VET": pysteps_forecaster("VET", db),
    }


def models(chosen: list[str], db: bool, train, budget: float, seed: int, **options) -> dict:
    """The forecasters named in ``chosen`` (the latent ones are trained only when asked for)."""
    out = {k: v for k, v in baselines(db).items() if k in chosen}
    if "latent" in chosen:
        out.update(latent_models(train, budget, seed, **options))
    return out


def pysteps_forecaster(motion: str = "LK", db: bool = False):
    """pysteps' reference nowcast: ``motion.get_method(motion)`` on the last 3 frames (VET's most; in
    dBR for rain, ``db=True``, as pysteps' examples do), then ``nowcasts.get_method("extrapolation")``
    (semi-Lagrangian, linear interpolation) of the last frame; cells advected in from outside the
    domain get the last frame's minimum (no rain)."""
    from pysteps import motion as pm
    from pysteps import nowcasts
    from pysteps.utils import transformation

    def fn(s: xr.DataArray) -> xr.DataArray:
        frames = np.asarray(s.values[-3:], dtype=np.float64)
        low = np.nanmin(frames)
        filled = np.where(np.isfinite(frames), frames, low)  # the motion methods need NaN-free fields
        fields = transformation.dB_transform(filled, threshold=0.1, zerovalue=-15.0)[0] if db else filled
        kw = {"verbose": False} if motion == "VET" else {}
        velocity = pm.get_method(motion)(fields, **kw)
        out = nowcasts.get_method("extrapolation")(filled[-1], velocity, HORIZON,
                                                   extrap_kwargs={"outval": "min"})
        template = s.latentdyn.forecast(method="persistence", horizon=HORIZON, context=CONTEXT, progress=False)
        return template.copy(data=np.where(np.isfinite(template.values), out, np.nan).astype(template.dtype))

    return fn


def latent_models(train, budget: float, seed: int, **options) -> dict:
    out = {}
    for name, static in (("latent", True), ("latent (no S)", False)):
        t = time.perf_counter()
        budgeted = {"time_budget": budget, "max_iters": 100_000, "patience": 100_000, "validation": 0} if budget else {}
        f = xlatent.fit_forecaster(train, context=CONTEXT, seed=seed, progress=False, static=static, **budgeted,
                                   **options)
        print(f"  {name}: {f.history['stopped']}, {time.perf_counter() - t:.0f} s, "
              f"loss {np.mean(f.history['loss'][:10]):.3g} -> {np.mean(f.history['loss'][-20:]):.3g}", flush=True)
        out[name] = (lambda s, f=f: f.forecast(s.isel(time=slice(-CONTEXT, None)), HORIZON))
    return out


def wave(budget: float, n_train: int, seed: int, chosen: list[str]) -> dict[str, np.ndarray]:
    train = [wave_equation(32, 60, seed=100 + i) for i in range(n_train)]
    tests = [wave_equation(32, 60, seed=900 + i) for i in range(2)]
    cases = [(w.isel(time=slice(0, t0)), w.isel(time=slice(t0, t0 + HORIZON))) for w in tests for t0 in (16, 28, 40)]
    return evaluate(cases, models(chosen, False, train, budget, seed, patch=32, stride=4))


def radar(budget: float, seed: int, chosen: list[str]) -> dict[str, np.ndarray]:
    series = [xr.open_dataset(p, decode_coords="all").rainfall_rate.load() for p in sorted(DATA.glob("mch_*.nc"))]
    t0 = 28
    train = [s.isel(time=slice(0, t0)) for s in series]
    cases = [(s.isel(time=slice(0, t0)), s.isel(time=slice(t0, t0 + HORIZON))) for s in series]
    return evaluate(cases, models(chosen, True, train, budget, seed, patch=64, stride=8))


def markdown(title: str, result: dict[str, np.ndarray], step: str) -> str:
    names = list(result)
    head = "| lead | " + " | ".join(f"{n} PSNR / SSIM / MAE" for n in names) + " |"
    lines = [f"**{title}** (mean over cases; PSNR dB, MAE in data units)", "", head,
             "|" + "---|" * (len(names) + 1)]
    for k in range(HORIZON):
        cells = [f"{result[n][k, 0]:.2f} / {result[n][k, 1]:.3f} / {result[n][k, 2]:.3g}" for n in names]
        lines.append(f"| +{k + 1} ({step}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(results: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(5 * len(results), 7), squeeze=False)
    leads = np.arange(1, HORIZON + 1)
    for j, (title, result) in enumerate(results.items()):
        for i, (col, label) in enumerate(((0, "PSNR (dB)"), (2, "MAE"))):
            ax = axes[i, j]
            for name, arr in result.items():
                ax.plot(leads, arr[:, col], marker="o", ms=3, label=name)
            ax.set_xlabel("lead (frames)")
            ax.set_ylabel(label)
            ax.set_title(title)
            ax.grid(alpha=0.3)
    axes[0, 0].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=150.0,
                        help="training seconds per latent model; 0: the defaults (validation early stop)")
    parser.add_argument("--wave-train", type=int, default=6, help="WaveEq training sequences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-radar", action="store_true")
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS,
                        help="columns to compute (latent: both latent models, the slow part)")
    args = parser.parse_args()
    if "pysteps" in args.methods and importlib.util.find_spec("cv2") is None:
        print("pysteps' Lucas-Kanade needs opencv (pip install opencv-python-headless): column left out")
        args.methods = [m for m in args.methods if m != "pysteps"]
    results = {}
    print("WaveEq 32x32", flush=True)
    results["WaveEq 32x32 (2 ms step)"] = wave(args.budget, args.wave_train, args.seed, args.methods)
    print(markdown("WaveEq 32x32", results["WaveEq 32x32 (2 ms step)"], "2 ms"), flush=True)
    if not args.skip_radar and DATA.is_dir():
        print("Radar (MeteoSwiss, 3 series)", flush=True)
        results["Radar 128x128 (5 min step)"] = radar(args.budget, args.seed, args.methods)
        print(markdown("Radar, mm h-1", results["Radar 128x128 (5 min step)"], "5 min"), flush=True)
    figure(results, OUT / "forecast_skill.png")
    print(f"figure: {OUT / 'forecast_skill.png'}")


if __name__ == "__main__":
    main()
