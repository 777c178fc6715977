"""DDP as the trainer wraps it: 2 processes with 1 image each take the step of 1 process with
both images (the same global batch), not only steps equal across ranks."""

import itertools
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from detectron2.config import LazyConfig, instantiate
from detectron2.utils.events import EventStorage
from tiny_models import tiny_cfg

from mematte_d2 import model_zoo
from mematte_d2.engine import MattingStepRunner, MattingTrainer
from mematte_d2.utils.distributed import launch

pytestmark = pytest.mark.integration

# FixedTopK routes the same tokens in training and inference: no Gumbel noise, whose draws
# differ per rank, so the two runs see the same decisions.
OPTS = ["model.backbone.routing_policy=FixedTopK", "model.teacher_backbone=None"]
STEPS = 2


def _samples() -> list[dict]:
    """Two different images with the same trimap: the region-scaled L1 losses of a batch then
    average the images' own losses, as DDP's gradient mean does."""
    gen = torch.Generator().manual_seed(0)
    trimap = torch.zeros(1, 64, 64)
    trimap[:, 32:] = 255
    trimap[:, 24:40] = 128
    return [{"image": torch.rand(3, 64, 64, generator=gen) * 255, "trimap": trimap,
             "alpha": torch.rand(1, 64, 64, generator=gen)} for _ in range(2)]


def _train_steps(output: str) -> None:
    """STEPS steps of the tiny MEMatte on this rank's share of the two samples."""
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    torch.manual_seed(0)
    model = instantiate(tiny_cfg(extra=OPTS).model).train()
    recipe = LazyConfig.load(model_zoo.get_config_file("common/train.py"))
    assert recipe.train.ddp.forward_sync_buffers  # the recipe's DDP options
    model = MattingTrainer._wrap_ddp(recipe, model)
    batch = _samples()[rank::world]
    runner = MattingStepRunner(model, itertools.repeat(batch),
                               torch.optim.SGD(model.parameters(), lr=0.01), seed=0,
                               device=torch.device("cpu"))
    # BatchNorm in training mode normalises by its batch, which 1 and 2 images make differ (not
    # synced across ranks, as in the release): use the running statistics in both runs (after
    # SimpleTrainer's model.train()).
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    with EventStorage(0) as storage:
        for it in range(STEPS):
            runner.iter = storage.iter = it
            runner.run_step()
    params = getattr(model, "module", model).state_dict()
    torch.save(params, Path(output) / f"world{world}_rank{rank}.pt")


def test_two_processes_of_one_image_step_as_one_process_of_two(tmp_path):
    launch(_train_steps, 1, device_type="cpu", args=(str(tmp_path),))
    launch(_train_steps, 2, device_type="cpu", args=(str(tmp_path),))
    one = torch.load(tmp_path / "world1_rank0.pt")
    two = [torch.load(tmp_path / f"world2_rank{r}.pt") for r in (0, 1)]
    torch.manual_seed(0)
    init = instantiate(tiny_cfg(extra=OPTS).model).state_dict()
    assert one.keys() == two[0].keys() == init.keys()
    assert any(not torch.equal(one[k], init[k]) for k in one)  # the steps changed the weights
    for k in one:
        assert torch.equal(two[0][k], two[1][k]), k
    for k in one:
        torch.testing.assert_close(two[0][k], one[k], rtol=1e-5, atol=1e-6, msg=k)
