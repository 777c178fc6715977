"""The GCA-style training transforms, each on hand-made arrays."""

import numpy as np
import pytest
from data_samples import soft_alpha, unique_name, write_composition_set

from mematte_d2.data import register_matting_dataset
from mematte_d2.data.reading import read_alpha, read_rgb
from mematte_d2.data.transforms import (
    CompositeOnBackground,
    CropAroundUnknown,
    ForegroundColorJitter,
    GenerateTrimap,
    RandomAffine,
    RandomSecondForeground,
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


@pytest.mark.parametrize("seed", range(5))
def test_trimap_unknown_covers_every_fractional_alpha(seed):
    sample = _sample(seed=seed)
    sample["alpha"][5, 5] = 1e-5  # interpolation noise: snapped to 0
    sample["alpha"][6, 6] = 1 - 1e-5
    sample["alpha"][7, 7] = 0.002  # a real fractional value: must be unknown
    out = GenerateTrimap((1, 30))(sample, _rng(seed))
    trimap, alpha = out["trimap"], out["alpha"]
    assert trimap.dtype == np.uint8 and set(np.unique(trimap)) <= {0, 128, 255}
    frac = (alpha > 0) & (alpha < 1)
    assert frac.any() and np.all(trimap[frac] == 128)
    assert trimap[7, 7] == 128 and alpha[5, 5] == 0 and alpha[6, 6] == 1
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)


def test_trimap_band_grows_with_the_kernel():
    thin = GenerateTrimap((1, 1))(_sample(), _rng())["trimap"]
    wide = GenerateTrimap((25, 25))(_sample(), _rng())["trimap"]
    assert (wide == 128).sum() > 2 * (thin == 128).sum()
    assert np.all(wide[thin == 128] == 128)
    with pytest.raises(ValueError, match="kernel_range"):
        GenerateTrimap((0, 3))


def test_affine_flip_only_mirrors_and_general_keeps_shapes():
    sample = _sample()
    alpha = sample["alpha"].copy()
    flipped = RandomAffine(degrees=0, scale=(1, 1), shear=0, flip_prob=1.0)(sample, _rng())
    np.testing.assert_allclose(flipped["alpha"], alpha[:, ::-1], atol=1e-5)

    out = RandomAffine()(_sample(), _rng(3))
    assert out["fg"].shape == (60, 80, 3) and out["alpha"].shape == (60, 80)
    assert 0 <= out["alpha"].min() and out["alpha"].max() <= 1
    assert not np.allclose(out["alpha"], _sample()["alpha"])


def test_crop_contains_an_unknown_pixel_and_resizes_small_inputs():
    sample = _sample(200, 300)
    sample["alpha"][:] = 0
    sample["alpha"][150, 260] = 0.5  # the only unknown pixel
    out = CropAroundUnknown(64)(sample, _rng())
    assert out["alpha"].shape == (64, 64) and out["fg"].shape == (64, 64, 3)
    assert out["alpha"].max() == 0.5

    small = GenerateTrimap()(_sample(30, 45), _rng())
    out = CropAroundUnknown(64)(small, _rng())
    assert out["alpha"].shape == out["trimap"].shape == (64, 64)
    frac = (out["alpha"] > 0) & (out["alpha"] < 1)
    assert np.all(out["trimap"][frac] == 128)


def test_second_foreground_union_and_colour_blend(tmp_path):
    dirs = write_composition_set(tmp_path, n_fg=1, size=(60, 80))
    name = unique_name("second")
    register_matting_dataset(name, **dirs)
    fg2 = read_rgb(f"{dirs['fg_dir']}/obj0.png")
    a2 = read_alpha(f"{dirs['alpha_dir']}/obj0.png")
    sample = _sample()
    a1, fg1 = sample["alpha"].copy(), sample["fg"].copy()
    out = RandomSecondForeground(name, prob=1.0)(sample, _rng())
    np.testing.assert_allclose(out["alpha"], 1 - (1 - a1) * (1 - a2), atol=1e-6)
    np.testing.assert_allclose(out["fg"], fg1 * a1[..., None] + fg2 * (1 - a1[..., None]),
                               atol=1e-3)
    untouched = RandomSecondForeground(name, prob=0.0)(_sample(), _rng())
    np.testing.assert_array_equal(untouched["alpha"], _sample()["alpha"])


def test_colour_jitter_changes_colour_only():
    sample = _sample()
    alpha, fg = sample["alpha"].copy(), sample["fg"].copy()
    out = ForegroundColorJitter()(sample, _rng(1))
    assert np.array_equal(out["alpha"], alpha)
    assert out["fg"].min() >= 0 and out["fg"].max() <= 255
    assert np.abs(out["fg"] - fg).mean() > 1.0
    empty = _sample()
    empty["alpha"][:] = 0
    before = empty["fg"].copy()
    assert np.array_equal(ForegroundColorJitter()(empty, _rng())["fg"], before)


def test_composite_uses_the_resized_background():
    out = CompositeOnBackground()(_sample(), _rng())
    a = out["alpha"][..., None]
    assert out["bg"].shape == out["fg"].shape == out["image"].shape == (60, 80, 3)
    np.testing.assert_allclose(out["image"], out["fg"] * a + out["bg"] * (1 - a), atol=1e-3)


def test_a_pipeline_is_reproducible_from_the_generator_seed():
    steps = [RandomAffine(), CropAroundUnknown(32), GenerateTrimap(), ForegroundColorJitter(),
             CompositeOnBackground()]

    def run(seed):
        sample, rng = _sample(), _rng(seed)
        for step in steps:
            sample = step(sample, rng)
        return sample

    a, b, c = run(7), run(7), run(8)
    for key in ("image", "alpha", "trimap"):
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["image"], c["image"])
