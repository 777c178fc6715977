"""Clean end of a distributed run started by detectron2's ``launch``."""

import torch.distributed as dist
from detectron2.utils import comm


def finish_distributed() -> None:
    """Wait for every rank, then tear the process group down.

    Without it, a rank that returns early can exit while gloo still holds connections to the
    others, and the slower ranks may abort when those connections drop.
    """
    if dist.is_available() and dist.is_initialized():
        comm.synchronize()
        dist.destroy_process_group()
