"""Per-image time comes from the evaluation's wrapper, not from the model."""

from types import SimpleNamespace

import torch
from detectron2.config import instantiate
from tiny_models import tiny_cfg

from mematte_d2.evaluation import TimedModel, timing


def _inputs(n: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    return [{"image": torch.rand(3, 40, 48, generator=g) * 255,
             "trimap": torch.full((1, 40, 48), 128.0)} for _ in range(n)]


def test_model_does_not_time_itself_and_the_wrapper_adds_seconds_per_image(monkeypatch):
    model = instantiate(tiny_cfg().model).eval()
    clock = iter([10.0, 16.0])  # the call starts at 10 s and ends at 16 s
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    with torch.no_grad():
        plain = model(_inputs(3))
        timed = TimedModel(model)(_inputs(3))
    assert all("inference_time" not in out for out in plain)
    assert [out["inference_time"] for out in timed] == [2.0, 2.0, 2.0]  # 6 s / 3 images
    for p, t in zip(plain, timed, strict=True):
        torch.testing.assert_close(t["alpha"], p["alpha"], rtol=0, atol=0)
