"""predict with --mask: trimaps derived from coarse masks or the input's own alpha channel."""

import cv2
import numpy as np
import pytest
from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS, tiny_cfg

from mematte_d2.cli.predict import main
from mematte_d2.inference import MattingPredictor
from mematte_d2.utils.trimap_from_mask import trimap_from_mask

pytestmark = pytest.mark.integration


def _disc_mask(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= (min(h, w) / 3) ** 2).astype(np.uint8) * 255


def _args(weights, *extra):
    return ["--config-file", MEMATTE_CONFIG, "--weights", weights, "--device", "cpu", *extra,
            *MEMATTE_OPTS]


def test_mask_folder_gives_the_derived_trimap_and_its_matte(tmp_path, weights, capsys):
    rng = np.random.default_rng(0)
    src, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    src.mkdir(), masks.mkdir()
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(src / "x.png"), image[:, :, ::-1])
    cv2.imwrite(str(masks / "x_mask.png"), _disc_mask(48, 64))
    status = main(_args(weights, "--input", str(src), "--mask", str(masks), "--output", str(out),
                        "--mask-erode", "3", "--mask-dilate", "5", "--save-trimap"))
    assert status == 0, capsys.readouterr().err
    trimap = cv2.imread(str(out / "x_trimap.png"), cv2.IMREAD_UNCHANGED)
    expected_trimap = trimap_from_mask(_disc_mask(48, 64), erode=3, dilate=5)
    np.testing.assert_array_equal(trimap, expected_trimap)
    alpha = cv2.imread(str(out / "x_alpha.png"), cv2.IMREAD_UNCHANGED)
    expected = MattingPredictor(tiny_cfg(), weights, device="cpu")(image, expected_trimap)
    np.testing.assert_allclose(alpha / 255.0, expected, atol=0.5 / 255 + 1e-6)


def test_mask_alpha_uses_each_inputs_alpha_and_names_inputs_without_one(tmp_path, weights,
                                                                        capsys):
    rng = np.random.default_rng(1)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    rgba = np.dstack([rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), _disc_mask(40, 40)])
    cv2.imwrite(str(src / "rgba.png"), rgba)
    cv2.imwrite(str(src / "rgb.png"), rgba[:, :, :3])
    status = main(_args(weights, "--input", str(src), "--mask", "alpha", "--output", str(out),
                        "--save-trimap"))
    err = capsys.readouterr().err
    assert status == 1
    assert "rgb.png" in err and "has no alpha channel" in err
    assert sorted(p.name for p in out.iterdir()) == ["rgba_alpha.png", "rgba_trimap.png"]
    trimap = cv2.imread(str(out / "rgba_trimap.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(trimap, trimap_from_mask(_disc_mask(40, 40)))


@pytest.mark.parametrize("options, message", [
    (["--trimap", "t", "--mask", "m"], "not allowed with argument"),
    ([], "one of the arguments --trimap --mask is required"),
    (["--mask", "m", "--mask-band", "0.7"], "band_fraction must be in (0, 0.5), got 0.7"),
    (["--mask", "m", "--mask-erode", "-2"], "erode must be a non-negative number of pixels"),
    (["--mask", "m", "--mask-threshold", "0"], "mask threshold must be in (0, 1], got 0.0"),
])
def test_bad_mask_options_exit_2_with_one_line(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as info:
        main(["--config-file", "c.py", "--input", str(tmp_path), "--output",
              str(tmp_path / "out"), *options])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_soft_low_above_the_threshold_exits_2_before_any_work(tmp_path, capsys):
    (tmp_path / "x.png").write_bytes(b"")
    status = main(["--config-file", str(tmp_path / "none.py"), "--input", str(tmp_path / "x.png"),
                   "--mask", "alpha", "--mask-soft-low", "0.6", "--output", str(tmp_path / "o")])
    assert status == 2
    assert "--mask-soft-low 0.6 must be below --mask-threshold 0.5" in capsys.readouterr().err


def test_a_real_photo_with_a_painted_mask(tmp_path, weights, capsys):
    """scikit-image's cat photo (300 x 451, not a multiple of 32) with an ellipse painted over
    the cat: the trimap's band follows the ellipse and alpha is 0 / 1 outside it."""
    from skimage import data

    photo = data.chelsea()
    h, w = photo.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    mask = ((((yy - 150) / 120) ** 2 + ((xx - 240) / 170) ** 2) <= 1).astype(np.uint8) * 255
    cv2.imwrite(str(tmp_path / "cat.jpg"), photo[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "cat_mask.png"), mask)
    out = tmp_path / "out"
    status = main(_args(weights, "--input", str(tmp_path / "cat.jpg"), "--mask",
                        str(tmp_path / "cat_mask.png"), "--output", str(out), "--save-trimap"))
    assert status == 0, capsys.readouterr().err
    trimap = cv2.imread(str(out / "cat_trimap.png"), cv2.IMREAD_UNCHANGED)
    alpha = cv2.imread(str(out / "cat_alpha.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(trimap, trimap_from_mask(mask))
    # the default band: 3 px (1% of 300) on each side of the edge, where row 150 crosses it twice
    assert 10 <= (trimap[150] == 128).sum() <= 16
    np.testing.assert_array_equal(alpha[trimap == 0], 0)
    np.testing.assert_array_equal(alpha[trimap == 255], 255)
