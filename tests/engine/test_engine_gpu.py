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
    """Loss = mean square of a conv + BN output on a fixed input; records the output's dtype
    and the gradient that reaches it."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
        self.input = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        self.seen = {}

    def forward(self, batch):
        out = self.net(self.input.to(self.net[0].weight.device))
        self.seen["dtype"], self.seen["out"] = out.dtype, out.detach().float()
        if out.requires_grad:
            out.register_hook(lambda g: self.seen.__setitem__("grad", g.detach().float()))
        return {"loss": out.float().square().mean()}


def test_fp16_amp_steps_scale_gradients():
    model = _ConvNet().cuda()
    lr = 0.1
    runner = MattingStepRunner(model, itertools.repeat([{}]),
                               torch.optim.SGD(model.parameters(), lr=lr), seed=0,
                               device=torch.device("cuda"), amp_dtype=torch.float16)
    assert runner.grad_scaler is not None
    scale = runner.grad_scaler.get_scale()
    # the unscaled gradient of the same fp16 forward, for the step SGD must take
    with torch.autocast("cuda", dtype=torch.float16):
        loss = model({})["loss"]
    true_grads = torch.autograd.grad(loss, list(model.parameters()))
    before = [p.detach().clone() for p in model.parameters()]
    with EventStorage(0) as storage:
        runner.iter = storage.iter = 0
        runner.run_step()
    assert model.seen["dtype"] == torch.float16  # the forward ran under fp16 autocast
    # the backward carried the loss scaled by the GradScaler's factor (2**16 to start)
    out = model.seen["out"]
    torch.testing.assert_close(model.seen["grad"], scale * 2 * out / out.numel(),
                               rtol=1e-2, atol=1e-2)
    # ... and the optimizer stepped on the unscaled gradient
    for p, b, g in zip(model.parameters(), before, true_grads, strict=True):
        torch.testing.assert_close(p.detach() - b, -lr * g, rtol=2e-2, atol=1e-5)


def _nccl_worker() -> None:
    rank = dist.get_rank()
    assert dist.get_backend() == "nccl"
    assert ranks_where(rank == 1) == [1]
    net = _ConvNet().cuda()
    net.net[1].running_mean.fill_(rank)
    broadcast_buffers_from_rank0(net)
    assert net.net[1].running_mean.abs().sum().item() == 0


@pytest.mark.integration
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpu_collectives_of_the_engine():
    launch(_nccl_worker, 2, device_type="cuda")


@pytest.mark.integration
def test_cuda_training_pins_batches_and_trains_in_fp16(tiny_datasets_root, tmp_path):
    from detectron2.config import LazyConfig
    from tiny_models import QUICK, tiny_in_process_opts

    from mematte_d2.config import apply_overrides
    from mematte_d2.engine import MattingTrainer

    cfg = apply_overrides(LazyConfig.load(QUICK), tiny_in_process_opts(tmp_path) + [
        "train.device=cuda", "train.max_iter=3", "train.eval_period=0"])
    trainer = MattingTrainer(cfg)
    batch = next(iter(trainer.data_loader))
    assert all(item["image"].is_pinned() and item["alpha"].is_pinned() for item in batch)
    # the dtypes of the convolutions' outputs within the training steps (not in evaluation)
    runner, dtypes, stepping = trainer._trainer, set(), []

    def record(module, inputs, output) -> None:
        if stepping:
            dtypes.add(output.dtype)

    for conv in (m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d)):
        conv.register_forward_hook(record)
    run_step = runner.run_step
    runner.run_step = lambda: (stepping.append(1), run_step(), stepping.clear())
    scales = []
    update = runner.grad_scaler.update
    runner.grad_scaler.update = lambda: (scales.append(runner.grad_scaler.get_scale()), update())
    trainer.train()
    assert dtypes == {torch.float16}  # every conv of the training steps ran in fp16
    assert len(scales) == 3 and all(s >= 2.0**10 for s in scales)  # each step was scaled
    assert (tmp_path / "model_final.pth").is_file()
