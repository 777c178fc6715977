"""What is checked before an image file is decoded, and the orientation every format comes
out in (mematte_d2.utils.image_io)."""

import io
import struct

import cv2
import numpy as np
import pytest
from hostile_files import radiance_hdr_header, tiff_header_only
from PIL import ExifTags, Image, ImageOps

from mematte_d2.utils.image_io import (
    ImageReadError,
    read_image,
    read_mask,
    read_plane,
    read_trimap,
)

READERS = (read_image, read_trimap, read_plane, read_mask)


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if OpenCV is asked to decode anything."""

    def refuse(*args, **kwargs):
        raise AssertionError("cv2 decoded a file whose header should have stopped it")

    monkeypatch.setattr(cv2, "imdecode", refuse)
    monkeypatch.setattr(cv2, "imread", refuse)


@pytest.mark.parametrize("name", ["bomb.png", "bomb.hdr", "bomb.jpg"])
@pytest.mark.parametrize("reader", READERS)
def test_formats_whose_header_is_not_read_are_refused_before_decoding(
    tmp_path, no_decoding, name, reader
):
    # 121 bytes OpenCV would decode into a 32768 x 32768 float image (12.9 GB), whatever the name
    (tmp_path / name).write_bytes(radiance_hdr_header(32768, 32768))
    with pytest.raises(ImageReadError, match=rf"{name}: not a readable image \(its content is "
                                             r"not PNG, JPEG, BMP, TIFF or WebP"):
        reader(tmp_path / name, max_pixels=1000)


def test_other_formats_opencv_decodes_are_refused(tmp_path, no_decoding):
    (tmp_path / "a.png").write_bytes(b"P5\n40000 40000\n255\n" + bytes(16))  # PGM
    (tmp_path / "b.png").write_bytes(b"\x59\xa6\x6a\x95" + bytes(28))  # Sun raster
    for name in ("a.png", "b.png"):
        with pytest.raises(ImageReadError, match=f"{name}: not a readable image"):
            read_image(tmp_path / name)


@pytest.mark.parametrize("layout", [{}, {"big_endian": True}, {"bigtiff": True},
                                    {"bigtiff": True, "big_endian": True}])
@pytest.mark.parametrize("reader", READERS)
def test_tiff_size_is_read_before_decoding_layouts_pillow_cannot_open(
    tmp_path, no_decoding, layout, reader
):
    # about 1 KB that OpenCV would decode into 30000^2 float RGB (10.8 GB)
    path = tmp_path / "bomb.tif"
    path.write_bytes(tiff_header_only(30000, 30000, **layout))
    with pytest.raises(OSError):
        Image.open(path)  # the layout Pillow cannot open, so cannot measure
    with pytest.raises(ImageReadError, match=r"bomb.tif: 30000x30000 = 900,000,000 pixels, "
                                             r"more than the limit of max_pixels=1,000"):
        reader(path, max_pixels=1000)


def test_tiff_tiles_larger_than_the_limit_are_refused_before_decoding(tmp_path, no_decoding):
    # 16 x 16 pixels in one 8192 x 8192 tile: OpenCV would allocate the tile (768 MB)
    (tmp_path / "tiled.tif").write_bytes(tiff_header_only(16, 16, tile=8192))
    with pytest.raises(ImageReadError, match=r"tiled.tif: TIFF tiles of 8192x8192 = 67,108,864 "
                                             r"pixels, more than the limit of max_pixels=1,000"):
        read_image(tmp_path / "tiled.tif", max_pixels=1000)


def test_float_rgb_tiff_within_the_limit_is_read(tmp_path):
    rgb = np.random.default_rng(0).random((20, 30, 3), dtype=np.float32)
    cv2.imwrite(str(tmp_path / "f.tif"), rgb[:, :, ::-1])
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif", max_pixels=600), rgb)
    with pytest.raises(ImageReadError, match="f.tif: 30x20 = 600 pixels"):
        read_image(tmp_path / "f.tif", max_pixels=599)


def test_truncated_tiff_header_is_named(tmp_path):
    (tmp_path / "cut.tif").write_bytes(tiff_header_only(10, 10)[:20])
    with pytest.raises(ImageReadError, match="cut.tif: not a readable image"):
        read_image(tmp_path / "cut.tif")


def _png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        chunks.append(data[pos:pos + 12 + length])
        pos += 12 + length
    return chunks


def _exif_after_pixels(png: bytes) -> bytes:
    """The PNG with its eXIf chunk moved after the pixel data, just before IEND."""
    chunks = _png_chunks(png)
    exif = [c for c in chunks if c[4:8] == b"eXIf"]
    rest = [c for c in chunks if c[4:8] != b"eXIf"]
    assert exif and rest[-1][4:8] == b"IEND"
    return png[:8] + b"".join(rest[:-1] + exif + rest[-1:])


def _oriented_file(fmt: str, stored: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    buf = io.BytesIO()
    options = {"JPEG": {"quality": 100, "subsampling": 0}, "WEBP": {"lossless": True}}
    Image.fromarray(stored).save(buf, format=fmt.split("-")[0], exif=exif,
                                 **options.get(fmt, {}))
    data = buf.getvalue()
    return _exif_after_pixels(data) if fmt == "PNG-exif-after-pixels" else data


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "PNG-exif-after-pixels", "TIFF", "WEBP"])
def test_orientation_matches_pillow_exif_transpose(tmp_path, fmt, orientation):
    # 8 px blocks so JPEG loss cannot hide a wrong turn; 24 x 40 so a transpose shows in shape
    blocks = np.random.default_rng(orientation).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    stored = np.kron(blocks, np.ones((8, 8, 1), np.uint8))
    path = tmp_path / "photo.img"  # the name says nothing: the content decides
    path.write_bytes(_oriented_file(fmt, stored, orientation))
    with Image.open(path) as im:
        shown = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(int)
    image = read_image(path).astype(int)
    assert image.shape == shown.shape
    assert np.abs(image - shown).mean() < 1.0
    red = read_plane(path).astype(int)  # evaluate_folder reads mattes and trimaps so
    assert np.abs(red - shown[:, :, 0]).mean() < 1.0
    trimap = read_trimap(path).astype(int)
    gray = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("L")).astype(int)
    assert np.abs(trimap - gray).mean() < 1.5


# How EXIF orientations 2-8 are displayed, as Pillow's exif_transpose turns them.
DISPLAYED = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
             4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
             6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["L", "I;16", "F"])
def test_tiff_orientation_of_gray_layouts(tmp_path, mode, orientation):
    # Pillow's own reading of these TIFFs turned 5-8 is off, so the stored array is turned
    # with exif_transpose's table instead.
    stored = np.random.default_rng(orientation).random((3, 5), dtype=np.float32)
    values = {"L": (stored * 255).astype(np.uint8),
              "I;16": (stored * 65000 + 300).astype(np.uint16), "F": stored}[mode]
    path = tmp_path / "t.tif"
    Image.fromarray(values).save(path, tiffinfo={274: orientation})
    shown = Image.fromarray(values)
    if orientation > 1:
        shown = shown.transpose(DISPLAYED[orientation])
    np.testing.assert_array_equal(read_plane(path), np.asarray(shown))


@pytest.mark.parametrize("reader", READERS)
def test_samples_of_unknown_scale_are_refused_naming_the_file(tmp_path, reader):
    Image.fromarray(np.full((4, 6), 128, np.int32)).save(tmp_path / "t.tif")
    with pytest.raises(ImageReadError, match=r"t.tif: int32 samples, whose scale is unknown"):
        reader(tmp_path / "t.tif")


@pytest.mark.parametrize("ext", [".bmp", ".png", ".tif", ".webp"])
def test_each_decoded_format_reads_under_any_name(tmp_path, ext):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    ok, data = cv2.imencode(ext, rgb[:, :, ::-1], [cv2.IMWRITE_WEBP_QUALITY, 101])
    (tmp_path / "picture.jpg").write_bytes(data.tobytes())  # the name says JPEG: ignored
    np.testing.assert_array_equal(read_image(tmp_path / "picture.jpg"), rgb)
