"""Inputs from files (GeoTIFF, NetCDF, Zarr) and undecoded arrays in memory; result files."""

import sys
from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr

import xlatent
from xlatent import datasets
from xlatent.exceptions import InputError, InputFileError, UnknownVariableError

FAST = {"method": "flow", "progress": False}


def _utm_grid(ny=40, nx=48):
    return {"y": 7_000_000.0 - 100.0 * np.arange(ny), "x": 500_000.0 + 100.0 * np.arange(nx)}


def _texture(shape, seed=0, shift=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=shape)
    for axis in (-1, -2):  # a little smoothing so that optical flow has something to follow
        base = (base + np.roll(base, 1, axis) + np.roll(base, -1, axis)) / 3
    return np.roll(base, shift, axis=-1)


def _write_tif(path, values, nodata=None, scale=None, offset=None, crs="EPSG:32633"):
    dims = ("band", "y", "x") if values.ndim == 3 else ("y", "x")
    da = xr.DataArray(values, dims=dims, coords=_utm_grid(*values.shape[-2:])).rio.write_crs(crs)
    if nodata is not None:
        da = da.rio.write_nodata(nodata, encoded=False)
    if scale is not None:
        da.attrs.update(scale_factor=scale, add_offset=offset)
    da.rio.to_raster(path)
    return path


def test_geotiff_nodata_and_scale_offset(tmp_path):
    raw = (_texture((40, 48)) * 1000).astype("int16")
    raw[:2, :6] = -9999
    path = _write_tif(tmp_path / "a.tif", raw, nodata=-9999, scale=0.01, offset=5.0)
    img = xlatent.open_image(path)
    assert img.dims == ("y", "x") and img.rio.crs.to_epsg() == 32633
    assert np.isnan(img.values[:2, :6]).all()
    np.testing.assert_allclose(img.values[5:, 10:], raw[5:, 10:] * 0.01 + 5.0, atol=1e-5)


def test_three_band_geotiff_gives_three_channels_and_keeps_crs(tmp_path):
    first = _write_tif(tmp_path / "a.tif", np.stack([_texture((40, 48), s) for s in range(3)]).astype("float32"))
    last = _write_tif(tmp_path / "b.tif", np.stack([_texture((40, 48), s, shift=2) for s in range(3)]).astype("float32"))
    a = xlatent.open_image(first, timestamp="2024-06-01T10:00")
    b = xlatent.open_image(last, timestamp="2024-06-01T11:00")
    assert a.sizes["band"] == 3
    frames, flow = xlatent.interpolate(a, b, steps=2, kind="sea_water", **FAST)
    assert frames.sizes["band"] == 3 and frames.dims == ("time", "band", "y", "x")
    assert frames.rio.crs == a.rio.crs and flow.u.rio.crs == a.rio.crs
    assert flow.u.attrs["units"] == "m s-1"  # UTM metres and two timestamps
    assert float(flow.u.mean()) > 0  # the texture moved toward +x
    assert str(frames.time.values[1]) == "2024-06-01T10:30:00.000000000"
    xlatent.to_netcdf(xlatent.open_image(first, timestamp="2024-06-01"), tmp_path / "t.nc")
    with pytest.warns(UserWarning, match="replaced by 2024-06-02"):
        assert xlatent.open_image(tmp_path / "t.nc", timestamp="2024-06-02").time.values == np.datetime64("2024-06-02")


def test_undecoded_array_in_memory_is_decoded_and_not_mutated():
    raw = (_texture((40, 48)) * 1000).astype("int16")
    raw[0, :5] = -32768
    attrs = {"_FillValue": -32768, "scale_factor": 0.01, "add_offset": 5.0, "units": "K"}
    a = xr.DataArray(raw, dims=("y", "x"), coords=_utm_grid(), attrs=attrs)
    b = xr.DataArray(np.roll(raw, 1, axis=1), dims=("y", "x"), coords=_utm_grid(), attrs=attrs)
    before = a.copy(deep=True)
    frames, _ = xlatent.interpolate(a, b, steps=2, method="linear", progress=False)
    xr.testing.assert_identical(a, before)
    assert np.isnan(frames.values[0, 0, :5]).all()
    np.testing.assert_allclose(frames.values[0, 5:], raw[5:] * 0.01 + 5.0, atol=1e-5)
    assert frames.dtype == np.float32 and frames.attrs["units"] == "K"
    for key in ("_FillValue", "scale_factor", "add_offset"):  # would re-scale decoded values on write
        assert key not in frames.attrs


