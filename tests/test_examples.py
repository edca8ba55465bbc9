"""The examples run (quickly) so that they never rot."""

import subprocess
import sys
from pathlib import Path

import xarray as xr

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_writes_readable_outputs(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--out", str(tmp_path), "--max-iters", "3"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "PSNR" in run.stdout
    frames = xr.open_dataarray(tmp_path / "frames.nc", decode_coords="all")
    flow = xr.open_dataset(tmp_path / "flow.nc", decode_coords="all")
    assert frames.rio.crs.to_epsg() == 3413 and flow.u.rio.crs.to_epsg() == 3413
    assert flow.u.attrs["units"] == "m s-1"
