"""MattingTrainer's DDP wrapping: gradients are all-reduced in the training precision."""

from unittest import mock

import pytest
import torch
import torch.distributed as dist
from detectron2.config import LazyConfig
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from mematte_d2.engine import MattingTrainer, gradient_compression_hook
from mematte_d2.engine import trainer as trainer_module
from mematte_d2.utils.distributed import free_port

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 1)


def test_compression_follows_the_training_precision():
    assert gradient_compression_hook(CUDA, torch.float16) is default_hooks.fp16_compress_hook
    assert gradient_compression_hook(CUDA, torch.bfloat16) is default_hooks.bf16_compress_hook
    assert gradient_compression_hook(CUDA, None) is None  # fp32: no scaler, no fp16
    assert gradient_compression_hook(CPU, torch.bfloat16) is default_hooks.bf16_compress_hook
    assert gradient_compression_hook(CPU, torch.float16) is None  # no GradScaler on the CPU
    assert gradient_compression_hook(CPU, None) is None


@pytest.fixture
def one_rank_gloo_group():
    """A gloo group of this process alone, reported to the trainer as a 2-rank job."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1)
    try:
        with mock.patch.object(trainer_module.comm, "get_world_size", return_value=2):
            yield
    finally:
        dist.destroy_process_group()


def _ddp_cfg(**ddp):
    cfg = LazyConfig.load("configs/common/train.py")
    cfg.train.ddp.update(ddp)
    return cfg


@pytest.mark.parametrize("amp_dtype, hook", [
    (torch.bfloat16, default_hooks.bf16_compress_hook), (None, None)])
def test_gloo_ddp_registers_the_hook_and_large_gradients_stay_finite(one_rank_gloo_group,
                                                                      amp_dtype, hook):
    model = torch.nn.Linear(2, 1, bias=False)
    with mock.patch.object(torch.nn.parallel.DistributedDataParallel, "register_comm_hook",
                           autospec=True,
                           side_effect=torch.nn.parallel.DistributedDataParallel
                           .register_comm_hook) as register:
        wrapped = MattingTrainer._wrap_ddp(_ddp_cfg(), model, amp_dtype)
    assert [c.kwargs["hook"] for c in register.call_args_list] == ([hook] if hook else [])
    wrapped(torch.full((1, 2), 1e5)).sum().backward()  # a gradient fp16 cannot hold (>65504)
    assert torch.isfinite(model.weight.grad).all()
    torch.testing.assert_close(model.weight.grad, torch.full((1, 2), 1e5), rtol=1e-2, atol=0)


def test_the_old_fp16_key_is_refused_by_name():
    with pytest.raises(ValueError, match="train.ddp.fp16_compression .*grad_compression"):
        MattingTrainer._wrap_ddp(_ddp_cfg(fp16_compression=True), torch.nn.Linear(1, 1))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp_dtype", [torch.float16, torch.bfloat16])
def test_nccl_ddp_all_reduces_in_the_amp_dtype(amp_dtype):
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1)
    try:
        with mock.patch.object(trainer_module.comm, "get_world_size", return_value=2):
            model = torch.nn.Linear(2, 1, bias=False).cuda()
            wrapped = MattingTrainer._wrap_ddp(_ddp_cfg(), model, amp_dtype)
        with torch.autocast("cuda", amp_dtype):
            wrapped(torch.full((1, 2), 0.5, device="cuda")).sum().backward()
        assert model.weight.grad.dtype == torch.float32
        torch.testing.assert_close(model.weight.grad.cpu(), torch.full((1, 2), 0.5))
    finally:
        dist.destroy_process_group()
