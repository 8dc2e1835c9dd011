"""read_image / read_mask: encodings, bad files, the pixel limit."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from napari_iaa.data import MaskEncodingWarning, image_shape, read_image, read_mask, to_bool_mask
from napari_iaa.errors import ImageReadError, ShapeMismatchError


def _save(path, arr, **kw):
    Image.fromarray(arr, **kw).save(path)
    return path


@pytest.fixture
def square():
    m = np.zeros((20, 30), dtype=bool)
    m[5:15, 10:20] = True
    return m


def _no_warning(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MaskEncodingWarning)
        return fn(*args, **kw)


@pytest.mark.parametrize(
    "encode",
    [
        lambda m: m.astype(np.uint8),  # 0/1
        lambda m: m.astype(np.uint8) * 255,  # 0/255
        lambda m: m.astype(np.uint16) * 1000,  # uint16
        lambda m: m,  # bool (mode "1")
    ],
    ids=["0-1", "0-255", "uint16", "bool"],
)
def test_two_valued_encodings_read_without_warning(tmp_path, square, encode):
    p = _save(tmp_path / "m.png", encode(square))
    got = _no_warning(read_mask, p)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, square)


def test_float_npy_mask(tmp_path, square):
    p = tmp_path / "m.npy"
    np.save(p, square.astype(np.float32) * 0.7)
    np.testing.assert_array_equal(_no_warning(read_mask, p), square)


def test_tiff_that_pil_cannot_read_float64_mask_and_volume(tmp_path, square):
    tifffile = pytest.importorskip("tifffile")
    p = tmp_path / "m.tif"  # what skimage.io.imsave / tifffile write for a float mask
    tifffile.imwrite(p, square.astype(np.float64))
    assert image_shape(p) == square.shape
    np.testing.assert_array_equal(_no_warning(read_mask, p, shape=square.shape), square)
    vol = np.stack([square, np.roll(square, 1, axis=0), square]).astype(np.float64)
    pv = tmp_path / "v.tiff"
    tifffile.imwrite(pv, vol)
    assert image_shape(pv) == vol.shape
    np.testing.assert_array_equal(_no_warning(read_mask, pv, shape=vol.shape), vol > 0)
    img = tmp_path / "img.tif"
    tifffile.imwrite(img, np.linspace(0, 1, 600).reshape(20, 30))
    assert read_image(img).shape == (20, 30)
    rgb16 = tmp_path / "rgb16.tif"  # PIL cuts 16-bit colour samples to 8 bits: 1 -> 0
    tifffile.imwrite(rgb16, np.repeat(square[..., None], 3, axis=2).astype(np.uint16))
    np.testing.assert_array_equal(_no_warning(read_mask, rgb16, shape=square.shape), square)
    assert read_image(rgb16).dtype == np.uint16
    bad = tmp_path / "notes.tif"
    bad.write_text("hello, I am not an image\n")
    with pytest.raises(ImageReadError, match=r"notes\.tif: not an image"):
        read_mask(bad)


def _png_rgb16(path, arr):
    """A 16-bit RGB PNG (as OpenCV writes a uint16 three-channel array)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_16bit_colour_png_mask_read_at_8_bits_is_warned(tmp_path, square):
    rgb = np.repeat(square[..., None], 3, axis=2).astype(np.uint16)
    full = _png_rgb16(tmp_path / "full.png", rgb * 65535)
    small = _png_rgb16(tmp_path / "small.png", rgb)
    for path, expected in ((full, square), (small, np.zeros_like(square))):
        with pytest.warns(MaskEncodingWarning, match=rf"{path.name}: 16-bit colour image read at 8 bits"):
            got = read_mask(path, shape=square.shape)
        np.testing.assert_array_equal(got, expected)  # PIL keeps the high byte: 1 -> 0


def test_label_image_warns_and_is_nonzero(tmp_path, square):
    lab = square.astype(np.uint8)
    lab[5:10, 10:20] = 2
    lab[0, 0] = 7
    p = _save(tmp_path / "labels.png", lab)
    with pytest.warns(MaskEncodingWarning, match="not two-valued"):
        got = read_mask(p)
    np.testing.assert_array_equal(got, lab > 0)


