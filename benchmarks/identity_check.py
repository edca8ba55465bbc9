"""Bitwise identity of results across a refactoring.

Runs several methods (``linear``, ``flow`` with its default SVF motion and with ``motion="tvl1"``,
``advection``, ``latent``, ``ot``, ``dynamic-ot``, ``ot-autoencoder``, the dask path of ``flow``
and ``linear``, a fitted-then-saved latent model, and forecasts with ``latent``, ``flow`` and
``persistence``) on small synthetic cases with fixed seeds, and writes every array of every
output (frames, ``u``/``v``, maps, forecasts) to one ``.npz`` file, with a SHA-256 per array.

Run it on the starting commit and after each change, then compare::

    OMP_NUM_THREADS=1 python benchmarks/identity_check.py --out before.npz
    OMP_NUM_THREADS=1 python benchmarks/identity_check.py --out after.npz --compare before.npz

``--compare`` exits with status 1 and names every array that differs (bitwise), its largest
absolute difference, and every array present in one file only. About a minute on one core.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

import xlatent
from xlatent import datasets

TINY_LATENT = {"max_iters": 6, "progress": False, "seed": 0}
TINY_FORECAST = dict(width=8, static_channels=4, dynamic_channels=4, ode_hidden=8, train_horizon=3,
                     batch_size=2, patch=16, max_iters=4, progress=False, seed=0)


def _arrays(prefix: str, obj) -> dict[str, np.ndarray]:
    """Every data variable and coordinate of ``obj`` as numpy arrays, keyed ``prefix/name``."""
    out = {}
    ds = obj.to_dataset(name=obj.name or "data") if isinstance(obj, xr.DataArray) else obj
    for name, var in {**ds.coords, **ds.data_vars}.items():
        values = np.asarray(var.values)
        if values.dtype.kind in "fiumM":
            out[f"{prefix}/{name}"] = values
    return out


def _history(prefix: str, history: dict) -> dict[str, np.ndarray]:
    """The losses of a training history (its timings left out: they vary from run to run)."""
    return {f"{prefix}/{k}": np.asarray(v, dtype=np.float64) for k, v in history.items()
            if k != "seconds" and isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) for x in v)}


def _run(prefix: str, first, last, steps: int = 4, **kwargs) -> dict[str, np.ndarray]:
    frames, flow = xlatent.interpolate(first, last, steps=steps, **kwargs)
    out = _arrays(f"{prefix}/frames", frames)
    if flow is not None:
        out.update(_arrays(f"{prefix}/flow", flow))
    return out


def collect() -> dict[str, np.ndarray]:
    """Every result array, keyed by case, method and variable."""
    out: dict[str, np.ndarray] = {}
    rot = datasets.rotation(size=32, steps=4)
    tr = datasets.translation(size=32, steps=4)
    rain = datasets.analytic("vortex_rain", size=32, steps=4)
    for cname, case in (("rotation", rot), ("translation", tr), ("vortex_rain", rain)):
        a, b = case.first, case.last
        out.update(_run(f"{cname}/linear", a, b, method="linear"))
        out.update(_run(f"{cname}/flow", a, b, method="flow", progress=False))
        out.update(_run(f"{cname}/flow-tvl1", a, b, method="flow", motion="tvl1", progress=False))
    a, b = rot.first, rot.last
    out.update(_run("rotation/latent", a, b, method="latent", **TINY_LATENT))
    out.update(_run("rotation/advection", a, b, method="advection", **TINY_LATENT))
    out.update(_run("translation/latent-tvl1", tr.first, tr.last, method="latent", flow_prior="tvl1",
                    **TINY_LATENT))
    out.update(_run("rotation/ot", a, b, method="ot", ot_grid=16))
    out.update(_run("translation/dynamic-ot", tr.first, tr.last, method="dynamic-ot", ot_grid=16, ot_steps=4,
                    ot_iters=100, progress=False))
    out.update(_run("rain/ot-autoencoder", rain.first, rain.last, method="ot-autoencoder", ae_iters=5,
                    ae_grid=16, ae_width=8, ae_latent=4, progress=False, seed=0))
    # the dask path (chunk by chunk)
    ca, cb = a.chunk({"y": 16, "x": 32}), b.chunk({"y": 16, "x": 32})
    out.update(_run("rotation/dask-linear", ca, cb, method="linear"))
    out.update(_run("rotation/dask-flow-tvl1", ca, cb, method="flow", motion="tvl1", progress=False))
    out.update(_run("rotation/dask-flow", ca, cb, method="flow", progress=False))
    out.update(_run("rotation/dask-latent", ca, cb, method="latent", sample_patches=4, **TINY_LATENT))
    # missing cells and a packed input, in memory and on dask (the preparation of the pair)
    holed = a.where(a.x > a.x[3]).astype("float64")
    holed[5, 6] = np.inf
    packed = ((b - 0.5) / 0.01).round().astype("int16").assign_attrs(scale_factor=0.01, add_offset=0.5,
                                                                        _FillValue=-999)
    packed[7, 8] = -999
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out.update(_run("holes/linear", holed, packed, method="linear"))
        out.update(_run("holes/dask-linear", holed.chunk(16), packed.chunk(16), method="linear"))
        out.update(_run("holes/flow", holed, packed, method="flow", progress=False))
    # a fitted model, saved and loaded
    model = xlatent.fit(a, b, **TINY_LATENT)
    out.update(_history("fit/history", model.history))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.pt"
        model.save(path)
        again = xlatent.load(path)
    out.update(_arrays("fit/frames", model.frames(steps=4)))
    out.update(_arrays("fit/flow", model.flow()))
    out.update(_arrays("fit/loaded/frames", again.frames(steps=4, first=a, last=b)))
    out.update(_arrays("fit/loaded/flow", again.flow(first=a, last=b)))
    out.update(_arrays("fit/loaded/dask-frames", again.frames(steps=4, first=ca, last=cb, progress=False)))
    # forecasts
    wave = datasets.wave_equation(16, 10)
    for method in ("persistence", "flow", "latent"):
        opts = TINY_FORECAST if method == "latent" else {"progress": False}
        fc = xlatent.forecast(wave, horizon=2, context=3, method=method, **opts)
        out.update(_arrays(f"forecast/{method}", fc))
    fitted = xlatent.fit_forecaster(wave, context=3, **TINY_FORECAST)
    out.update(_history("forecast/fitted/history", fitted.history))
    return out


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]


def compare(new: dict[str, np.ndarray], old: dict[str, np.ndarray]) -> list[str]:
    """Lines naming every difference between two collections (empty when bitwise identical)."""
    lines = [f"only in the new run: {k}" for k in sorted(set(new) - set(old))]
    lines += [f"only in the old run: {k}" for k in sorted(set(old) - set(new))]
    for k in sorted(set(new) & set(old)):
        a, b = new[k], old[k]
        if a.shape != b.shape or a.dtype != b.dtype:
            lines.append(f"{k}: {a.dtype}{a.shape} against {b.dtype}{b.shape}")
        elif _digest(a) != _digest(b):
            diff = np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64))) if a.dtype.kind in "fiu" else "?"
            lines.append(f"{k}: differs (max |diff| {diff})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    parser.add_argument("--compare", type=Path, help="a previous run's .npz file to compare with")
    args = parser.parse_args(argv)
    arrays = collect()
    np.savez(args.out, **arrays)
    for k in sorted(arrays):
        print(f"{_digest(arrays[k])}  {k}")
    if args.compare is None:
        return 0
    with np.load(args.compare) as old:
        lines = compare(arrays, {k: old[k] for k in old.files})
    print("\n".join(lines) if lines else f"identical: {len(arrays)} arrays, bitwise")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
