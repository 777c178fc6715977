"""How a process learns its place in a job: torchrun's variables, or detectron2's options."""

import pytest

from mematte_d2.utils import distributed
from mematte_d2.utils.distributed import TorchrunRank, launch, restart_count, torchrun_rank

TORCHRUN = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}


@pytest.fixture
def no_torchrun(monkeypatch):
    for name in (*TORCHRUN, "TORCHELASTIC_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_place_comes_from_torchrun_variables(no_torchrun):
    assert torchrun_rank() is None and restart_count() == 0
    for name, value in TORCHRUN.items():
        no_torchrun.setenv(name, value)
    no_torchrun.setenv("TORCHELASTIC_RESTART_COUNT", "2")
    assert torchrun_rank() == TorchrunRank(rank=3, local_rank=1, world_size=4,
                                           local_world_size=2)
    assert restart_count() == 2


@pytest.mark.parametrize("changes, message", [
    ({"MASTER_PORT": None}, "but not MASTER_PORT"),
    ({"RANK": "x"}, "must be integers"),
    ({"RANK": "4"}, "not one rank of a job"),
    ({"LOCAL_WORLD_SIZE": "3"}, "not one rank of a job"),
])
def test_partial_or_inconsistent_variables_are_named(no_torchrun, changes, message):
    for name, value in {**TORCHRUN, **changes}.items():
        if value is not None:
            no_torchrun.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        torchrun_rank()


def test_detectron2_process_options_are_refused_under_torchrun(no_torchrun):
    for name, value in TORCHRUN.items():
        no_torchrun.setenv(name, value)
    with pytest.raises(ValueError, match="leave --num-gpus, --num-machines and --machine-rank"):
        launch(lambda: None, 2, device_type="cpu")


def test_a_single_torchrun_process_runs_in_place(no_torchrun):
    for name, value in {**TORCHRUN, "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                        "LOCAL_WORLD_SIZE": "1"}.items():
        no_torchrun.setenv(name, value)
    assert launch(lambda x: x + 1, 1, device_type="cpu", args=(41,)) == 42
    assert not distributed.dist.is_initialized()