def test_rgb_grey_in_disguise_collapses(tmp_path, square):
    rgb = np.repeat((square.astype(np.uint8) * 255)[..., None], 3, axis=2)
    p = _save(tmp_path / "rgb.png", rgb)
    np.testing.assert_array_equal(_no_warning(read_mask, p), square)


def test_rgb_colour_mask_warns(tmp_path, square):
    rgb = np.zeros((*square.shape, 3), np.uint8)
    rgb[square] = (255, 0, 0)
    rgb[0, 0] = (0, 0, 9)
    p = _save(tmp_path / "red.png", rgb)
    with pytest.warns(MaskEncodingWarning, match="colour mask"):
        got = read_mask(p)
    exp = square.copy()
    exp[0, 0] = True
    np.testing.assert_array_equal(got, exp)


def test_rgba_alpha_is_the_mask_when_it_varies(tmp_path, square):
    rgba = np.zeros((*square.shape, 4), np.uint8)
    rgba[..., :3] = 255  # constant white colour, mask only in alpha
    rgba[..., 3] = square * 255
    p = _save(tmp_path / "overlay.png", rgba)
    np.testing.assert_array_equal(_no_warning(read_mask, p), square)


def test_rgba_constant_alpha_uses_colour(tmp_path, square):
    rgba = np.full((*square.shape, 4), 255, np.uint8)
    rgba[..., :3] = (square * 255)[..., None]
    p = _save(tmp_path / "opaque.png", rgba)
    np.testing.assert_array_equal(_no_warning(read_mask, p), square)


def test_empty_full_and_one_pixel_masks(tmp_path):
    for name, m in {
        "empty": np.zeros((8, 8), bool),
        "full": np.ones((8, 8), bool),
        "one": np.pad(np.ones((1, 1), bool), ((3, 4), (2, 5))),
    }.items():
        p = _save(tmp_path / f"{name}.png", m.astype(np.uint8) * 255)
        np.testing.assert_array_equal(_no_warning(read_mask, p), m)


def test_two_values_without_zero_warns():
    arr = np.full((4, 4), 128, np.uint8)
    arr[0] = 255
    with pytest.warns(MaskEncodingWarning, match="without a zero"):
        assert to_bool_mask(arr).all()


def test_nan_is_background():
    arr = np.array([[np.nan, 1.0], [0.0, 1.0]])
    with pytest.warns(MaskEncodingWarning, match="NaN"):
        got = to_bool_mask(arr)
    np.testing.assert_array_equal(got, [[False, True], [False, True]])


def test_shape_mismatch_names_file(tmp_path, square):
    p = _save(tmp_path / "m.png", square.astype(np.uint8))
    with pytest.raises(ShapeMismatchError, match=r"m\.png.*20x30.*image shape 21x30"):
        read_mask(p, shape=(21, 30))


def test_zero_byte_file(tmp_path):
    p = tmp_path / "zero.png"
    p.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"zero\.png: empty file"):
        read_image(p)


def test_text_named_png(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("hello, I am not an image\n")
    with pytest.raises(ImageReadError, match=r"notes\.png: not an image"):
        read_mask(p)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match=r"gone\.png: file not found"):
        read_image(tmp_path / "gone.png")


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated_file(tmp_path, fmt, suffix):
    rng = np.random.default_rng(0)
    full = tmp_path / f"full{suffix}"
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full, format=fmt)
    data = full.read_bytes()
    p = tmp_path / f"cut{suffix}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=rf"cut\{suffix}: cannot decode image, file truncated"):
        read_image(p)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_huge_image_refused_before_decoding(tmp_path):
    p = tmp_path / "huge.png"
    p.write_bytes(_png_header_only(20000, 20000))  # 400 Mpx announced, 100 bytes on disk
    with pytest.raises(ImageReadError, match=r"huge\.png: .*(too large|exceeds)"):
        read_image(p)
    with pytest.raises(ImageReadError, match=r"huge\.png"):
        read_mask(p)


