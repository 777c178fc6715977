"""Reading 8/16-bit, grayscale and RGBA files; writing PNGs; cutout/composite/overlay images."""

import cv2
import numpy as np
import pytest
import torch

from mematte_d2.inference.io import (
    ImageReadError,
    alpha_to_png_array,
    read_image,
    read_trimap,
    to_uint8,
    write_png,
)
from mematte_d2.inference.render import composite, make_cutout, routing_overlay


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
