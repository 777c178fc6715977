"""Clean end of a distributed run started by detectron2's ``launch``."""

import gc

import torch.distributed as dist
from detectron2.utils import comm


def finish_distributed() -> None:
    """Wait for every rank, then tear the process groups down while the interpreter is alive.

    Without it, a rank that returns early can exit while gloo still holds connections to the
    others, and the slower ranks may abort when those connections drop. detectron2 keeps its
    own references to process groups (the per-machine group and a cached gloo group for
    gathers); they are dropped too, so that no group is left to be destroyed during interpreter
    shutdown, where gloo's threads can abort the process (SIGABRT).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    comm.synchronize()
    if hasattr(comm, "_LOCAL_PROCESS_GROUP"):
        comm._LOCAL_PROCESS_GROUP = None
    cached_gloo_group = getattr(comm, "_get_global_gloo_group", None)
    if hasattr(cached_gloo_group, "cache_clear"):
        cached_gloo_group.cache_clear()
    dist.destroy_process_group()
    gc.collect()
