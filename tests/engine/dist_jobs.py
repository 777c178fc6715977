"""One rank of a two-rank gloo job whose ranks are started as separate commands (as on two
machines), for the failure tests: ``python dist_jobs.py SCENARIO RANK DIST_URL``, or under
torchrun: ``python -m torch.distributed.run --nproc-per-node 2 dist_jobs.py SCENARIO``.

Each command runs what :func:`mematte_d2.utils.distributed.launch` runs in a spawned
process, so a failing rank is not stopped by a parent that spawned both.
"""

import itertools
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist

from mematte_d2.utils import distributed


def _keep_reducing() -> None:
    """Rank 0's side: collectives for up to 5 minutes (the peer's failure must end them)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        dist.all_reduce(torch.ones(4))
        time.sleep(0.05)


def one_rank_raises() -> None:
    dist.all_reduce(torch.ones(4))
    if dist.get_rank() == 1:
        raise ValueError("rank 1 broke on purpose")
    _keep_reducing()


class _LossNanOnRank1(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))

    def forward(self, batch):
        scale = float("nan") if dist.get_rank() == 1 else 1.0
        return {"loss_l2": (self.w**2).sum() * scale}


def nonfinite_loss_on_rank1() -> None:
    from detectron2.utils.events import EventStorage

    from mematte_d2.engine import MattingStepRunner

    model = _LossNanOnRank1()
    runner = MattingStepRunner(model, itertools.repeat([{}]),
                               torch.optim.SGD(model.parameters(), lr=0.1),
                               seed=0, device=torch.device("cpu"))
    with EventStorage(0):
        runner.iter = 0
        runner.run_step()
    _keep_reducing()


SCENARIOS = {"raise": one_rank_raises, "nonfinite": nonfinite_loss_on_rank1}

if __name__ == "__main__":
    if distributed.torchrun_rank() is not None:  # python -m torch.distributed.run ... SCENARIO
        distributed.launch(SCENARIOS[sys.argv[1]], 1, device_type="cpu",
                           timeout=timedelta(minutes=5))
        sys.exit()
    scenario, rank, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    distributed._worker(rank, SCENARIOS[scenario], 2, 1, 0, url, "cpu", (),
                        timedelta(minutes=5))
