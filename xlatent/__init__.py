"""xlatent: in-between frames and motion fields for georeferenced images, xarray-native.

``import xlatent`` registers the ``.latentdyn`` accessor on DataArrays and Datasets. torch is
imported only when a model is built.
"""

import os

# Measured on 2-core machines: OpenMP's default busy-wait made torch 13-30x slower whenever
# another process held a core. Users who set it themselves keep their choice.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from xlatent import accessor as _accessor  # noqa: E402,F401  (registers .latentdyn)
from xlatent._version import __version__  # noqa: E402
from xlatent.api import LatentInterpolator, fit, interpolate, load  # noqa: E402
from xlatent.archive import ArchiveInterpolator, fit_interpolator, load_interpolator, pretrained_interpolator  # noqa: E402
from xlatent.cf import to_earth_relative  # noqa: E402
from xlatent.config import LatentConfig  # noqa: E402
from xlatent.exceptions import XlatentError  # noqa: E402
from xlatent.forecast import ForecastConfig, Forecaster, fit_forecaster, forecast, load_forecaster  # noqa: E402
from xlatent.io import open_image, open_result, save_result, to_netcdf, to_zarr  # noqa: E402
from xlatent.path_energy import path_energy  # noqa: E402
from xlatent.series import interp  # noqa: E402
from xlatent.stack import Series  # noqa: E402
from xlatent.totals import accumulate  # noqa: E402

__all__ = [
    "interpolate", "fit", "load", "LatentInterpolator", "LatentConfig", "XlatentError", "__version__",
    "open_image", "to_netcdf", "to_zarr", "save_result", "open_result", "to_earth_relative", "path_energy",
]
__all__ += ["fit_interpolator", "load_interpolator", "pretrained_interpolator", "ArchiveInterpolator"]
__all__ += ["forecast", "fit_forecaster", "load_forecaster", "Forecaster", "ForecastConfig"]
__all__ += ["interp", "accumulate", "Series"]


def __getattr__(name: str):
    """``xlatent.plot`` on first use (it imports matplotlib/cartopy only when a figure is drawn)."""
    if name == "plot":
        import importlib

        return importlib.import_module("xlatent.plot")
    raise AttributeError(f"module 'xlatent' has no attribute {name!r}")
