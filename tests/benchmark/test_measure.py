"""The training benchmark trains as the recipe does: its AMP, the step runner, host batches."""

from unittest import mock

import pytest
import torch
from tiny_models import FAST_MEMATTE_OPTS

from mematte_d2.benchmark import TrainCase, measure


def test_recipe_precision_is_the_trainers():
    recipe = TrainCase(model="mematte_s")
    assert recipe.precision == "recipe"
    # configs/common/train.py: fp16 autocast (with a GradScaler) on CUDA, fp32 on the CPU
    assert measure.train_precision(recipe, torch.device("cuda")) == (torch.float16, None)
    assert measure.train_precision(recipe, torch.device("cpu")) == (None, None)
    bf16 = TrainCase(model="mematte_s", precision="bf16")
    assert measure.train_precision(bf16, torch.device("cpu")) == (torch.bfloat16, None)
    with pytest.raises(ValueError, match="precision='fp16'"):
        measure.train_precision(TrainCase(model="mematte_s", precision="fp16"),
                                torch.device("cpu"))


def test_recipe_clipping_is_applied(tmp_path):
    train_py = tmp_path / "train.py"
    train_py.write_text("train = dict(amp=dict(enabled=True, precision='bfloat16'), "
                        "clip_grad=dict(enabled=True, max_norm=0.5))\n")
    with mock.patch.object(measure, "RECIPE_TRAIN_CONFIG", train_py):
        assert measure.train_precision(TrainCase(model="mematte_s"), torch.device("cpu")) == (
            torch.bfloat16, 0.5)


def test_training_case_runs_the_step_runner_on_host_batches():
    case = TrainCase(model="mematte_s", precision="bf16", crop_size=64, repeats=1, threads=1,
                     opts=FAST_MEMATTE_OPTS)
    built = []
    real = measure.MattingStepRunner

    def spy(model, data, optimizer, **kw):
        built.append((next(iter(data)), kw))
        return real(model, data, optimizer, **kw)

    with mock.patch.object(measure, "MattingStepRunner", side_effect=spy):
        result = measure.run_training(case)
    assert result["amp_dtype"] == "bfloat16" and result["grad_scaler"] is False
    batch, kw = built[0]
    assert kw["amp_dtype"] == torch.bfloat16 and kw["clip_grad_norm"] is None
    assert all(v.device.type == "cpu" for item in batch for v in item.values())
    assert result["step_s"] > 0
