"""Matting data loaders on top of detectron2's detection loaders.

Training: an infinite stream from :class:`TrainingSampler` (each DDP rank takes its own share
of one shared shuffle), batches as lists of mapped dicts. Testing: every image once, one per
batch, split over ranks by :class:`InferenceSampler`.
"""

from collections.abc import Callable, Sequence

from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.data.samplers import TrainingSampler
from detectron2.utils import comm
from torch.utils.data import DataLoader

from .datasets import get_matting_dataset_dicts
from .mappers import MattingTestMapper

__all__ = ["build_matting_test_loader", "build_matting_train_loader"]

DatasetSpec = str | Sequence[str] | Sequence[dict]


def build_matting_train_loader(*, dataset: DatasetSpec, mapper: Callable[[dict], dict],
                               total_batch_size: int, num_workers: int = 0,
                               seed: int | None = None) -> DataLoader:
    """Infinite loader of per-rank batches (lists of `mapper` outputs).

    Args:
        dataset: a registered name, a list of names, or a list of dataset dicts.
        mapper: e.g. :class:`~mematte_d2.data.MattingTrainMapper`.
        total_batch_size: summed over DDP ranks; must be a multiple of the world size.
        seed: fixes the sample order (shared by all ranks) and the data loader workers' seeds
            (offset by the rank). None: the order comes from a seed drawn from numpy's global
            RNG and shared across ranks, the workers' seeds from torch's global RNG. With
            num_workers=0 the augmentation always draws from the process's numpy RNG.
    """
    dicts = get_matting_dataset_dicts(dataset)
    world_size = comm.get_world_size()
    if total_batch_size <= 0 or total_batch_size % world_size:
        raise ValueError(f"total_batch_size={total_batch_size} must be a positive multiple of "
                         f"the number of processes ({world_size})")
    sampler = TrainingSampler(len(dicts), shuffle=True, seed=seed)
    return build_detection_train_loader(
        dicts,
        mapper=mapper,
        sampler=sampler,
        total_batch_size=total_batch_size,
        aspect_ratio_grouping=False,
        num_workers=num_workers,
        seed=None if seed is None else seed + comm.get_rank(),
    )


def build_matting_test_loader(*, dataset: DatasetSpec, mapper: Callable[[dict], dict] | None = None,
                              num_workers: int = 0) -> DataLoader:
    """Loader of one-image batches covering the set once (split over DDP ranks).

    `mapper` defaults to :class:`~mematte_d2.data.MattingTestMapper` (full resolution).
    """
    dicts = get_matting_dataset_dicts(dataset)
    return build_detection_test_loader(dicts, mapper=mapper or MattingTestMapper(),
                                       num_workers=num_workers)
