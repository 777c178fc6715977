"""predict with trimaps as people draw them (snapped by default, --strict-trimap refuses) and
masks that leave the model nothing to decide."""

import re

import cv2
import numpy as np
import pytest
from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS, tiny_cfg

from mematte_d2.cli.predict import main
from mematte_d2.inference import MattingPredictor
from mematte_d2.utils.trimap import snap_trimap

pytestmark = pytest.mark.integration


def _args(weights, *extra):
    return ["--config-file", MEMATTE_CONFIG, "--weights", weights, "--device", "cpu", *extra,
            *MEMATTE_OPTS]


def _drawn_trimap(h: int, w: int) -> np.ndarray:
    """A trimap painted with an anti-aliased brush, then resized as editors do."""
    tri = np.zeros((h // 2, w // 2), np.uint8)
    cv2.circle(tri, (w // 4, h // 4), min(h, w) // 5, 128, -1, lineType=cv2.LINE_AA)
    cv2.circle(tri, (w // 4, h // 4), min(h, w) // 10, 255, -1, lineType=cv2.LINE_AA)
    return cv2.resize(tri, (w, h), interpolation=cv2.INTER_LINEAR)


def test_drawn_trimap_is_snapped_by_default_and_refused_when_strict(tmp_path, weights, capsys):
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    drawn = _drawn_trimap(48, 64)
    snapped, changed = snap_trimap(drawn)
    assert len(np.unique(drawn)) > 20 and changed > 0
    cv2.imwrite(str(tmp_path / "x.png"), image[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "x_trimap.png"), drawn)
    files = ["--input", str(tmp_path / "x.png"), "--trimap", str(tmp_path / "x_trimap.png")]

    assert main(_args(weights, *files, "--output", str(tmp_path / "out"))) == 0
    err = capsys.readouterr().err
    assert f"trimap x_trimap.png: {changed} pixels snapped to 0/128/255" in err
    alpha = cv2.imread(str(tmp_path / "out" / "x_alpha.png"), cv2.IMREAD_UNCHANGED) / 255.0
    expected = MattingPredictor(tiny_cfg(), weights, device="cpu")(image, snapped)
    np.testing.assert_allclose(alpha, expected, atol=0.5 / 255 + 1e-6)

    status = main(_args(weights, *files, "--output", str(tmp_path / "strict"), "--strict-trimap"))
    err = capsys.readouterr().err
    assert status == 1  # a per-file failure, as every bad input file of a batch
    assert re.search(r"x.png: trimap x_trimap.png: trimap has values other than 0 / 128 / 255 "
                     r"\(.* in \d+ pixels\)", err)
    assert not (tmp_path / "strict" / "x_alpha.png").exists()


@pytest.mark.parametrize("value, message", [
    (0, "it marks no foreground (an empty mask): the alpha will be all 0"),
    (255, "it marks the whole image as foreground: the alpha will be all 1"),
])
def test_empty_or_full_mask_is_warned_about_by_name(tmp_path, weights, capsys, value, message):
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((32, 32, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "m.png"), np.full((32, 32), value, np.uint8))
    status = main(_args(weights, "--input", str(tmp_path / "x.png"), "--mask",
                        str(tmp_path / "m.png"), "--output", str(tmp_path / "out")))
    assert status == 0
    assert f"warning: mask m.png: {message}" in capsys.readouterr().err