def test_netcdf_opened_undecoded_equals_decoded(tmp_path):
    case = datasets.translation(size=32, steps=2)
    path = tmp_path / "series.nc"
    encoding = {"backscatter": {"dtype": "int16", "scale_factor": 0.001, "add_offset": 1.0, "_FillValue": -32767}}
    series = case.frames.copy()
    series[0, :3, :3] = np.nan
    series.to_dataset().to_netcdf(path, encoding=encoding)
    decoded = xr.open_dataset(path, decode_coords="all").backscatter
    packed = xr.open_dataset(path, decode_coords="all", mask_and_scale=False).backscatter
    assert packed.dtype == np.int16 and "scale_factor" in packed.attrs
    f1, _ = xlatent.interpolate(decoded.isel(time=0), decoded.isel(time=-1), steps=2, method="linear", progress=False)
    f2, _ = xlatent.interpolate(packed.isel(time=0), packed.isel(time=-1), steps=2, method="linear", progress=False)
    np.testing.assert_allclose(f1.values, f2.values, rtol=1e-6)
    assert np.isnan(f2.values[0, :3, :3]).all()


def test_netcdf_variable_and_time_selection(tmp_path):
    case = datasets.translation(size=32, steps=3)
    ds = case.frames.to_dataset().assign(other=case.frames * 2)
    path = tmp_path / "two.nc"
    ds.to_netcdf(path)
    with pytest.raises(UnknownVariableError, match="backscatter, other"):
        xlatent.open_image(path)
    with pytest.raises(UnknownVariableError, match="no variable 'nope'.*backscatter, other"):
        xlatent.open_image(path, "nope")
    series = xlatent.open_image(path, "backscatter")
    assert series.sizes["time"] == 4
    img = xlatent.open_image(path, "backscatter", time_index=-1)
    assert img.dims == ("y", "x") and img.time.values == case.frames.time.values[-1]
    assert img.rio.crs.to_epsg() == 3413
    np.testing.assert_array_equal(img.values, case.frames.values[-1])
    with pytest.raises(InputError, match="out of range.*0..3"):
        xlatent.open_image(path, "backscatter", time_index=4)
    with pytest.raises(InputError, match="already has a time dim"):
        xlatent.open_image(path, "backscatter", timestamp="2024-01-01")


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(InputFileError, match="No such file"):
        xlatent.open_image(tmp_path / "missing.nc")
    junk = tmp_path / "junk.nc"
    junk.write_text("not a raster")
    with pytest.raises(InputFileError, match="Cannot read"):
        xlatent.open_image(junk)


def test_zarr_store(tmp_path):
    case = datasets.translation(size=32, steps=2)
    path = tmp_path / "scene.zarr"
    case.frames.to_dataset().to_zarr(path)
    img = xlatent.open_image(path, time_index=1)
    assert img.rio.crs.to_epsg() == 3413 and img.dims == ("y", "x")
    np.testing.assert_array_equal(img.values, case.frames.values[1])


def test_result_file_round_trip(tmp_path):
    case = datasets.rotation(size=32, steps=2)
    frames, flow = xlatent.interpolate(case.first, case.last, steps=2, kind="sea_ice", **FAST)
    path = xlatent.save_result(frames, flow, tmp_path / "result.nc", encoding={"u": {"zlib": True}})
    ds = xr.open_dataset(path, decode_coords="all")
    assert set(ds.data_vars) == {"backscatter", "u", "v", "confidence"}  # flow (svf) carries it
    assert ds.u.dims == ("stage_time", "y", "x") and ds.backscatter.dims == ("time", "y", "x")
    assert ds.u.rio.crs.to_epsg() == 3413 and ds.backscatter.rio.crs.to_epsg() == 3413
    f2, w2 = xlatent.open_result(path)
    xr.testing.assert_allclose(f2, frames)
    xr.testing.assert_allclose(w2, flow)
    assert f2.attrs == frames.attrs and w2.attrs == flow.attrs and w2.u.attrs == flow.u.attrs


