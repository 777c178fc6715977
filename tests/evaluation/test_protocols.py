"""The "release" evaluation protocol reproduces the authors' inference.py PNGs and metrics.

tests/fixtures/release_eval holds a tiny MEMatte (width 32, 6 blocks) with seeded random weights
built from the authors' release code, four test images and the PNGs that the release's
inference.py wrote for them (see its README.md).
"""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog
from PIL import Image

from mematte_d2.cli.train import evaluate
from mematte_d2.config import apply_overrides, load_config
from mematte_d2.data import MattingTestMapper, register_matting_dataset
from mematte_d2.data.release_protocol import read_release_trimap, release_padded_size
from mematte_d2.evaluation import MattingEvaluator, compute_matting_metrics
from mematte_d2.evaluation.protocols import release_prediction_png
from mematte_d2.utils.image_io import read_image

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "release_eval"
DATASET = "release_eval_fixture"
PAPER_RECIPES = [
    "configs/Composition-1K/mematte_s_topk0.25.py",
    "configs/Composition-1K/mematte_b_topk0.25.py",
    "configs/Composition-1K/vitmatte_s.py",
    "configs/Distinctions-646/mematte_s_topk0.25.py",
    "configs/AIM-500/mematte_s_topk0.25_eval.py",
    "configs/UHR-395/mematte_s_topk0.25.py",
]
TINY_MODEL = [
    "model.backbone.embed_dim=32", "model.backbone.num_heads=2", "model.backbone.depth=6",
    "model.backbone.window_size=4", "model.backbone.window_block_indexes=[0,1,3,4]",
    "model.backbone.residual_block_indexes=[2,5]", "model.teacher_backbone=None",
    "model.decoder.in_chans=32", "model.decoder.fusion_out=[32,16,16,16]",
]


def _register_fixture() -> None:
    register_matting_dataset(DATASET, image_dir=str(FIXTURE / "merged"),
                             alpha_dir=str(FIXTURE / "alpha"),
                             trimap_dir=str(FIXTURE / "trimaps"))


def _tiny_eval_config(output_dir: Path, protocol: str | None = None):
    opts = TINY_MODEL + [
        f"dataloader.test.dataset={DATASET}", f"dataloader.evaluator.dataset_name={DATASET}",
        "dataloader.test.num_workers=0", "dataloader.evaluator.save_predictions=True",
        f"train.output_dir={output_dir}", f"train.init_checkpoint={FIXTURE / 'tiny_release.pth'}",
        "train.device=cpu",
    ]
    if protocol is not None:
        opts.append(f"dataloader.test.mapper.protocol={protocol}")
    return load_config("configs/Composition-1K/mematte_s_topk0.25.py", opts)


def _compare_with_release(predictions: Path) -> tuple[int, int, int]:
    """(pixels differing, pixels in all, largest difference) of our PNGs against the release's."""
    differing = total = largest = 0
    for ref_file in sorted((FIXTURE / "release_pred").glob("*.png")):
        ref = np.asarray(Image.open(ref_file)).astype(int)
        ours = np.asarray(Image.open(predictions / ref_file.name)).astype(int)
        assert ours.shape == ref.shape, ref_file.name
        diff = np.abs(ours - ref)
        differing, total = differing + int((diff > 0).sum()), total + diff.size
        largest = max(largest, int(diff.max()))
    return differing, total, largest


@pytest.fixture(scope="module")
def release_eval_run(tmp_path_factory):
    _register_fixture()
    out = tmp_path_factory.mktemp("release_eval")
    results = evaluate(_tiny_eval_config(out))
    return out / "inference" / DATASET, results[DATASET]


@pytest.mark.integration
def test_eval_only_writes_the_release_pngs(release_eval_run):
    out, _ = release_eval_run
    differing, total, largest = _compare_with_release(out / "predictions")
    assert total == 97 * 141 + 96 * 150 + 160 * 128 + 70 * 530
    assert differing <= 0.0005 * total
    assert largest <= 1


@pytest.mark.integration
def test_eval_only_metrics_are_those_of_the_saved_pngs(release_eval_run):
    out, results = release_eval_run
    with open(out / "matting_per_image.csv") as f:
        rows = {row["image_id"]: row for row in csv.DictReader(f)}
    assert len(rows) == 4
    sads = []
    for image_id, row in rows.items():
        pred = read_image(out / "predictions" / f"{image_id}.png")[:, :, 0]
        gt = read_image(FIXTURE / "alpha" / f"{image_id}.png")[:, :, 0]
        trimap = read_image(FIXTURE / "trimaps" / f"{image_id}.png")[:, :, 0]
        expected = compute_matting_metrics(pred, gt, trimap)
        for name in ("SAD", "Grad", "Conn"):
            assert float(row[name]) == pytest.approx(expected[name], rel=1e-6), name
        assert float(row["MSE_x1e3"]) == pytest.approx(expected["MSE"] * 1e3, rel=1e-6)
        sads.append(expected["SAD"])
    assert results["matting"]["SAD"] == pytest.approx(np.mean(sads), rel=1e-6)


