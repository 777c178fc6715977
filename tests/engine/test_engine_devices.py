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


def test_a_single_cuda_process_is_bound_to_the_gpu_it_trains_on():
    """train.device=cuda:K with one process (per machine): GPU K is the current device before
    the job runs, so nothing (pin-memory thread, NCCL, peak counters) falls back to GPU 0."""
    calls = []
    with _cuda_machine(gpus=4), mock.patch.object(torch.cuda, "set_device",
                                                  side_effect=lambda d: calls.append(d)):
        assert launch(lambda: calls.append("main") or "ran", 1, device_type="cuda",
                      gpu=2) == "ran"
        assert calls == [2, "main"]
        calls.clear()
        with mock.patch.multiple(distributed, RankWatchdog=mock.DEFAULT,
                                 finish_distributed=mock.DEFAULT), \
                mock.patch.object(distributed.dist, "init_process_group"), \
                mock.patch.multiple(distributed.comm, create_local_process_group=mock.DEFAULT,
                                    synchronize=mock.DEFAULT):
            # one process on machine 1 of a 2-machine job, training on its GPU 3
            distributed._worker(0, lambda: calls.append("main"), 2, 1, 1, "tcp://h:1", "cuda",
                                (), timedelta(seconds=30), 3)
        assert calls == [3, "main"]
        with pytest.raises(ValueError, match="gpu=1 names one GPU for 2 processes"):
            launch(print, 2, device_type="cuda", gpu=1)


def test_train_command_passes_cuda_k_to_the_launch():
    from mematte_d2.cli import train

    quick = "configs/quick_schedules/mematte_tiny_synthetic.py"
    with _cuda_machine(gpus=4), mock.patch.object(train, "launch") as launched:
        train.run(["--config-file", quick, "train.device=cuda:2"])
        assert launched.call_args.kwargs["gpu"] == 2
        train.run(["--config-file", quick, "--num-gpus", "2", "train.device=cuda"])
        assert launched.call_args.kwargs["gpu"] is None


def test_bind_device_sets_the_current_gpu():
    from mematte_d2.engine import bind_device

    with mock.patch.object(torch.cuda, "set_device") as set_device:
        bind_device(torch.device("cpu"))
        set_device.assert_not_called()
        bind_device(torch.device("cuda", 3))
        set_device.assert_called_once_with(torch.device("cuda", 3))
