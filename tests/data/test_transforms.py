"""The release's training transforms, each step on constructed inputs with a known outcome."""

import cv2
import numpy as np
import pytest
from data_samples import soft_alpha, unique_name, write_composition_set

from mematte_d2.data import MattingTrainMapper, register_matting_dataset
from mematte_d2.data.reading import read_alpha, read_rgb
from mematte_d2.data.transforms import (
    INTERPOLATIONS,
    Composite,
    CropAroundUnknown,
    FitBackground,
    ForegroundColorJitter,
    GenerateTrimap,
    RandomAffine,
    RandomResize,
    RandomSecondForeground,
    fold_into_unit,
    random_interpolation,
    release_train_transforms,
)


def _sample(h=60, w=80, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "fg": rng.uniform(0, 255, (h, w, 3)).astype(np.float32),
        "alpha": soft_alpha(h, w, rng).astype(np.float32) / 255.0,
        "bg": rng.uniform(0, 255, (h + 13, w + 40, 3)).astype(np.float32),
    }


def _rng(seed=0):
    return np.random.default_rng(seed)


def _coordinates(h, w):
    """fg whose red / green channels are each pixel's row / column times 255 / 2000 (colours
    stay in [0, 255]): a crop shows where it comes from."""
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32) * np.float32(_PER_PIXEL)
    return np.stack([rows, cols, np.zeros_like(rows)], axis=2)


_PER_PIXEL = 255 / 2000


# ---- interpolation -------------------------------------------------------------------------

def test_each_resized_array_draws_its_own_interpolation():
    step = np.full((8, 8), 0.25, np.float32)
    step[:, 4:] = 0.75  # overshoots stay inside [0, 1]: no clipping hides the kernel
    references = [cv2.resize(step, (20, 20), interpolation=i) for i in INTERPOLATIONS]

    def which(out):
        (match,) = [k for k, ref in enumerate(references) if np.allclose(out, ref, atol=1e-5)]
        return match

    resize = RandomResize(size=(20, 20), prob=1.0)
    rng, used = _rng(), []
    for _ in range(400):
        out = resize({"fg": np.repeat(step[:, :, None] * 255, 3, axis=2), "alpha": step.copy()},
                     rng)
        used.append((which(out["fg"][:, :, 0] / 255), which(out["alpha"])))
    used = np.array(used)
    for column in used.T:  # all four kinds, about equally often
        assert np.all(np.abs(np.bincount(column, minlength=4) / len(column) - 0.25) < 0.07)
    assert 0.65 < np.mean(used[:, 0] != used[:, 1]) < 0.85  # independent: 3/4 differ
    draws = [random_interpolation(rng) for _ in range(100)]
    assert set(draws) == set(INTERPOLATIONS)


# ---- second foreground and 640 resize ------------------------------------------------------

def _one_foreground_set(tmp_path):
    dirs = write_composition_set(tmp_path, n_fg=1, size=(60, 80))
    name = unique_name("second")
    register_matting_dataset(name, **dirs)
    return name, read_rgb(f"{dirs['fg_dir']}/obj0.png"), read_alpha(f"{dirs['alpha_dir']}/obj0.png")


def test_second_foreground_union_and_colour_blend(tmp_path):
    name, fg2, a2 = _one_foreground_set(tmp_path)
    sample = _sample()
    a1, fg1 = sample["alpha"].copy(), sample["fg"].copy()
    out = RandomSecondForeground(name, prob=1.0)(sample, _rng())
    np.testing.assert_allclose(out["alpha"], 1 - (1 - a1) * (1 - a2), atol=1e-6)
    np.testing.assert_allclose(out["fg"], fg1 * a1[..., None] + fg2 * (1 - a1[..., None]),
                               atol=1e-3)


