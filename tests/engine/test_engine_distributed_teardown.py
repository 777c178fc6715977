"""finish_distributed: no process group (nor detectron2's references to one) outlives it."""

import torch.distributed as dist
from detectron2.utils import comm

from mematte_d2.utils.distributed import finish_distributed


def test_finish_distributed_drops_every_group_reference(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}",
                            rank=0, world_size=1)
    try:
        comm.create_local_process_group(1)
        comm._get_global_gloo_group()  # what detectron2's gathers cache on first use
        assert comm._get_global_gloo_group.cache_info().currsize == 1
        finish_distributed()
        assert not dist.is_initialized()
        assert comm._LOCAL_PROCESS_GROUP is None
        assert comm._get_global_gloo_group.cache_info().currsize == 0
        finish_distributed()  # a second call (or one without a group) does nothing
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        comm._LOCAL_PROCESS_GROUP = None
