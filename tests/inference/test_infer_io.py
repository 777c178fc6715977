"""Reading 8/16-bit, grayscale and RGBA files; writing PNGs; cutout/composite/overlay images."""

import cv2
import numpy as np
import pytest
import torch
from file_limits import file_size_limit
from hostile_files import png_header_only
from PIL import ExifTags, Image, ImageOps

from mematte_d2.inference.render import (
    composite,
    estimate_foreground,
    make_cutout,
    routing_overlay,
)
from mematte_d2.utils.image_io import (
    ImageReadError,
    alpha_to_png_array,
    read_image,
    read_trimap,
    to_uint8,
    write_png,
)


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)


def test_read_image_returns_rgb_order(tmp_path, rgb):
    cv2.imwrite(str(tmp_path / "a.png"), rgb[:, :, ::-1])  # OpenCV writes BGR
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgb)


def test_read_image_16bit_keeps_depth_and_converts(tmp_path, rgb):
    img16 = rgb.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "a.png"), img16[:, :, ::-1])
    loaded = read_image(tmp_path / "a.png")
    assert loaded.dtype == np.uint16
    np.testing.assert_array_equal(to_uint8(loaded), rgb)


def test_read_grayscale_and_rgba(tmp_path, rgb):
    gray = rgb[:, :, 0]
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    out = read_image(tmp_path / "g.png")
    assert out.shape == (20, 30, 3) and (out == gray[:, :, None]).all()
    rgba = np.concatenate([rgb, np.full((20, 30, 1), 7, np.uint8)], axis=2)
    cv2.imwrite(str(tmp_path / "r.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    np.testing.assert_array_equal(read_image(tmp_path / "r.png"), rgb)


def test_read_trimap_16bit_and_colour(tmp_path):
    tri = np.zeros((10, 12), np.uint8)
    tri[:, 4:8] = 128
    tri[:, 8:] = 255
    cv2.imwrite(str(tmp_path / "t16.png"), tri.astype(np.uint16) * 257)
    np.testing.assert_array_equal(read_trimap(tmp_path / "t16.png"), tri)
    cv2.imwrite(str(tmp_path / "tc.png"), np.repeat(tri[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(read_trimap(tmp_path / "tc.png"), tri)


def test_corrupt_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageReadError, match="broken.png"):
        read_image(bad)
    with pytest.raises(ImageReadError, match="nope.png: no such file"):
        read_trimap(tmp_path / "nope.png")


def test_write_png_roundtrip_8_and_16_bit(tmp_path):
    alpha = np.linspace(0, 1, 60, dtype=np.float32).reshape(6, 10)
    for bits, dtype, scale in ((8, np.uint8, 255), (16, np.uint16, 65535)):
        write_png(tmp_path / f"a{bits}.png", alpha_to_png_array(alpha, bits))
        back = cv2.imread(str(tmp_path / f"a{bits}.png"), cv2.IMREAD_UNCHANGED)
        assert back.dtype == dtype
        np.testing.assert_allclose(back / scale, alpha, atol=0.5 / scale + 1e-7)


def test_cutout_composite_and_overlay():
    fg = np.full((4, 4, 3), 0.5, np.float32)
    alpha = np.array([[0.0, 0.25, 0.75, 1.0]] * 4, np.float32)
    cut = make_cutout(fg, alpha)
    assert cut.shape == (4, 4, 4) and (cut[:, :, 3] == np.round(alpha * 255)).all()
    comp = composite(fg, alpha, np.ones((8, 8, 3), np.float32))  # resized background
    np.testing.assert_array_equal(comp[:, 0], 255)
    np.testing.assert_array_equal(comp[:, 3], 128)
    image = np.zeros((20, 20, 3), np.uint8)
    routing = torch.zeros(2, 2, 2, dtype=torch.bool)
    routing[:, 0, 0] = True
    over = routing_overlay(image, routing)
    assert over[:16, :16, 0].min() > 0 and over[16:, 16:].max() == 0


def test_pixel_limit_refuses_from_the_header_before_decoding(tmp_path, rgb, monkeypatch):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(50000, 50000))
    decoded = []
    real_imdecode = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(a) or real_imdecode(*a))
    with pytest.raises(ImageReadError, match=r"bomb.png: 50000x50000 = 2,500,000,000 pixels, "
                                             r"more than the limit of max_pixels=268,435,456"):
        read_image(bomb)
    with pytest.raises(ImageReadError, match="bomb.png"):
        read_trimap(bomb)
    assert decoded == []
    cv2.imwrite(str(tmp_path / "a.png"), rgb)  # 20 x 30 = 600 pixels
    with pytest.raises(ImageReadError, match="limit of max_pixels=599"):
        read_image(tmp_path / "a.png", max_pixels=599)
    assert read_image(tmp_path / "a.png", max_pixels=600).shape == (20, 30, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_viewers_do(tmp_path, orientation):
    # big blocks so JPEG loss cannot hide a wrong turn; 40 x 64 so a transpose shows in shape
    blocks = np.random.default_rng(orientation).integers(0, 256, (5, 8, 3), dtype=np.uint8)
    stored = np.kron(blocks, np.ones((8, 8, 1), np.uint8))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    path = tmp_path / "photo.jpg"
    Image.fromarray(stored).save(path, quality=100, exif=exif)
    with Image.open(path) as im:
        displayed = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(int)
    loaded = read_image(path)
    assert loaded.shape == displayed.shape
    assert np.abs(loaded.astype(int) - displayed).mean() < 2.0
    tri = read_trimap(path)
    assert tri.shape == displayed.shape[:2]


def test_values_outside_the_dtype_scale_are_refused(tmp_path):
    as_float = np.linspace(0, 255, 60, dtype=np.float32).reshape(6, 10)
    cv2.imwrite(str(tmp_path / "f255.tif"), as_float)
    with pytest.raises(ImageReadError, match=r"f255.tif: float values in \[0, 255\]"):
        read_image(tmp_path / "f255.tif")
    with_nan = (as_float / 255).copy()
    with_nan[2, 3] = np.nan
    cv2.imwrite(str(tmp_path / "nan.tif"), with_nan)
    with pytest.raises(ImageReadError, match="nan.tif: 1 non-finite"):
        read_trimap(tmp_path / "nan.tif")
    cv2.imwrite(str(tmp_path / "u16.png"), as_float.astype(np.uint16))
    with pytest.raises(ImageReadError, match="u16.png: 16-bit file whose values are all <= 255"):
        read_image(tmp_path / "u16.png")
    cv2.imwrite(str(tmp_path / "ok.tif"), as_float / 255)
    np.testing.assert_allclose(read_image(tmp_path / "ok.tif")[:, :, 0], as_float / 255)


def test_write_png_full_disk_keeps_the_earlier_file_and_names_path(tmp_path):
    target = tmp_path / "x_alpha.png"
    write_png(target, np.zeros((4, 4), np.uint8))
    good = target.read_bytes()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    with file_size_limit(1024), pytest.raises(OSError, match=f"cannot write {target}: File too"):
        write_png(target, noise)
    assert target.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x_alpha.png"]


def test_write_png_replaces_a_symlink_instead_of_writing_its_target(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x_alpha.png").symlink_to(victim)
    write_png(tmp_path / "out" / "x_alpha.png", np.zeros((4, 4), np.uint8))
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "out" / "x_alpha.png").is_symlink()


def test_foreground_of_a_single_pixel_is_its_colour():
    image = np.array([[[0.2, 0.4, 0.6]]], np.float32)
    np.testing.assert_allclose(estimate_foreground(image, np.array([[0.5]], np.float32)), image)
