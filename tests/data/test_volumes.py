"""Volumes (NIfTI, NRRD, MetaImage): headers kept, axis order, atomic writes, bad files named."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_iaa.data import (
    VOLUME_SUFFIXES,
    image_shape,
    is_volume_path,
    read_image,
    read_image_grid,
    read_mask,
    read_volume,
    volume_header,
    write_volume,
)
from napari_iaa.data.volumes import split_volume_suffix
from napari_iaa.errors import ImageReadError, ShapeMismatchError

C, S = math.cos(0.3), math.sin(0.3)
#: A rotation about the z axis (array axis 0), row-major, array axis order.
ROTATED = (1.0, 0.0, 0.0, 0.0, C, -S, 0.0, S, C)
SPACING = (2.5, 0.7, 0.8)
ORIGIN = (10.1, -20.5, 3.25)


def _mask(shape=(6, 7, 8)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[2:4, 2:5, 3:6] = True
    return m


def _hidden(folder) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_suffixes_and_stems():
    assert set(VOLUME_SUFFIXES) == {".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd"}
    assert is_volume_path("a/B.NII.GZ") and is_volume_path("x.mha")
    assert not is_volume_path("x.png") and not is_volume_path("x.raw.gz") and not is_volume_path(".nii")
    assert split_volume_suffix("r0.nii.gz") == ("r0", ".nii.gz")
    assert split_volume_suffix("a.b.png") == ("a.b", ".png")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr"])
def test_round_trip_keeps_array_and_header(tmp_path, suffix):
    m = _mask()
    p = write_volume(tmp_path / f"r0{suffix}", m, spacing=SPACING, origin=ORIGIN, direction=ROTATED)
    vol = read_volume(p, for_mask=True)
    assert vol.array.dtype == np.uint8 and set(np.unique(vol.array)) == {0, 1}
    np.testing.assert_array_equal(vol.array.astype(bool), m)
    # NIfTI stores the header in float32; MetaImage and NRRD in decimal text.
    tol = 1e-6 if suffix.startswith(".nii") else 1e-12
    np.testing.assert_allclose(vol.spacing, SPACING, rtol=tol)
    np.testing.assert_allclose(vol.origin, ORIGIN, rtol=tol)
    np.testing.assert_allclose(vol.direction, ROTATED, atol=tol)
    if suffix in (".mha", ".mhd"):
        assert (vol.spacing, vol.origin, vol.direction) == (SPACING, ORIGIN, ROTATED)
    # a header read from a file is written back exactly (NIfTI and MetaImage bit for bit)
    again = read_volume(write_volume(tmp_path / f"again{suffix}", vol.array, like=vol))
    if suffix in (".nrrd", ".nhdr"):  # space directions = direction x spacing: 1 ulp
        np.testing.assert_allclose(again.spacing, vol.spacing, rtol=1e-15)
        np.testing.assert_allclose(again.direction, vol.direction, atol=1e-15)
        assert again.origin == vol.origin
    else:
        assert (again.spacing, again.origin, again.direction) == (vol.spacing, vol.origin, vol.direction)
    assert _hidden(tmp_path) == []
    assert volume_header(p).shape == m.shape == image_shape(p)


def test_axis_order_matches_simpleitk_physical_points(tmp_path):
    """``world = origin + direction @ (spacing * index)`` in array axis order."""
    p = write_volume(tmp_path / "v.nii.gz", _mask(), spacing=SPACING, origin=ORIGIN, direction=ROTATED)
    vol = read_volume(p)
    img = sitk.ReadImage(str(p))
    assert img.GetSize() == (8, 7, 6)  # x, y, z
    d = np.asarray(vol.direction).reshape(3, 3)
    for index in [(0, 0, 0), (5, 1, 2), (3, 6, 7)]:  # (z, y, x)
        world = np.asarray(vol.origin) + d @ (np.asarray(vol.spacing) * index)
        itk = img.TransformIndexToPhysicalPoint([int(i) for i in reversed(index)])
        np.testing.assert_allclose(world[::-1], itk, atol=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.tuples(*[st.integers(1, 5)] * 3),
    spacing=st.tuples(*[st.floats(0.05, 10)] * 3),
    origin=st.tuples(*[st.floats(-500, 500, allow_subnormal=False)] * 3),
    angle=st.floats(-math.pi, math.pi),
    seed=st.integers(0, 2**16),
)
def test_metaimage_round_trip_is_exact(tmp_path, shape, spacing, origin, angle, seed):
    rng = np.random.default_rng(seed)
    arr = rng.integers(-1000, 1000, size=shape).astype(np.int16)
    c, s = math.cos(angle), math.sin(angle)
    direction = (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)
    vol = read_volume(write_volume(tmp_path / "h.mha", arr, spacing=spacing, origin=origin,
                                   direction=direction))
    np.testing.assert_array_equal(vol.array, arr)
    assert vol.spacing == spacing and vol.origin == origin
    np.testing.assert_allclose(vol.direction, direction, atol=1e-15)


def test_write_failure_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch):
    p = write_volume(tmp_path / "m.nii.gz", _mask())
    before = p.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", boom)
    with pytest.raises(RuntimeError):
        write_volume(p, np.ones((6, 7, 8), bool))
    assert p.read_bytes() == before
    assert _hidden(tmp_path) == []


def test_two_file_formats_move_data_then_header(tmp_path):
    p = write_volume(tmp_path / "m.mhd", _mask())
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m.mhd", "m.zraw"]
    np.testing.assert_array_equal(read_mask(p), _mask())


def test_read_image_and_grid(tmp_path):
    img = np.arange(6 * 7 * 8, dtype=np.int16).reshape(6, 7, 8)
    p = write_volume(tmp_path / "image.nrrd", img, spacing=SPACING, origin=ORIGIN)
    np.testing.assert_array_equal(read_image(p), img)
    arr, grid = read_image_grid(p)
    np.testing.assert_array_equal(arr, img)
    assert grid.shape == (6, 7, 8)
    np.testing.assert_allclose(grid.spacing, SPACING)
    np.save(tmp_path / "image.npy", img)
    arr, grid = read_image_grid(tmp_path / "image.npy")
    assert grid is None and arr.shape == (6, 7, 8)


def test_volume_over_pixel_limit_refused_before_decoding(tmp_path, monkeypatch):
    p = write_volume(tmp_path / "big.nii.gz", np.zeros((10, 10, 10), np.uint8))
    monkeypatch.setattr(sitk, "ReadImage", lambda *a, **k: pytest.fail("decoded"))
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        read_image(p, max_pixels=999)


def test_mask_on_another_grid_is_a_shape_mismatch(tmp_path):
    img = write_volume(tmp_path / "image.nii.gz", np.zeros((6, 7, 8), np.int16), spacing=SPACING)
    _, grid = read_image_grid(img)
    same = write_volume(tmp_path / "ok.nii.gz", _mask(), spacing=SPACING)
    np.testing.assert_array_equal(read_mask(same, shape=grid.shape, grid=grid), _mask())
    other = write_volume(tmp_path / "r1.nii.gz", _mask(), spacing=(1.0, 0.7, 0.8))
    with pytest.raises(ShapeMismatchError, match=r"r1\.nii\.gz.*spacing"):
        read_mask(other, shape=grid.shape, grid=grid)
    moved = write_volume(tmp_path / "r2.nrrd", _mask(), spacing=SPACING, origin=(0, 0, 5))
    with pytest.raises(ShapeMismatchError, match=r"r2\.nrrd.*origin"):
        read_mask(moved, shape=grid.shape, grid=grid)
    turned = write_volume(tmp_path / "r3.mha", _mask(), spacing=SPACING, direction=ROTATED)
    with pytest.raises(ShapeMismatchError, match=r"r3\.mha.*direction"):
        read_mask(turned, shape=grid.shape, grid=grid)
    small = write_volume(tmp_path / "r4.nii.gz", _mask((6, 7, 7)), spacing=SPACING)
    with pytest.raises(ShapeMismatchError, match=r"r4\.nii\.gz.*shape 6x7x7"):
        read_mask(small, shape=grid.shape, grid=grid)


def test_float32_header_matches_double_header(tmp_path):
    """The same grid stored in NIfTI (float32) and NRRD (double) is one grid."""
    img = write_volume(tmp_path / "image.nrrd", np.zeros((6, 7, 8), np.int16), spacing=SPACING,
                       origin=(123.456789, -98.7654321, 0.1), direction=ROTATED)
    _, grid = read_image_grid(img)
    m = write_volume(tmp_path / "r0.nii.gz", _mask(), like=grid)
    assert read_mask(m, shape=grid.shape, grid=grid).sum() == _mask().sum()


def test_four_d_with_one_time_point_is_a_volume(tmp_path):
    img = sitk.JoinSeries([sitk.GetImageFromArray(_mask().astype(np.uint8))])
    sitk.WriteImage(img, str(tmp_path / "t1.mha"))
    vol = read_volume(tmp_path / "t1.mha", for_mask=True)
    assert vol.array.shape == (6, 7, 8) and len(vol.spacing) == 3 and len(vol.direction) == 9


def test_two_d_nifti(tmp_path):
    m = _mask()[2]
    p = write_volume(tmp_path / "slice.nii.gz", m, spacing=(0.7, 0.8))
    vol = read_volume(p)
    assert vol.array.shape == m.shape and vol.ndim == 2
    np.testing.assert_allclose(vol.spacing, (0.7, 0.8), rtol=1e-6)
    assert image_shape(p) == m.shape


def test_multipage_tiff_and_npy_stay_3d(tmp_path):
    from PIL import Image

    m = _mask()
    frames = [Image.fromarray(p.astype(np.uint8) * 255) for p in m]
    frames[0].save(tmp_path / "m.tif", save_all=True, append_images=frames[1:])
    np.save(tmp_path / "m.npy", m.astype(np.uint8))
    for name in ("m.tif", "m.npy"):
        np.testing.assert_array_equal(read_mask(tmp_path / name), m)
        assert image_shape(tmp_path / name) == m.shape


def test_unsafe_write_arguments(tmp_path):
    with pytest.raises(ValueError, match="not a volume"):
        write_volume(tmp_path / "x.png", _mask())
    with pytest.raises(ValueError, match="2D or 3D"):
        write_volume(tmp_path / "x.nii.gz", np.zeros((2, 2, 2, 2), bool))
    assert os.listdir(tmp_path) == []
