"""CUDA-only checks of the training engine (skipped without CUDA; tools/gpu_check.py runs
them): fp16 AMP steps with a GradScaler, and NCCL collectives of the engine on 2 GPUs."""

import itertools

import pytest
import torch
import torch.distributed as dist
from detectron2.utils.events import EventStorage

from mematte_d2.engine import MattingStepRunner
from mematte_d2.utils.distributed import broadcast_buffers_from_rank0, launch, ranks_where

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


class _ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))

    def forward(self, batch):
        x = torch.randn(2, 3, 16, 16, device="cuda")
        return {"loss": self.net(x).square().mean()}


def test_fp16_amp_steps_scale_gradients():
    model = _ConvNet().cuda()
    before = [p.detach().clone() for p in model.parameters()]
    runner = MattingStepRunner(model, itertools.repeat([{}]),
                               torch.optim.SGD(model.parameters(), lr=0.1), seed=0,
                               device=torch.device("cuda"), amp_dtype=torch.float16)
    assert runner.grad_scaler is not None
    with EventStorage(0) as storage:
        for it in range(3):
            runner.iter = storage.iter = it
            runner.run_step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert runner.state_dict()["grad_scaler"]["scale"] > 0


def _nccl_worker() -> None:
    rank = dist.get_rank()
    assert dist.get_backend() == "nccl"
    assert ranks_where(rank == 1) == [1]
    net = _ConvNet().cuda()
    net.net[1].running_mean.fill_(rank)
    broadcast_buffers_from_rank0(net)
    assert net.net[1].running_mean.abs().sum().item() == 0


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpu_collectives_of_the_engine():
    launch(_nccl_worker, 2, device_type="cuda")


def test_cuda_training_pins_batches_and_trains_in_fp16(tiny_datasets_root, tmp_path):
    from detectron2.config import LazyConfig
    from engine_tiny import QUICK, tiny_in_process_opts

    from mematte_d2.config import apply_overrides
    from mematte_d2.engine import MattingTrainer

    cfg = apply_overrides(LazyConfig.load(QUICK), tiny_in_process_opts(tmp_path) + [
        "train.device=cuda", "train.max_iter=3", "train.eval_period=0"])
    trainer = MattingTrainer(cfg)
    assert trainer._trainer.amp_dtype == torch.float16 and trainer._trainer.grad_scaler
    batch = next(iter(trainer.data_loader))
    assert all(item["image"].is_pinned() and item["alpha"].is_pinned() for item in batch)
    trainer.train()
    assert (tmp_path / "model_final.pth").is_file()
