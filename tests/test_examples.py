"""Every script in examples/ runs (quickly) so that none of them rots.

Each runs as a user would run it, in a subprocess, with the fast arguments listed in
docs/_ext/gallery_args.py (the docs gallery uses the same ones) and ``--out`` a temp folder.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

_spec = importlib.util.spec_from_file_location("gallery_args", ROOT / "docs" / "_ext" / "gallery_args.py")
gallery_args = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gallery_args)


def run_example(path: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run(
        [sys.executable, str(path), *gallery_args.fast_args(path), "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=env, cwd=out,
    )


def check_quickstart(out: Path, stdout: str) -> None:
    assert "PSNR" in stdout
    frames = xr.open_dataarray(out / "frames.nc", decode_coords="all")
    flow = xr.open_dataset(out / "flow.nc", decode_coords="all")
    assert frames.rio.crs.to_epsg() == 3413 and flow.u.rio.crs.to_epsg() == 3413
    assert flow.u.attrs["units"] == "m s-1"


def check_plot_maps(out: Path, stdout: str) -> None:
    from PIL import Image

    for name in ("overview.png", "frames.png", "flow.png"):
        with Image.open(out / name) as img:
            assert img.format == "PNG" and min(img.size) > 200
    with Image.open(out / "frames.gif") as gif:
        assert gif.n_frames == 5
    assert "mean flow" in stdout


CHECKS = {"quickstart.py": check_quickstart, "plot_maps.py": check_plot_maps}
NEEDS_PLOT = {"plot_maps.py"}


def test_every_example_has_fast_arguments_and_a_check():
    names = {p.name for p in EXAMPLES}
    assert names <= set(gallery_args.FAST_ARGS), "add the new example to docs/_ext/gallery_args.py"
    assert names <= set(CHECKS), "add a check of the new example's outputs to tests/test_examples.py"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_writes_its_outputs(path, tmp_path):
    if path.name in NEEDS_PLOT:
        pytest.importorskip("matplotlib")
        pytest.importorskip("cartopy")
    run = run_example(path, tmp_path)
    assert run.returncode == 0, run.stderr
    CHECKS[path.name](tmp_path, run.stdout)