def test_second_foreground_skipped_when_the_union_is_opaque_and_half_the_time(tmp_path):
    name, _, _ = _one_foreground_set(tmp_path)
    opaque = _sample()
    opaque["alpha"][:] = 1.0
    before = opaque["fg"].copy()
    assert np.array_equal(RandomSecondForeground(name, prob=1.0)(opaque, _rng())["fg"], before)

    step, rng = RandomSecondForeground(name), _rng(1)
    alpha = _sample()["alpha"]
    merged = [not np.array_equal(step({"fg": _sample()["fg"], "alpha": alpha.copy()}, rng)
                                 ["alpha"], alpha) for _ in range(300)]
    assert 0.42 < np.mean(merged) < 0.58


def test_resize_to_640_a_quarter_of_the_time():
    assert RandomResize(prob=1.0)(_sample(30, 50), _rng())["fg"].shape == (640, 640, 3)
    resize, rng = RandomResize(size=(64, 48)), _rng()  # the default probability, small output
    shapes = [resize(_sample(30, 50), rng)["alpha"].shape for _ in range(800)]
    assert set(shapes) == {(30, 50), (64, 48)}
    assert 0.21 < np.mean([s == (64, 48) for s in shapes]) < 0.29


# ---- affine --------------------------------------------------------------------------------

def test_no_rotation_below_1024_pixels_and_full_range_above():
    affine, rng = RandomAffine(), _rng()
    assert all(affine.draw(1023, 700, rng)["angle"] == 0 for _ in range(200))
    angles = np.array([affine.draw(400, 1024, rng)["angle"] for _ in range(2000)])
    assert np.abs(angles).max() <= 30 and np.abs(angles).max() > 29
    assert np.abs(angles.mean()) < 1.5 and np.mean(angles == 0) == 0


def test_scales_shear_and_flips_are_drawn_independently():
    affine, rng = RandomAffine(), _rng()
    draws = [affine.draw(500, 500, rng) for _ in range(4000)]
    scales = np.array([d["scales"] for d in draws])
    flips = np.array([d["flips"] for d in draws])
    shears = np.array([d["shear"] for d in draws])
    assert 0.8 <= scales.min() and scales.max() <= 1.25
    assert abs(np.corrcoef(scales.T)[0, 1]) < 0.05
    assert np.abs(shears).max() <= 10 and np.abs(shears).max() > 9.9
    assert set(np.unique(flips)) == {-1.0, 1.0}
    vertical, horizontal = flips[:, 1] < 0, flips[:, 0] < 0
    assert abs(vertical.mean() - 0.5) < 0.03 and abs(horizontal.mean() - 0.5) < 0.03
    assert abs(np.mean(vertical & horizontal) - 0.25) < 0.03


@pytest.mark.parametrize("angle,scales,shear,flips", [
    (0.0, (1.0, 1.0), 0.0, (1.0, 1.0)),
    (25.0, (0.9, 1.2), 0.0, (1.0, -1.0)),
    (-12.0, (1.1, 0.85), 8.0, (-1.0, 1.0)),
])
def test_affine_matrix_fixes_the_centre_and_has_the_expected_determinant(angle, scales, shear,
                                                                         flips):
    m = RandomAffine.matrix(300, 400, angle, scales, shear, flips)
    np.testing.assert_allclose(m @ [200.5, 150.5, 1.0], [200.5, 150.5], atol=1e-9)
    expected = np.prod(scales) * np.prod(flips) * np.cos(np.deg2rad(shear))
    assert np.linalg.det(m[:, :2]) == pytest.approx(expected)
    if shear == 0 and scales == (1.0, 1.0) and flips == (1.0, 1.0):
        np.testing.assert_allclose(m[:, :2], np.eye(2), atol=1e-12)
    rotation = RandomAffine.matrix(300, 400, 90.0, (1, 1), 0.0, (1, 1))[:, :2]
    np.testing.assert_allclose(rotation, [[0, -1], [1, 0]], atol=1e-12)


