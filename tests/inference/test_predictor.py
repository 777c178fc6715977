"""MattingPredictor: equals the inference engine's tiled evaluation + clamping; input checks;
weights."""

import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from tiny_models import tiny_cfg

from mematte_d2.checkpoint import CheckpointError
from mematte_d2.inference import MattingInference, MattingPredictor
from mematte_d2.utils.trimap import clamp_known_regions


def _sample(h=70, w=100, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[: h // 4] = 0
    trimap[-h // 4 :] = 255
    return image, trimap


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return MattingPredictor(tiny_cfg(), device="cpu", max_memory=None)


def test_equals_engine_tiled_evaluation_plus_clamping(predictor):
    image, trimap = _sample()
    alpha = predictor(image, trimap, tile_size=64)
    inputs = {
        "image": torch.from_numpy(image).permute(2, 0, 1).float(),
        "trimap": torch.from_numpy(trimap)[None].float(),
    }
    raw = MattingInference(predictor.model, tile_size=64)([inputs])[0]["alpha"]
    expected = clamp_known_regions(raw, inputs["trimap"])[0].numpy()
    assert alpha.dtype == np.float32 and alpha.shape == trimap.shape
    np.testing.assert_array_equal(alpha, expected)
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()
    unknown = alpha[trimap == 128]
    assert 0 < unknown.min() and unknown.max() < 1


def test_bgr_input_list_and_token_budget(predictor):
    (img_a, tri_a), (img_b, tri_b) = _sample(), _sample(40, 52, seed=1)
    single = predictor(img_b, tri_b)
    both = predictor([img_a, img_b], [tri_a, tri_b])
    np.testing.assert_allclose(both[1], single, atol=1e-6)
    bgr = MattingPredictor(tiny_cfg(), device="cpu", input_format="BGR", max_memory=None)
    bgr.model.load_state_dict(predictor.model.state_dict())
    np.testing.assert_allclose(bgr(img_b[:, :, ::-1].copy(), tri_b), single, atol=1e-6)
    capped = predictor.predict(img_a, tri_a, max_tokens=3)
    assert capped.routing.shape[0] == 2  # two routed blocks in the tiny config
    assert int(capped.routing.flatten(1).sum(1).max()) <= 3
    assert max(capped.tokens_routed) <= 3 and capped.summary().endswith(", cap 3")
    assert "/48 tokens routed per block" in capped.summary()  # 70x100 -> 6x8 token grid


@pytest.mark.parametrize(
    "image, trimap, message",
    [
        (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8), "image dtype must be uint8"),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), r"HxWx3, got \(8, 8\)"),
        (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8), np.uint8), "4 channel"),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), np.uint8), "trimap size 8x9 differs"),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint16), "trimap dtype must be uint8"),
    ],
)
def test_bad_inputs_name_the_problem(predictor, image, trimap, message):
    with pytest.raises((TypeError, ValueError), match=message):
        predictor(image, trimap)


def test_weights_files(tmp_path):
    junk = tmp_path / "notes.pth"
    junk.write_text("not weights")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        MattingPredictor(tiny_cfg(), str(junk), device="cpu")
    vitmatte = instantiate(tiny_cfg("vitmatte").model)
    torch.save({"model": vitmatte.state_dict()}, tmp_path / "vitmatte.pth")
    with pytest.raises(CheckpointError, match="looks like a ViTMatte checkpoint") as err:
        MattingPredictor(tiny_cfg(), str(tmp_path / "vitmatte.pth"), device="cpu")
    assert "backbone.routers.0." in str(err.value)  # lists the missing keys
    # A full MEMatte checkpoint (with teacher) loads into the teacher-free inference model.
    torch.manual_seed(3)
    full = instantiate(tiny_cfg().model)
    torch.save({"model": full.state_dict()}, tmp_path / "mematte.pth")
    loaded = MattingPredictor(tiny_cfg(), str(tmp_path / "mematte.pth"), device="cpu")
    assert loaded.model.teacher_backbone is None
    assert torch.equal(loaded.model.backbone.routers[0].out_conv[0].weight,
                       full.backbone.routers[0].out_conv[0].weight)


def test_memory_budget_sets_the_cap_or_refuses():
    image, trimap = _sample()
    auto = MattingPredictor(tiny_cfg(), device="cpu")  # default budget: "auto"
    assert auto.predict(image, trimap).max_tokens == 6 * 8  # all tokens of the 96x128 pad
    capped_cfg = tiny_cfg()
    capped_cfg.model.backbone.max_tokens = 5
    capped = MattingPredictor(capped_cfg, device="cpu").predict(image, trimap)
    assert capped.max_tokens == 5 and max(capped.tokens_routed) <= 5  # config cap kept
    small = MattingPredictor(tiny_cfg(), device="cpu", max_memory="10MB")
    with pytest.raises(MemoryError, match="70x100 image needs about"):
        small(image, trimap)
    plain = MattingPredictor(tiny_cfg("vitmatte"), device="cpu", max_memory="10MB")
    with pytest.raises(MemoryError, match="more than the budget of 10 MB"):
        plain(image, trimap)


