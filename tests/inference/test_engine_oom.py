"""MattingPredictor on an out-of-memory error: free the cache, retry smaller, then a named error."""

import numpy as np
import pytest
import torch
from tiny_models import tiny_cfg

from mematte_d2.inference import MattingPredictor
from mematte_d2.inference.engine import (
    MattingInference,
    PredictionOutOfMemoryError,
    free_cached_memory,
)
from mematte_d2.inference.memory import MemoryBudgetError


def _sample(h=70, w=100):
    rng = np.random.default_rng(0)
    trimap = np.full((h, w), 128, np.uint8)
    trimap[: h // 4] = 0
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), trimap


@pytest.fixture
def predictor():
    torch.manual_seed(0)
    return MattingPredictor(tiny_cfg(), device="cpu", max_memory=None)


def fail_first_calls(monkeypatch, predictor, failures: int) -> list[tuple]:
    """Make the engine's first ``failures`` runs raise torch.OutOfMemoryError; returns the
    (token cap, decoder tile) of every run."""
    engine, run = predictor.engine, predictor.engine._run
    calls = []

    def run_or_oom(batched_inputs, settings, progress):
        calls.append((settings.budget.max_tokens, settings.tile_size))
        if len(calls) <= failures:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return run(batched_inputs, settings, progress)

    monkeypatch.setattr(engine, "_run", run_or_oom)
    return calls


def test_out_of_memory_retries_with_half_the_cap_and_tile(monkeypatch, predictor):
    image, trimap = _sample()  # padded to 96x128: 6 x 8 = 48 tokens
    expected = predictor.predict(image, trimap, max_tokens=24, tile_size=256)
    calls = fail_first_calls(monkeypatch, predictor, failures=1)
    result = predictor.predict(image, trimap)
    assert calls == [(None, 512), (24, 256)]
    assert result.max_tokens == 24
    np.testing.assert_array_equal(result.alpha, expected.alpha)
    assert predictor.engine.tile_size == 512 and predictor.model.backbone.max_tokens is None


def test_out_of_memory_on_every_retry_raises_a_named_error(monkeypatch, predictor):
    image, trimap = _sample()
    calls = fail_first_calls(monkeypatch, predictor, failures=10)
    with pytest.raises(PredictionOutOfMemoryError, match="70x100 image ran out of cpu memory"):
        predictor(image, trimap, max_tokens=10, tile_size=0)
    assert calls == [(10, 0), (5, 512), (2, 256), (1, 128)]
    assert issubclass(PredictionOutOfMemoryError, MemoryBudgetError)  # reported per file
    assert predictor.engine.tile_size == 512 and predictor.model.backbone.max_tokens is None


def test_free_cached_memory_empties_the_cuda_cache_only(monkeypatch):
    emptied = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    free_cached_memory(torch.device("cpu"))
    assert not emptied
    free_cached_memory(torch.device("cuda"))
    assert emptied == [True]


@pytest.mark.integration
def test_predict_cli_reports_the_image_that_ran_out_of_memory_and_goes_on(
    tmp_path, monkeypatch, capsys
):
    import cv2
    from detectron2.config import instantiate
    from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS

    from mematte_d2.cli.predict import main

    torch.manual_seed(0)
    weights = tmp_path / "tiny.pth"
    torch.save({"model": instantiate(tiny_cfg().model).state_dict()}, weights)
    src, tri, out = tmp_path / "in", tmp_path / "tri", tmp_path / "out"
    src.mkdir(), tri.mkdir()
    for name, (h, w) in {"big": (90, 120), "small": (40, 56)}.items():
        image, trimap = _sample(h, w)
        cv2.imwrite(str(src / f"{name}.png"), image)
        cv2.imwrite(str(tri / f"{name}.png"), trimap)
    run = MattingInference._run

    def oom_on_big_images(self, batched_inputs, settings, progress):
        if batched_inputs[0]["image"].shape[-1] > 100:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return run(self, batched_inputs, settings, progress)

    monkeypatch.setattr(MattingInference, "_run", oom_on_big_images)
    status = main([
        "--config-file", MEMATTE_CONFIG, "--weights", str(weights), "--device", "cpu",
        "--input", str(src), "--trimap", str(tri), "--output", str(out), *MEMATTE_OPTS,
    ])
    err = capsys.readouterr().err
    assert status == 1
    assert "big.png" in err and "90x120 image ran out of cpu memory 4 times" in err
    assert sorted(p.name for p in out.iterdir()) == ["small_alpha.png"]