def test_flips_turn_about_w_over_2_plus_half():
    """The release's centre (W/2 + 0.5, H/2 + 0.5): a flip maps x to W + 1 - x, so the first
    two rows and columns come from outside the image and are 0."""
    h, w = 30, 40
    sample = {"fg": _coordinates(h, w) + 1, "alpha": np.ones((h, w), np.float32)}
    unit = _PER_PIXEL
    flip_both = RandomAffine(degrees=0, scale=(1, 1), shear=0, flip_prob=1.0)
    out = flip_both(sample, _rng())
    assert np.all(out["alpha"][:2] == 0) and np.all(out["alpha"][:, :2] == 0)
    inner = out["fg"][2:, 2:]
    rows, cols = np.mgrid[2:h, 2:w]
    np.testing.assert_allclose(inner[:, :, 0], (h + 1 - rows) * unit + 1, atol=1e-3)
    np.testing.assert_allclose(inner[:, :, 1], (w + 1 - cols) * unit + 1, atol=1e-3)


def test_affine_moves_an_existing_trimap_with_nearest_neighbour():
    sample = GenerateTrimap()(_sample(), _rng())
    out = RandomAffine()(sample, _rng(2))
    assert out["trimap"].shape == out["alpha"].shape == (60, 80)
    assert set(np.unique(out["trimap"])) <= {0, 128, 255}


# ---- trimap --------------------------------------------------------------------------------