def test_bf16_precision_runs_in_bf16_close_to_fp32(predictor):
    image, trimap = _sample()
    fp32 = predictor(image, trimap)
    bf16 = MattingPredictor(tiny_cfg(), device="cpu", max_memory=None, precision="bf16")
    bf16.model.load_state_dict(predictor.model.state_dict())
    seen = []
    bf16.model.decoder.register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    alpha = bf16(image, trimap)
    assert seen and seen[0] == torch.bfloat16  # autocast really was on
    assert alpha.dtype == np.float32 and not np.array_equal(alpha, fp32)
    # bf16 keeps 8 mantissa bits: the tiny random model's alphas move by well under 0.05.
    assert np.abs(alpha - fp32).max() < 0.05
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 1).all()


def test_fp16_on_cpu_and_unknown_precision_are_refused():
    with pytest.raises(ValueError, match="bfloat16"):
        MattingPredictor(tiny_cfg(), device="cpu", max_memory=None, precision="fp16")
    with pytest.raises(ValueError, match="precision='int8'"):
        MattingPredictor(tiny_cfg(), device="cpu", max_memory=None, precision="int8")


def test_trimap_scale_follows_the_dtype(predictor):
    image, trimap = _sample()
    codes = predictor(image, trimap)
    # the same trimap as 0-1 floats gives the same alpha
    np.testing.assert_array_equal(predictor(image, trimap.astype(np.float32) / 255.0), codes)
    # a uint8 label map 0/1/2 or an all-ones uint8 trimap is refused, not read as background
    labels = (trimap // 127).astype(np.uint8)  # 0 / 1 / 2
    with pytest.raises(ValueError, match="uint8 with values only in 0-2"):
        predictor(image, labels)
    with pytest.raises(ValueError, match="uint8 with values only in 0-1"):
        predictor(image, np.ones_like(trimap))
    ones = predictor(image, np.ones(trimap.shape, np.float32))
    assert (ones == 1).all()  # float ones: all foreground
    with pytest.raises(ValueError, match="read on the 0-1 scale"):
        predictor(image, trimap.astype(np.float32))


@pytest.mark.parametrize(
    "image, trimap, error, message",
    [
        (torch.zeros(3, 20, 20, dtype=torch.uint8), np.zeros((20, 20), np.uint8), TypeError,
         r"image must be an HxWx3 numpy array or a list of them, got a torch.Tensor of shape "
         r"\(3, 20, 20\) \(give numpy HxWx3 arrays, e.g. tensor.permute\(1, 2, 0\)"),
        ("photo.jpg", "photo_trimap.png", TypeError,
         "image must be .* got the path 'photo.jpg' .*read_image"),
        (None, None, TypeError, "image must be an HxWx3 numpy array or a list of them, got None"),
        ([np.zeros((8, 8, 3), np.uint8)], np.zeros((8, 8), np.uint8), TypeError,
         r"image is a list of 1, so trimap must be a list of as many HxW arrays, got a numpy "
         r"array of shape \(8, 8\)"),
        (np.zeros((8, 8, 3), np.uint8), torch.zeros(8, 8), TypeError,
         "trimap must be a numpy array, got a torch.Tensor of shape"),
    ],
)
def test_api_messages_say_what_was_expected_and_given(predictor, image, trimap, error, message):
    with pytest.raises(error, match=message):
        predictor(image, trimap)


@pytest.mark.parametrize(
    "option, error, message",
    [
        ({"max_tokens": 1.5}, ValueError, "max_tokens must be None or a positive int, got 1.5"),
        ({"max_tokens": 0}, ValueError, "max_tokens must be None or a positive int, got 0"),
        ({"max_tokens": True}, ValueError, "max_tokens must be None or a positive int, got True"),
        ({"keep_ratio": float("nan")}, ValueError, r"keep_ratio must be in \(0, 1\], got nan"),
        ({"keep_ratio": "0.5"}, TypeError, "keep_ratio must be a number"),
        ({"tile_size": -1}, ValueError, "tile_size must be >= 0"),
        ({"tile_size": 64.0}, TypeError, "tile_size must be an int >= 0 or None, got 64.0"),
    ],
)
def test_bad_options_are_refused_with_what_was_given(predictor, option, error, message):
    image, trimap = _sample(20, 20)
    with pytest.raises(error, match=message):
        predictor(image, trimap, **option)
    with pytest.raises(error, match=message):
        predictor([image], [trimap], **option)


def test_non_finite_prediction_is_an_error(predictor):
    from mematte_d2.inference.predictor import NonFinitePredictionError

    diverged = MattingPredictor(tiny_cfg(), device="cpu", max_memory=None)
    diverged.model.load_state_dict(predictor.model.state_dict())
    with torch.no_grad():
        next(diverged.model.decoder.parameters()).fill_(float("nan"))
    image, trimap = _sample()
    with pytest.raises(NonFinitePredictionError, match=r"predicted \d+ non-finite .* alpha"):
        diverged(image, trimap)
