"""MattingEvaluator: clamping, PNG quantisation, files, detectron2 integration, 2-process gather."""

import csv
import json
import math

import cv2
import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from detectron2.data import MetadataCatalog
from detectron2.evaluation import inference_on_dataset
from tiny_models import tiny_cfg

from mematte_d2.evaluation import MattingEvaluator, compute_matting_metrics
from mematte_d2.utils.distributed import finish_distributed

U = 128
SUMMARY_KEYS = [
    "SAD", "MSE_x1e3", "Grad", "Conn", "keep_ratio", "time", "peak_memory_mb", "num_images"
]


def make_item(index: int, height: int = 18, width: int = 22) -> dict:
    """A test-mapper-like input: smooth alpha (k / 255 values), trimap 0/128/255, ids."""
    rng = np.random.default_rng(index)
    yy, xx = np.mgrid[0:height, 0:width]
    field = np.sin(xx / (3 + index)) + np.cos(yy / 4) + 0.3 * rng.standard_normal((height, width))
    alpha_u8 = np.round(np.clip(field * 0.6 + 0.5, 0, 1) * 255).astype(np.uint8)
    trimap = np.where(alpha_u8 > 127, 255, 0).astype(np.uint8)
    trimap[(alpha_u8 > 30) & (alpha_u8 < 225)] = U
    alpha_u8[trimap == 0], alpha_u8[trimap == 255] = 0, 255  # known regions are exact
    return {
        "image": torch.zeros(3, height, width),
        "alpha": torch.from_numpy(alpha_u8.astype(np.float32) / 255)[None],
        "trimap": torch.from_numpy(trimap.astype(np.float32))[None],
        "file_name": f"/data/img_{index}.png",
        "image_id": f"img_{index}",
        "height": height,
        "width": width,
    }


def fake_prediction(item: dict) -> torch.Tensor:
    """A deterministic imperfect matte (also wrong in the known regions)."""
    alpha = item["alpha"]
    ramp = torch.linspace(0, 1, alpha.shape[-1]).expand_as(alpha)
    return (0.7 * alpha + 0.3 * ramp).clamp(0, 1)


class FakeMattingModel(torch.nn.Module):
    """Stands in for MEMatte in eval mode: alpha, keep ratio and time per image."""

    def forward(self, batched_inputs):
        out = []
        for item in batched_inputs:
            index = int(item["image_id"].split("_")[1])
            out.append({
                "alpha": fake_prediction(item),
                "keep_ratio": torch.tensor([0.25, 0.5 + 0.1 * index]),
                "inference_time": 0.01 * (index + 1),
            })
        return out


def expected_arrays(item: dict, pred: torch.Tensor):
    """Clamp in known regions and quantise as the predictor saves a float32 matte as PNG."""
    trimap = item["trimap"][0].numpy().astype(np.uint8)
    p = pred[0].numpy().copy()
    p[trimap == 0], p[trimap == 255] = 0.0, 1.0
    pred_png = np.round(p * np.float32(255)).astype(np.uint8)
    gt_png = np.round(item["alpha"][0].numpy() * 255).astype(np.uint8)
    return pred_png, gt_png, trimap


@pytest.fixture
def dataset_name():
    name = "eval_test_fake_unknown"
    MetadataCatalog.get(name).set(evaluator_type="matting", eval_region="unknown")
    return name


