"""Geo handling: spatial dims, CRS, grid spacing, time gap, physical units, CF attributes.

The only package that knows about coordinates and reference systems; the model and the methods
work on plain ``(channel, row, column)`` arrays in grid-index space. Its modules, lowest first:
``times`` (dates and time gaps) and ``crs`` (reading the CRS); ``dims`` (spatial dims,
:class:`Grid`); ``spacing`` (coords, cell size in metres) and ``values`` (the raster as a
numpy array, no-data and packing undone); ``units`` (the motion in m s-1) and ``checks``
(the inputs and the pair); ``outputs`` (frames, flow and maps as xarray, the CRS written).
Every name callers use is imported here, so that they write ``geo.<name>`` whichever module
holds it.
"""

from xlatent.geo.checks import (
    check_coords,
    check_input,
    check_pair,
    warn_no_crs,
)
from xlatent.geo.crs import _crs as _crs  # private, used by the tests
from xlatent.geo.crs import (
    read_crs,
)
from xlatent.geo.dims import (
    Grid,
    describe,
    spatial_dims,
)
from xlatent.geo.outputs import (
    add_map,
    denormalise,
    flow_to_xarray,
    frames_to_xarray,
    write_crs_like,
)
from xlatent.geo.spacing import (
    EARTH_RADIUS_M,
    cell_size_m,
    coord_values,
    is_geographic,
)
from xlatent.geo.times import (
    DUPLICATE_GAP_S,
    cf_time_values,
    human_duration,
    scalar_time,
    seconds_between,
    time_coord_name,
    time_dim,
    undated_time_note,
    utc_datetime64,
    warn_undated,
)
from xlatent.geo.units import (
    MAX_SPEED,
    flow_in_coordinates,
    mm_per_second,
    same_units,
)
from xlatent.geo.values import (
    MAX_MAGNITUDE,
    PACKING_ATTRS,
    check_fills,
    decoded_data,
    decoded_values,
    refuse_huge,
    to_array,
    warn_infinite,
)

__all__ = [
    "DUPLICATE_GAP_S",
    "EARTH_RADIUS_M",
    "MAX_MAGNITUDE",
    "MAX_SPEED",
    "PACKING_ATTRS",
    "Grid",
    "add_map",
    "cell_size_m",
    "cf_time_values",
    "check_coords",
    "check_fills",
    "check_input",
    "check_pair",
    "coord_values",
    "decoded_data",
    "decoded_values",
    "denormalise",
    "describe",
    "flow_in_coordinates",
    "flow_to_xarray",
    "frames_to_xarray",
    "human_duration",
    "is_geographic",
    "mm_per_second",
    "read_crs",
    "refuse_huge",
    "same_units",
    "scalar_time",
    "seconds_between",
    "spatial_dims",
    "time_coord_name",
    "time_dim",
    "to_array",
    "undated_time_note",
    "utc_datetime64",
    "warn_infinite",
    "warn_no_crs",
    "warn_undated",
    "write_crs_like",
]
