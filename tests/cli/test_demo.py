"""The demo's report sheet: titled columns, and routing maps that show routing at work."""

import math

import numpy as np
from tiny_models import tiny_cfg

from mematte_d2.cli.demo import sheet_row, sheet_titles
from mematte_d2.engine.visualize import titled_sheet
from mematte_d2.inference import MattingPredictor


def _pair(h: int = 64, w: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    trimap = np.zeros((h, w), np.uint8)
    trimap[16:48, 20:60] = 128
    trimap[24:40, 30:50] = 255
    return image, trimap, (trimap / 255.0).astype(np.float32)


def test_sheet_row_shows_the_fixed_keep_ratio_routing_next_to_the_argmax_rule():
    image, trimap, alpha = _pair()
    predictor = MattingPredictor(tiny_cfg(), device="cpu", max_memory=None)
    tiles, argmax, fixed = sheet_row(predictor, image, trimap, alpha, keep_ratio=0.25)
    assert len(tiles) == len(sheet_titles(0.25)) == 6
    assert sheet_titles(0.25)[-2:] == ["routing: argmax rule", "routing: keep ratio 0.25"]
    # Every routed block sends exactly ceil(0.25 N) tokens, whatever the argmax rule does.
    assert fixed.tokens_routed and all(
        n == math.ceil(0.25 * fixed.num_tokens) for n in fixed.tokens_routed
    )
    assert argmax.routing.shape == fixed.routing.shape
    # The fixed-ratio map is tinted red where tokens were routed (below the corner label).
    routed_map = tiles[-1][20:].astype(int)
    assert (routed_map[..., 0] - routed_map[..., 1] > 60).any()
    assert not np.array_equal(tiles[-1][20:], image[20:])


def test_titled_sheet_has_a_header_band_with_a_title_over_each_column():
    tile = np.full((40, 50, 3), 255, np.uint8)
    rows = [[tile, tile[:, :30]], [tile[:30], tile]]
    sheet = titled_sheet(["input", "alpha"], rows, caption="why")
    header, body = sheet[:22], sheet[22:]
    # One header line (18 px + gap), two rows of 40 px (+ gaps), one caption line.
    assert sheet.shape == (22 + 2 * 44 + 22, 50 + 4 + 50, 3)
    assert (header[:, :50] < 128).any() and (header[:, 54:] < 128).any()  # text in both
    assert (body[: 2 * 44] == 255).all()  # the white tiles below, untouched by text
    assert (sheet[-22:] < 128).any()  # the caption