def test_pixel_limit_from_env(tmp_path, monkeypatch):
    p = _save(tmp_path / "img.png", np.zeros((20, 20), np.uint8))
    monkeypatch.setenv("NAPARI_IAA_MAX_PIXELS", "399")
    with pytest.raises(ImageReadError, match=r"img\.png: image of 20 x 20 pixels .* exceeds the limit of 399"):
        read_image(p)
    monkeypatch.setenv("NAPARI_IAA_MAX_PIXELS", "400")
    assert read_image(p).shape == (20, 20)


def test_read_image_modes(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (6, 7, 3), dtype=np.uint8)
    assert read_image(_save(tmp_path / "rgb.png", rgb)).shape == (6, 7, 3)
    rgba = np.dstack([rgb, np.full((6, 7), 200, np.uint8)])
    np.testing.assert_array_equal(read_image(_save(tmp_path / "rgba.png", rgba)), rgb)
    grey = rgb[..., 0]
    np.testing.assert_array_equal(read_image(_save(tmp_path / "g.png", grey)), grey)
    pal = Image.fromarray(rgb).convert("P")
    pal.save(tmp_path / "pal.png")
    assert read_image(tmp_path / "pal.png").shape == (6, 7, 3)
    assert image_shape(tmp_path / "rgb.png") == (6, 7)


def test_npy_is_never_unpickled(tmp_path):
    p = tmp_path / "obj.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageReadError, match=r"obj\.npy"):
        read_image(p)


@pytest.mark.parametrize("colour", [False, True])
def test_jpeg_mask_is_thresholded_not_read_as_nonzero(tmp_path, colour):
    # a 0/255 disk saved as JPEG: compression ringing puts faint nonzero values around the
    # outline, which "nonzero" would count as foreground
    yy, xx = np.mgrid[:128, :128]
    disk = (yy - 64) ** 2 + (xx - 60) ** 2 < 30**2
    plane = disk.astype(np.uint8) * 255
    arr = np.repeat(plane[..., None], 3, axis=2) if colour else plane
    path = tmp_path / "rater1.jpg"
    Image.fromarray(arr).save(path, quality=70)
    decoded = np.asarray(Image.open(path))
    assert np.count_nonzero(decoded.max(axis=-1) if colour else decoded) > disk.sum() * 1.05
    with pytest.warns(MaskEncodingWarning, match=r"rater1\.jpg: JPEG mask .*half the brightest"):
        got = read_mask(path, shape=disk.shape)
    dice = 2 * np.count_nonzero(got & disk) / (got.sum() + disk.sum())
    assert dice > 0.99


def test_two_valued_jpeg_mask_reads_without_warning(tmp_path):
    flat = np.zeros((64, 64), np.uint8)  # nothing to blur: JPEG keeps it exactly
    path = tmp_path / "empty.jpeg"
    Image.fromarray(flat).save(path)
    assert not _no_warning(read_mask, path).any()


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_an_image_s_exif_orientation_is_not_applied_and_is_named(tmp_path, suffix):
    """A phone photo's EXIF orientation (turn 90 degrees for display) is not applied: the
    image is read in its stored pixel order, on which its masks are drawn (a turned image
    would leave them); the reader warns, naming the file. Orientation 1, and a mask file,
    read without a warning."""
    from napari_iaa.data import ExifOrientationWarning

    rgb = np.zeros((40, 64, 3), np.uint8)
    rgb[:10, :20] = 255  # a bright corner, top left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(rgb).save(path, exif=exif, **({"quality": 95} if suffix != ".png" else {}))
    with pytest.warns(ExifOrientationWarning, match=rf"photo\{suffix}: its EXIF orientation \(6"):
        got = read_image(path)
    assert got.shape == (40, 64, 3)
    assert got[:10, :20].mean() > 200 and got[-10:, -20:].mean() < 50
    exif[0x0112] = 1
    upright = tmp_path / f"upright{suffix}"
    Image.fromarray(rgb).save(upright, exif=exif)
    assert _no_warning(read_image, upright).shape == (40, 64, 3)
    mask = tmp_path / "mask.png"
    exif[0x0112] = 6
    Image.fromarray(rgb[..., 0]).save(mask, exif=exif)
    assert _no_warning(read_mask, mask).shape == (40, 64)
