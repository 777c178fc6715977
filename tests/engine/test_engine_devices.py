"""Device and backend choice on a CUDA machine, emulated on any machine with mocked
``torch.cuda`` functions: a CPU run must not need NCCL or one GPU per process."""

from datetime import timedelta
from unittest import mock

import pytest
import torch
import torch.distributed as dist
from detectron2.config import LazyConfig

from mematte_d2.engine import resolve_device
from mematte_d2.utils import distributed
from mematte_d2.utils.distributed import backend_for, free_port, launch


def _cuda_machine(gpus: int):
    """Patches making torch report `gpus` CUDA devices."""
    return mock.patch.multiple(
        torch.cuda, is_available=mock.Mock(return_value=True),
        device_count=mock.Mock(return_value=gpus),
    )


def _train_cfg(device):
    cfg = LazyConfig.load("configs/common/train.py")
    cfg.train.device = device
    return cfg


def test_backend_follows_the_training_device():
    assert backend_for("cpu") == "gloo"
    assert backend_for("cuda") == "nccl"


@pytest.mark.integration
def test_cpu_run_on_a_cuda_machine_starts_a_gloo_group(tmp_path):
    seen = {}

    def main():
        seen["backend"] = dist.get_backend()
        seen["cuda"] = torch.cuda.is_available()

    url = f"tcp://127.0.0.1:{free_port()}"
    with _cuda_machine(gpus=1), mock.patch.object(torch.cuda, "set_device") as set_device:
        # what each spawned process of a CPU job runs (here a job of one rank)
        distributed._worker(0, main, 1, 1, 0, url, "cpu", (), timedelta(seconds=30))
    assert seen == {"backend": "gloo", "cuda": True}
    set_device.assert_not_called()
    assert not dist.is_initialized()


def test_gpu_count_is_checked_for_cuda_runs_only():
    with _cuda_machine(gpus=1):
        with pytest.raises(ValueError, match="--num-gpus 2 but this machine has 1 CUDA device"):
            launch(print, 2, device_type="cuda")
        assert launch(lambda: "ran", 1, device_type="cpu") == "ran"
    with pytest.raises(ValueError, match="--dist-url"):
        launch(print, 1, device_type="cpu", num_machines=2, machine_rank=1, dist_url="auto")


def test_every_rank_on_its_own_gpu():
    with _cuda_machine(gpus=4):
        assert resolve_device(_train_cfg("cpu"), 0, 2) == torch.device("cpu")
        assert resolve_device(_train_cfg(None), 3, 4) == torch.device("cuda", 3)
        assert resolve_device(_train_cfg("cuda"), 1, 2) == torch.device("cuda", 1)
        assert resolve_device(_train_cfg("cuda"), 0, 1) == torch.device("cuda", 0)
        assert resolve_device(_train_cfg("cuda:2"), 0, 1) == torch.device("cuda", 2)
        with pytest.raises(ValueError, match="train.device='cuda:1' names one GPU but 2 proc"):
            resolve_device(_train_cfg("cuda:1"), 0, 2)
    with mock.patch.object(torch.cuda, "is_available", return_value=False):
        assert resolve_device(_train_cfg(None), 0, 1) == torch.device("cpu")
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device(_train_cfg("cuda"), 0, 1)
    with pytest.raises(ValueError, match="train.device='gpu'"):
        resolve_device(_train_cfg("gpu"), 0, 1)