def _soft_disc(size):
    """A disc of radius size / 4 with an edge blurred in proportion to the size."""
    alpha = np.zeros((size, size), np.float32)
    cv2.circle(alpha, (size // 2, size // 2), size // 4, 1.0, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(alpha, (0, 0), size / 400)


@pytest.mark.parametrize("seed", range(4))
def test_trimap_band_scales_with_the_image_not_the_kernel(seed):
    """A disc in 400 px and the same disc twice as large in 800 px look alike at 640 x 640:
    the band of the larger one is twice as wide for the same kernels."""
    trimap = GenerateTrimap(kernel_sizes=(15, 15))
    bands = []
    for size in (400, 800):
        out = trimap({"alpha": _soft_disc(size)}, _rng(seed))
        assert out["trimap"].shape == (size, size)
        bands.append(np.sum(out["trimap"] == 128) / (2 * np.pi * size / 4))  # area / perimeter
    assert bands[1] / bands[0] == pytest.approx(2.0, rel=0.12)


@pytest.mark.parametrize("kernel,band", [(1, 0), (9, 8), (29, 28)])
def test_trimap_erodes_with_the_drawn_elliptical_kernels(kernel, band):
    alpha = np.zeros((640, 640), np.float32)
    alpha[:, :320] = 1.0
    out = GenerateTrimap(kernel_sizes=(kernel, kernel))({"alpha": alpha}, _rng())["trimap"]
    assert np.sum(out[300] == 128) == band
    assert np.all(out[:, 0] == 255) and np.all(out[:, -1] == 0)


def test_trimap_kernel_sizes_are_drawn_from_1_to_29():
    alpha = np.zeros((64, 64), np.float32)
    alpha[:, :32] = 1.0
    trimap, rng = GenerateTrimap(work_size=(64, 64)), _rng()  # the default kernel sizes
    widths = [np.sum(trimap({"alpha": alpha}, rng)["trimap"][30] == 128) for _ in range(300)]
    assert min(widths) >= 0 and max(widths) <= 28
    assert np.mean(widths) == pytest.approx(14, abs=1.0)  # 2 x mean of (k - 1) / 2
    with pytest.raises(ValueError, match="kernel_sizes"):
        GenerateTrimap(kernel_sizes=(0, 3))


def test_trimap_thresholds_definite_alpha_at_1e_5():
    alpha = np.full((640, 640), 0.5, np.float32)
    alpha[:, :200] = 1 - 5e-6
    alpha[:, 440:] = 5e-6
    out = GenerateTrimap(kernel_sizes=(1, 1))({"alpha": alpha}, _rng())["trimap"]
    assert np.all(out[:, :200] == 255) and np.all(out[:, 440:] == 0)
    assert np.all(out[:, 200:440] == 128)


# ---- background, crop ----------------------------------------------------------------------

def test_background_is_resized_whole_to_the_foreground():
    sample = FitBackground()(_sample(), _rng())
    assert sample["bg"].shape == (60, 80, 3)


def _crop_input(h, w, unknown):
    trimap = np.zeros((h, w), np.uint8)
    trimap[unknown] = 128
    return {"fg": _coordinates(h, w), "alpha": np.zeros((h, w), np.float32),
            "bg": np.zeros((h, w, 3), np.float32), "trimap": trimap}


def test_crop_is_centred_on_an_unknown_pixel():
    cases = [(512, (1000, 1200), (600, 300)), (128, (400, 480), (200, 150))]
    for size, (h, w), (top, left) in cases:
        crop, rng = CropAroundUnknown(size), _rng()
        for _ in range(10):
            out = crop(_crop_input(h, w, np.s_[top:top + 20, left:left + 20]), rng)
            assert out["fg"].shape == (size, size, 3) and out["trimap"].shape == (size, size)
            row, col = out["fg"][size // 2, size // 2, :2] / _PER_PIXEL
            assert top - 4 <= row < top + 20 and left - 4 <= col < left + 20


def test_crop_is_random_with_fewer_than_10_candidates_and_resizes_without_unknown():
    crop, rng = CropAroundUnknown(128), _rng()
    # Unknown only within 64 px of the top border: no candidate, so a uniform crop.
    tops = [crop(_crop_input(400, 360, np.s_[20:50, :]), rng)["fg"][0, 0, 0] / _PER_PIXEL
            for _ in range(60)]
    assert min(tops) < 40 and max(tops) > 230
    whole = crop(_crop_input(400, 360, np.s_[0:0]), rng)
    assert whole["fg"].shape == (128, 128, 3)
    assert whole["fg"][0, 0, 0] / _PER_PIXEL < 2 and whole["fg"][-1, -1, 1] / _PER_PIXEL > 350


def test_small_samples_are_enlarged_by_1_1_crop_over_the_short_side():
    out = CropAroundUnknown(512)(_crop_input(300, 400, np.s_[100:200, 100:300]), _rng())
    assert out["fg"].shape == (512, 512, 3)
    rows = out["fg"][:, :, 0]
    slope = (rows[-1] - rows[0]).mean() / 511 / _PER_PIXEL
    assert slope == pytest.approx(300 / int(300 * 1.1 * 512 / 300), rel=0.02)


def test_crop_needs_a_trimap_and_a_fitted_background():
    with pytest.raises(KeyError, match="GenerateTrimap"):
        CropAroundUnknown(32)(_sample(), _rng())
    with pytest.raises(ValueError, match="FitBackground"):
        CropAroundUnknown(32)(GenerateTrimap()(_sample(), _rng()), _rng())
    with pytest.raises(ValueError, match="FitBackground"):
        Composite()(_sample(), _rng())


# ---- colour jitter and composition ---------------------------------------------------------

def test_folding_back_into_the_unit_interval():
    np.testing.assert_allclose(fold_into_unit(np.array([-0.2, 0.0, 0.5, 1.0, 1.3])),
                               [0.2, 0.0, 0.5, 1.0, 0.7])


def _hsv(fg):
    return cv2.cvtColor(fg / np.float32(255), cv2.COLOR_RGB2HSV)


def test_jitter_hue_is_a_whole_shift_in_minus_40_to_40_and_offsets_bounded():
    fg = np.zeros((4, 4, 3), np.float32)
    fg[:] = (200, 120, 60)  # hue 20 degrees, saturation 0.7, value 0.784
    before = _hsv(fg)[0, 0]
    jitter, rng = ForegroundColorJitter(), _rng()
    shifts, offsets = [], []
    for _ in range(600):
        after = _hsv(jitter({"fg": fg.copy(), "alpha": np.ones((4, 4), np.float32)}, rng)["fg"])
        shifts.append((after[0, 0, 0] - before[0] + 180) % 360 - 180)
        offsets.append(np.abs(after[0, 0, 1:] - before[1:]) / (1.1 - before[1:]))
    shifts = np.array(shifts)
    np.testing.assert_allclose(shifts, np.round(shifts), atol=0.05)
    assert round(shifts.min()) == -40 and round(shifts.max()) == 39
    offsets = np.array(offsets)
    assert offsets.max() <= 0.1 + 1e-3 and offsets.max() > 0.09


def test_jitter_folds_saturation_above_1():
    fg = np.zeros((2, 2, 3), np.float32)
    fg[:] = (255, 0, 0)  # saturation 1: any positive offset folds back below 1
    jitter, rng = ForegroundColorJitter(hue_degrees=1), _rng()
    sats = [_hsv(jitter({"fg": fg.copy(), "alpha": np.ones((2, 2), np.float32)}, rng)["fg"])
            [0, 0, 1] for _ in range(50)]
    assert max(sats) <= 1.0 and min(sats) >= 0.99  # |offset| <= 0.1 x (1.1 - 1)


def test_jitter_leaves_alpha_and_skips_an_invisible_foreground():
    sample = _sample()
    alpha, fg = sample["alpha"].copy(), sample["fg"].copy()
    out = ForegroundColorJitter()(sample, _rng(1))
    assert np.array_equal(out["alpha"], alpha) and np.abs(out["fg"] - fg).mean() > 1.0
    empty = _sample()
    empty["alpha"][:] = -0.01  # Lanczos undershoot: no pixel with alpha > 0
    before = empty["fg"].copy()
    assert np.array_equal(ForegroundColorJitter()(empty, _rng())["fg"], before)


def test_composite_clips_then_blends():
    sample = FitBackground()(_sample(), _rng())
    sample["alpha"][0, :3] = (-0.02, 1.03, 0.5)
    sample["fg"][0, 0] = 300.0
    out = Composite()(sample, _rng())
    a = out["alpha"][..., None]
    assert out["alpha"].min() == 0 and out["alpha"].max() == 1 and out["fg"].max() == 255
    np.testing.assert_allclose(out["image"], out["fg"] * a + out["bg"] * (1 - a), atol=1e-3)


# ---- the whole pipeline --------------------------------------------------------------------

def test_the_pipeline_is_reproducible_from_the_generator_seed():
    steps = release_train_transforms(None, crop_size=32)

    def run(seed):
        sample, rng = _sample(), _rng(seed)
        for step in steps:
            sample = step(sample, rng)
        return sample

    a, b, c = run(7), run(7), run(8)
    for key in ("image", "alpha", "trimap"):
        assert a[key].shape[:2] == (32, 32)
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["image"], c["image"])


def test_release_pixel_sizes_at_512_and_scaled_for_smaller_crops():
    def sizes(crop):
        steps = {type(t): t for t in release_train_transforms(None, crop_size=crop)}
        return (steps[RandomResize].size, steps[GenerateTrimap].work_size,
                steps[RandomAffine].min_rotation_side, steps[CropAroundUnknown].size)

    assert sizes(512) == ((640, 640), (640, 640), 1024, 512)
    assert sizes(128) == ((160, 160), (160, 160), 256, 128)
    with pytest.raises(ValueError, match="size and cell must be positive"):
        release_train_transforms(None, crop_size=0)


def test_the_recipe_config_uses_the_release_pipeline():
    from detectron2.config import LazyConfig, instantiate

    cfg = LazyConfig.load("configs/common/data/comp1k.py")
    cfg = LazyConfig.apply_overrides(cfg, ["dataloader.train.mapper.crop_size=64"])
    configured = instantiate(cfg.dataloader.train.mapper)
    default = MattingTrainMapper(dataset_names="comp1k_train", crop_size=64)
    assert [type(t) for t in configured.transforms] == [type(t) for t in default.transforms]
    for ours, reference in zip(configured.transforms, default.transforms, strict=True):
        assert {k: v for k, v in vars(ours).items() if not k.startswith("_")} == {
            k: v for k, v in vars(reference).items() if not k.startswith("_")}