def test_process_and_evaluate_writes_files_and_returns_means(tmp_path, dataset_name):
    items = [make_item(i) for i in range(3)]
    model = FakeMattingModel()
    evaluator = MattingEvaluator(dataset_name, output_dir=str(tmp_path), save_predictions=True)
    evaluator.reset()
    evaluator.process(items[:2], model(items[:2]))
    evaluator.process(items[2:], model(items[2:]))
    result = evaluator.evaluate()

    assert list(result) == ["matting"]
    summary = result["matting"]
    assert list(summary) == SUMMARY_KEYS
    per_image = []
    for item in items:
        pred_png, gt_png, trimap = expected_arrays(item, fake_prediction(item))
        saved = cv2.imread(str(tmp_path / "predictions" / f"{item['image_id']}.png"), -1)
        np.testing.assert_array_equal(saved, pred_png)
        per_image.append(compute_matting_metrics(pred_png, gt_png, trimap))
    for key in ("SAD", "Grad", "Conn"):
        assert summary[key] == pytest.approx(np.mean([m[key] for m in per_image]), rel=1e-12)
        assert summary[key] > 0
    assert summary["MSE_x1e3"] == pytest.approx(1e3 * np.mean([m["MSE"] for m in per_image]))
    assert summary["keep_ratio"] == pytest.approx(np.mean([0.375, 0.425, 0.475]))
    assert summary["time"] == pytest.approx(0.02)
    assert summary["peak_memory_mb"] > 10  # this process's RSS: at least the interpreter
    assert summary["num_images"] == 3

    with open(tmp_path / "matting_per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["image_id"] for r in rows] == ["img_0", "img_1", "img_2"]
    assert float(rows[1]["SAD"]) == pytest.approx(per_image[1]["SAD"], rel=1e-12)
    assert float(rows[1]["MSE_x1e3"]) == pytest.approx(per_image[1]["MSE"] * 1e3, rel=1e-12)
    assert rows[0]["file_name"] == "/data/img_0.png" and rows[0]["height"] == "18"
    with open(tmp_path / "matting_metrics.json") as f:
        saved = json.load(f)
    assert saved["dataset"] == dataset_name and saved["region"] == "unknown"
    assert saved["metrics"] == pytest.approx(dict(summary))


def test_known_regions_are_clamped_before_scoring(dataset_name):
    item = make_item(4)
    trimap = item["trimap"][0]
    pred = item["alpha"].clone()
    pred[0][trimap == 0] = 0.6  # wrong everywhere the trimap says background
    pred[0][trimap == 255] = 0.1  # and foreground
    evaluator = MattingEvaluator(dataset_name, distributed=False, region="whole")
    evaluator.reset()
    evaluator.process([item], [{"alpha": pred}])
    summary = evaluator.evaluate()["matting"]
    assert summary["SAD"] == summary["Grad"] == summary["Conn"] == summary["MSE_x1e3"] == 0.0


def test_quantisation_rounds_like_a_saved_png(dataset_name):
    item = make_item(5)
    below = (item["alpha"] + 0.45 / 255).clamp(0, 1)  # rounds back to the ground truth
    above = (item["alpha"] + 0.55 / 255).clamp(0, 1)  # one code up wherever alpha < 1
    results = []
    for pred in (below, above):
        evaluator = MattingEvaluator(dataset_name, distributed=False)
        evaluator.reset()
        evaluator.process([item], [{"alpha": pred}])
        results.append(evaluator.evaluate()["matting"])
    assert results[0]["SAD"] == 0.0
    unknown = item["trimap"][0].numpy() == U
    gt_png = np.round(item["alpha"][0].numpy() * 255)
    shifted = int(np.count_nonzero(unknown & (gt_png < 255)))
    assert results[1]["SAD"] == pytest.approx(shifted / 255 / 1000, rel=1e-12)


def test_region_comes_from_metadata_and_missing_values_are_nan():
    name = "eval_test_fake_metadata_whole"
    MetadataCatalog.get(name).set(evaluator_type="matting", eval_region="whole")
    item = make_item(6)
    item["trimap"] = torch.full_like(item["trimap"], 255)  # no unknown pixel at all
    item["trimap"][0, 0, 0] = 0
    evaluator = MattingEvaluator(name, distributed=False)
    evaluator.reset()
    evaluator.process([item], [{"alpha": fake_prediction(item)}])
    summary = evaluator.evaluate()["matting"]
    assert summary["SAD"] > 0  # "whole" region: known pixels count (all clamped to 1 here)
    assert math.isnan(summary["keep_ratio"]) and math.isnan(summary["time"])


def test_a_dense_model_keeps_every_token(tmp_path, dataset_name):
    """ViTMatte has no routers: every token attends globally, keep ratio 1.0 (not NaN/empty)."""
    model = instantiate(tiny_cfg("vitmatte", ["model.tile_size=0"]).model).eval()
    items = [make_item(i, height=32, width=32) for i in range(2)]
    evaluator = MattingEvaluator(dataset_name, output_dir=str(tmp_path), distributed=False)
    evaluator.reset()
    with torch.no_grad():
        evaluator.process(items, model(items))
    assert evaluator.evaluate()["matting"]["keep_ratio"] == 1.0
    with open(tmp_path / "matting_per_image.csv") as f:
        assert [float(r["keep_ratio"]) for r in csv.DictReader(f)] == [1.0, 1.0]


def test_duplicates_are_dropped_and_bad_inputs_are_named(dataset_name):
    item = make_item(7)
    evaluator = MattingEvaluator(dataset_name, distributed=False)
    evaluator.reset()
    evaluator.process([item, item], [{"alpha": item["alpha"]}] * 2)
    assert evaluator.evaluate()["matting"]["num_images"] == 1

    evaluator.reset()
    assert evaluator.evaluate() == {}
    with pytest.raises(ValueError, match="img_7: predicted alpha"):
        evaluator.process([item], [{"alpha": item["alpha"][:, :-1]}])
    no_gt = {k: v for k, v in item.items() if k != "alpha"}
    with pytest.raises(KeyError, match="img_7 has no 'alpha'"):
        evaluator.process([no_gt], [{"alpha": item["alpha"]}])
    with pytest.raises(ValueError, match=r"img_7: ground-truth alpha must be in \[0, 1\]"):
        evaluator.process([{**item, "alpha": item["alpha"] * 255}], [{"alpha": item["alpha"]}])
    with pytest.raises(ValueError, match="region"):
        MattingEvaluator(dataset_name, region="trimap")


def test_inference_on_dataset_and_eval_hook(dataset_name, tmp_path):
    from detectron2.engine.hooks import EvalHook
    from detectron2.utils.events import EventStorage

    loader = [[make_item(i)] for i in range(4)]
    evaluator = MattingEvaluator(dataset_name, output_dir=str(tmp_path))
    model = FakeMattingModel()
    direct = inference_on_dataset(model, loader, evaluator)["matting"]
    assert direct["num_images"] == 4

    class Trainer:
        pass

    hook = EvalHook(1, lambda: inference_on_dataset(model, loader, evaluator))
    hook.trainer = Trainer()
    with EventStorage(0) as storage:
        hook.trainer.storage = storage
        hook._do_eval()
        logged = {k: v[0] for k, v in storage.latest().items()}
    assert logged["matting/SAD"] == pytest.approx(direct["SAD"])
    assert logged["matting/MSE_x1e3"] == pytest.approx(direct["MSE_x1e3"])


# ---------------------------------------------------------------- 2-process evaluation
NUM_DIST_IMAGES = 5


def _run_sharded(output_dir: str, result_file: str | None) -> dict:
    from detectron2.data.samplers import InferenceSampler
    from detectron2.utils import comm

    torch.set_num_threads(1)
    name = "eval_test_fake_dist"
    MetadataCatalog.get(name).set(evaluator_type="matting", eval_region="unknown")
    loader = [[make_item(i)] for i in InferenceSampler(NUM_DIST_IMAGES)]
    evaluator = MattingEvaluator(name, output_dir=output_dir)
    result = inference_on_dataset(FakeMattingModel(), loader, evaluator)
    if result_file and comm.is_main_process():
        with open(result_file, "w") as f:
            json.dump({"result": result, "world_size": comm.get_world_size()}, f)
    finish_distributed()
    return result


@pytest.mark.integration
def test_two_process_evaluation_matches_single_process(tmp_path):
    from mematte_d2.utils.distributed import launch

    single = _run_sharded(str(tmp_path / "single"), None)["matting"]
    result_file = tmp_path / "dist.json"
    launch(_run_sharded, 2, device_type="cpu", args=(str(tmp_path / "dist"), str(result_file)))
    with open(result_file) as f:
        saved = json.load(f)
    assert saved["world_size"] == 2
    dist = saved["result"]["matting"]
    assert dist["num_images"] == single["num_images"] == NUM_DIST_IMAGES
    for key in ("SAD", "MSE_x1e3", "Grad", "Conn", "keep_ratio", "time"):
        assert dist[key] == single[key], key
    with open(tmp_path / "dist" / "matting_per_image.csv") as f:
        ids = [row["image_id"] for row in csv.DictReader(f)]
    assert ids == [f"img_{i}" for i in range(NUM_DIST_IMAGES)]


def test_peak_memory_reset_touches_only_the_gpu_the_model_ran_on(monkeypatch):
    from mematte_d2.evaluation.peak_memory import PeakMemoryMeter

    reset = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 2)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", reset.append)
    meter = PeakMemoryMeter()
    meter.reset()
    assert reset == [torch.device("cuda", 2)]
    # once the model's outputs named their GPU (cuda:1, whatever the current device), that one
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: 7)
    assert meter.peak_bytes(torch.device("cuda", 1)) == 7
    meter.reset()
    assert reset[1:] == [torch.device("cuda", 1)]
