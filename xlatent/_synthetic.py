"""The grid and start time shared by the synthetic cases (:mod:`xlatent.datasets`, the wave equation)."""

import numpy as np

CRS = "EPSG:3413"
CELL = 1000.0  # grid spacing in metres
X_UL, Y_UL = -500_000.0, 500_000.0  # upper-left corner of the grid, metres
START = np.datetime64("2024-03-01T00:00", "ns")