def test_zarr_store_in_bands_atomic_and_refusals(tmp_path):
    case = datasets.translation(size=64, steps=2)
    ds = case.frames.to_dataset().chunk({"y": 16, "x": 32})
    path = tmp_path / "frames.zarr"
    assert xlatent.to_zarr(ds, path, band=1, progress=False) == path  # 4 bands of one chunk row
    back = xr.open_zarr(path, decode_coords="all")
    xr.testing.assert_identical(back.backscatter.compute(), case.frames.rename("backscatter").compute())
    assert back.backscatter.rio.crs.to_epsg() == 3413

    # an error mid-write leaves the existing store as it was and no temporary folder behind
    def fail(block):
        raise RuntimeError("disk full")

    broken = ds.assign(backscatter=ds.backscatter.copy(data=ds.backscatter.data.map_blocks(fail, dtype="float32")))
    with pytest.raises(RuntimeError, match="disk full"):
        xlatent.to_zarr(broken, path, band=1, progress=False)
    xr.testing.assert_identical(xr.open_zarr(path, decode_coords="all").backscatter.compute(), back.backscatter.compute())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.zarr"]
    for bad in ({"mode": "a"}, {"compute": False}, {"region": "auto"}, {"append_dim": "time"}):
        with pytest.raises(InputError):
            xlatent.to_zarr(ds, path, **bad)


def test_netcdf_of_dask_data_staged_band_by_band(tmp_path, monkeypatch):
    """Several dask chunks: computed band by band into a temporary Zarr store, then copied;
    same file content as from memory, CRS kept, no temporary left."""
    from xlatent import io

    case = datasets.translation(size=64, steps=2)
    bands = []
    real = io._write_zarr
    monkeypatch.setattr(io, "_write_zarr", lambda ds, *a, **k: bands.append(ds) or real(ds, *a, **k))
    lazy = case.frames.chunk({"y": 16, "x": 32})
    path = xlatent.to_netcdf(lazy, tmp_path / "frames.nc", encoding={"backscatter": {"zlib": True}}, band=1,
                             progress=False)
    assert len(bands) == 1  # staged through Zarr
    ds = xr.open_dataset(path, decode_coords="all")
    np.testing.assert_array_equal(ds.backscatter.values, case.frames.values)
    assert ds.backscatter.rio.crs.to_epsg() == 3413 and ds.backscatter.encoding["zlib"]
    assert ds.backscatter.attrs == {k: v for k, v in case.frames.attrs.items() if not k.startswith("xlatent_")
                                    and k not in ("Conventions", "history")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.nc"]


def test_a_plain_folder_is_not_read_as_a_zarr_store(tmp_path, monkeypatch):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.tif").write_bytes(b"")
    with pytest.raises(InputFileError, match="is a folder, not a Zarr store"):
        xlatent.open_image(folder)
    store = tmp_path / "scene.zarr"
    datasets.translation(size=32, steps=1).first.to_dataset().to_zarr(store)
    monkeypatch.setitem(sys.modules, "zarr", None)  # as if the zarr extra were not installed
    with pytest.raises(InputFileError, match=r"needs the zarr package: pip install 'xlatent\[zarr\]'"):
        xlatent.open_image(store)


def _no_temporary_name(err, path):
    text = str(err)
    assert str(path) in text and ".tmp" not in text and ".old" not in text, text


def test_write_errors_name_the_users_path(tmp_path, monkeypatch):
    """The hidden temporary file or store is an implementation detail: errors name the target."""
    image = datasets.translation(size=32, steps=1).first
    folder = tmp_path / "adir.nc"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as err:  # os.replace(temporary, folder)
        xlatent.to_netcdf(image, folder)
    _no_temporary_name(err.value, folder)
    if Path("/proc/self").is_dir():  # no file can be created in /proc, even by root
        with pytest.raises(OSError) as err:
            xlatent.to_netcdf(image, "/proc/xlatent.nc")
        _no_temporary_name(err.value, "/proc/xlatent.nc")

    def denied(self, target, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(target) / "zarr.json"))

    monkeypatch.setattr(xr.Dataset, "to_zarr", denied)
    with pytest.raises(PermissionError) as err:
        xlatent.to_zarr(image, tmp_path / "out.zarr", progress=False)
    _no_temporary_name(err.value, tmp_path / "out.zarr")
    with pytest.raises(PermissionError) as err:  # dask data staged through a temporary Zarr store
        xlatent.to_netcdf(image.chunk({"y": 8}), tmp_path / "out.nc", progress=False)
    _no_temporary_name(err.value, tmp_path / "out.nc")

    def broken(self, target, *args, **kwargs):
        raise RuntimeError(f"HDF error writing {target}")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(RuntimeError, match="HDF error writing") as err:
        xlatent.to_netcdf(image, tmp_path / "out.nc")
    _no_temporary_name(err.value, tmp_path / "out.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.nc"]


