"""MattingEvaluator refuses a non-finite prediction by image id instead of scoring it as 0."""

import numpy as np
import pytest
import torch

from mematte_d2.evaluation import MattingEvaluator


def test_nan_prediction_is_an_error_naming_the_image():
    trimap = torch.full((1, 6, 8), 128.0)
    item = {"image_id": "img_7", "alpha": torch.full((1, 6, 8), 0.5), "trimap": trimap}
    evaluator = MattingEvaluator("unused", distributed=False, region="unknown")
    evaluator.reset()
    evaluator.process([item], [{"alpha": torch.full((1, 6, 8), 0.5)}])  # finite: scored
    pred = torch.full((1, 6, 8), 0.5)
    pred[0, 2, 3], pred[0, 4, 4] = float("nan"), float("inf")
    with pytest.raises(ValueError, match="image img_7: predicted alpha has 2 non-finite"):
        evaluator.process([item], [{"alpha": pred}])
    assert evaluator.evaluate()["matting"]["num_images"] == 1
    assert np.isclose(evaluator.evaluate()["matting"]["SAD"], 0.0)