@pytest.mark.integration
def test_skipped_tiles_keep_the_release_pngs(tmp_path):
    """64-pixel decoder tiles: 10 of the fixture's 36 tiles hold only codes 0 / 255 and are not
    decoded; the saved PNGs are those of decoding every tile. (At the recipe's 512-pixel tiles
    every fixture image is one tile with unknown pixels: ``release_eval_run`` decodes it.)"""
    _register_fixture()
    pngs = {}
    for skip in (True, False):
        cfg = apply_overrides(_tiny_eval_config(tmp_path / str(skip)),
                              ["model.tile_size=64", f"model.skip_known_tiles={skip}"])
        evaluate(cfg)
        folder = tmp_path / str(skip) / "inference" / DATASET / "predictions"
        pngs[skip] = {f.name: np.asarray(Image.open(f)) for f in sorted(folder.glob("*.png"))}
    assert len(pngs[True]) == 4 and pngs[True].keys() == pngs[False].keys()
    for name, png in pngs[True].items():
        np.testing.assert_array_equal(png, pngs[False][name], err_msg=name)


def test_native_protocol_does_not_give_the_release_pngs(tmp_path):
    """The fixture is sensitive to the protocol: the native one misses the tolerance."""
    _register_fixture()
    evaluate(_tiny_eval_config(tmp_path, protocol="native"))
    differing, total, largest = _compare_with_release(tmp_path / "inference" / DATASET
                                                      / "predictions")
    assert differing > 0.0005 * total and largest > 1


@pytest.mark.parametrize("recipe", PAPER_RECIPES)
def test_paper_recipes_evaluate_with_the_release_protocol(recipe):
    cfg = LazyConfig.load(recipe)
    assert cfg.dataloader.test.mapper.protocol == "release"


def test_uhr_recipe_caps_routed_tokens_as_the_release():
    cfg = LazyConfig.load("configs/UHR-395/mematte_s_topk0.25.py")
    assert cfg.model.backbone.max_tokens == 18500


@pytest.mark.parametrize(("size", "padded"), [
    ((97, 141), (128, 160)), ((96, 150), (128, 160)), ((150, 96), (160, 128)),
    ((160, 128), (160, 128)), ((32, 32), (32, 32)),
])
def test_release_padding_grows_every_side_when_one_is_unaligned(size, padded):
    assert release_padded_size(*size) == padded


def test_release_mapper_feeds_unknown_as_128_over_255():
    _register_fixture()
    record = next(d for d in DatasetCatalog.get(DATASET) if d["image_id"] == "b_96x150")
    sample = MattingTestMapper(protocol="release")(record)
    codes = sample["trimap"][0]
    channel = sample["trimap_channel"][0]
    assert set(torch.unique(codes).tolist()) == {0.0, 128.0, 255.0}
    assert torch.equal(channel[codes == 128], torch.full_like(channel[codes == 128], 128 / 255))
    assert sample["padded_size"] == (128, 160)
    assert sample["protocol"] == "release"


def test_release_png_truncates_and_overwrites_exact_codes():
    pred = torch.tensor([[0.999, 0.5, 0.3, 0.9, 0.1]])
    codes = torch.tensor([[128.0, 128.0, 0.0, 255.0, 127.0]])
    png = release_prediction_png(pred, codes)
    assert png.dtype == np.uint8
    assert png.tolist() == [[254, 127, 0, 255, 25]]


def test_evaluator_rejects_an_unknown_protocol():
    evaluator = MattingEvaluator("x", distributed=False, region="unknown")
    evaluator.reset()
    item = {"alpha": torch.zeros(1, 4, 4), "trimap": torch.full((1, 4, 4), 128.0),
            "image_id": "img", "protocol": "paper"}
    with pytest.raises(ValueError, match="unknown evaluation protocol 'paper'"):
        evaluator.process([item], [{"alpha": torch.zeros(1, 4, 4)}])


def test_mapper_rejects_an_unknown_protocol():
    with pytest.raises(ValueError, match="protocol must be one of"):
        MattingTestMapper(protocol="paper")


def _tiny_model():
    cfg = load_config("configs/Composition-1K/mematte_s_topk0.25.py", TINY_MODEL)
    return instantiate(cfg.model).eval()


def test_model_pads_to_the_given_size_and_feeds_the_trimap_channel_verbatim():
    model = _tiny_model()
    trimap = torch.full((1, 40, 40), 128.0)
    item = {"image": torch.zeros(3, 40, 40), "trimap": trimap, "padded_size": (64, 96),
            "trimap_channel": trimap / 255}
    inputs, trimaps = model.preprocess([item])
    assert inputs.shape == (1, 4, 64, 96)
    assert torch.all(trimaps[0, 0, :40, :40] == torch.tensor(128 / 255))
    assert torch.all(trimaps[0, 0, 40:] == 0) and torch.all(trimaps[0, 0, :, 40:] == 0)
    native, _ = model.preprocess([{"image": item["image"], "trimap": trimap}])
    assert native.shape == (1, 4, 64, 64) and torch.all(native[0, 3, :40, :40] == 0.5)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("padded_size", (32, 64), "padded_size"),
    ("padded_size", (48, 64), "padded_size"),
    ("trimap_channel", torch.zeros(1, 40, 39), "trimap_channel"),
])
def test_model_rejects_bad_protocol_inputs(key, value, message):
    item = {"image": torch.zeros(3, 40, 40), "trimap": torch.zeros(1, 40, 40), key: value}
    with pytest.raises(ValueError, match=message):
        _tiny_model()([item])


def test_release_trimap_reader_rejects_16_bit_files(tmp_path):
    path = tmp_path / "tri16.png"
    Image.fromarray(np.full((4, 4), 32768, np.uint16)).save(path)
    with pytest.raises(ValueError, match="tri16.png: trimap mode"):
        read_release_trimap(path)
