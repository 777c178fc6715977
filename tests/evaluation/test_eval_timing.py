"""Per-image time comes from the evaluation's wrapper, not from the model."""

import torch
from detectron2.config import instantiate
from tiny_models import tiny_cfg

from mematte_d2.evaluation import TimedModel


def _inputs(n: int) -> list[dict]:
    return [{"image": torch.rand(3, 40, 48) * 255, "trimap": torch.full((1, 40, 48), 128.0)}
            for _ in range(n)]


def test_model_does_not_time_itself_and_the_wrapper_adds_seconds_per_image():
    model = instantiate(tiny_cfg().model).eval()
    with torch.no_grad():
        plain = model(_inputs(2))
        timed = TimedModel(model)(_inputs(2))
    assert all("inference_time" not in out for out in plain)
    assert len(timed) == 2
    assert all(out["inference_time"] > 0 for out in timed)
    assert timed[0]["inference_time"] == timed[1]["inference_time"]  # one call, shared
    torch.testing.assert_close(timed[0]["alpha"].shape, plain[0]["alpha"].shape)
