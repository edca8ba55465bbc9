"""The documentation builds with warnings as errors (API pages, guide, gallery), so it never rots.

Skipped only where the ``docs`` extra is not installed (``pip install -e '.[docs]'``).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_sphinx_build_without_warnings(tmp_path):
    for module in ("sphinx", "myst_parser", "numpydoc", "sphinx_autosummary_accessors", "sphinx_gallery",
                   "matplotlib", "cartopy"):
        pytest.importorskip(module, reason=f"{module} missing: pip install -e '.[docs]'")
    # A fresh copy of docs/ and examples/: every example really runs (no stale gallery reused) and
    # nothing is written into the checkout. PYTHONPATH points at the checkout's xlatent.
    src = tmp_path / "src"
    build_products = shutil.ignore_patterns("_build", "generated", "gallery", "sg_execution_times.rst", "__pycache__")
    shutil.copytree(ROOT / "docs", src / "docs", ignore=build_products)
    shutil.copytree(ROOT / "examples", src / "examples", ignore=build_products)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_WAIT_POLICY": "PASSIVE"}
    out = tmp_path / "html"
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(src / "docs"), str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    api = (out / "api.html").read_text()
    for name in ("xlatent.interpolate", "latentdyn.interpolate", "xlatent.plot.flow", "GridMismatchError"):
        assert name in api, name
    for page in ("generated/xlatent.plot.overview.html", "generated/xarray.DataArray.latentdyn.interpolate.html",
                 "guide.html", "method.html", "gallery/plot_maps.html", "gallery/quickstart.html"):
        assert (out / page).exists(), page
    gallery = (out / "gallery" / "plot_maps.html").read_text()
    assert "sphx_glr_plot_maps_001.png" in gallery and (out / "_images" / "sphx_glr_plot_maps_001.png").exists()
    assert "PSNR" in (out / "gallery" / "quickstart.html").read_text()  # the example ran