def test_time_dim_xarray_cannot_decode_is_found_and_selectable(tmp_path):
    """A time dim not called ``time`` whose units xarray cannot decode ("months since"): the file
    opens with a warning instead of being unreadable, and a step can be chosen."""
    from xlatent.exceptions import TimeNotDateWarning

    values = np.random.default_rng(0).random((3, 20, 20)).astype("float32")
    t = xr.DataArray([0, 1, 2], dims="t", attrs={"units": "months since 2000-01-01", "axis": "T"})
    da = xr.DataArray(values, dims=("t", "y", "x"), coords={"t": t, "y": np.arange(20.0), "x": np.arange(20.0)}, name="v")
    da.to_dataset().to_netcdf(tmp_path / "months.nc", encoding={"t": {"dtype": "int32"}})
    with pytest.warns(TimeNotDateWarning, match="cannot be decoded"):
        img = xlatent.open_image(tmp_path / "months.nc", time_index=2)
    assert img.dims == ("y", "x") and int(img["t"]) == 2
    np.testing.assert_array_equal(img.values, values[2])
    with pytest.warns(TimeNotDateWarning), pytest.raises(InputError, match="out of range.*0..2"):
        xlatent.open_image(tmp_path / "months.nc", time_index=3)


@pytest.fixture()
def ctrl_c():
    """Python's own Ctrl-C handler (KeyboardInterrupt) for the test: a run started in the
    background by a shell inherits SIGINT ignored, and the signal sent would do nothing."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_a_store_is_swapped_in_keeps_one(tmp_path, monkeypatch, ctrl_c):
    """SIGINT (a real signal) between moving the old store aside and the new one in: held until
    the swap is done, so the path always holds a whole store (issue 23)."""
    import os
    import signal

    ds = datasets.translation(size=32, steps=1).frames.to_dataset()
    path = tmp_path / "r.zarr"
    xlatent.to_zarr(ds, path, progress=False)
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        done = real(src, dst, *args, **kwargs)
        if Path(src) == path:  # the old store moved aside (zarr's own renames inside pass): Ctrl-C now
            signal.raise_signal(signal.SIGINT)
        return done

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        xlatent.to_zarr(ds * 2, path, progress=False)
    monkeypatch.undo()
    back = xr.open_zarr(path)
    np.testing.assert_allclose(back.backscatter.values, 2 * ds.backscatter.values)  # the new one, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.zarr"]


def test_ctrl_c_mid_write_leaves_no_partial_file(tmp_path, monkeypatch, ctrl_c):
    """SIGINT (a real signal) halfway through writing a NetCDF file: no file, no temporary, and an
    existing file as it was."""
    import signal

    ds = datasets.translation(size=32, steps=1).frames.to_dataset()
    path = tmp_path / "r.nc"
    path.write_bytes(b"an earlier file")
    real = xr.Dataset.to_netcdf

    def half(self, target, *args, **kwargs):
        Path(target).write_bytes(b"half a file")
        signal.raise_signal(signal.SIGINT)
        return real(self, target, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", half)
    with pytest.raises(KeyboardInterrupt):
        xlatent.to_netcdf(ds, path)
    assert path.read_bytes() == b"an earlier file" and sorted(p.name for p in tmp_path.iterdir()) == ["r.nc"]
