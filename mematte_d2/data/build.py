"""Matting data loaders on top of detectron2's detection loaders.

Training: an infinite stream from :class:`TrainingSampler` (each DDP rank takes its own share
of one shared shuffle), batches as lists of mapped dicts. Testing: every image once, one per
batch, split over ranks by :class:`InferenceSampler`.
"""

from collections.abc import Callable, Sequence

from detectron2.data import build_detection_test_loader
from torch.utils.data import DataLoader

from .datasets import get_matting_dataset_dicts
from .mappers import MattingTestMapper
from .resumable import build_resumable_train_loader

__all__ = ["build_matting_test_loader", "build_matting_train_loader"]

DatasetSpec = str | Sequence[str] | Sequence[dict]


def build_matting_train_loader(*, dataset: DatasetSpec, mapper: Callable[[dict], dict],
                               total_batch_size: int, num_workers: int = 0,
                               seed: int | None = None) -> DataLoader:
    """Infinite loader of per-rank batches (lists of `mapper` outputs).

    The batch stream is a function of (seed, rank, iteration) only (see
    :mod:`mematte_d2.data.resumable`): set ``loader.batch_sampler.start_iter`` to resume.

    Args:
        dataset: a registered name, a list of names, or a list of dataset dicts.
        mapper: e.g. :class:`~mematte_d2.data.MattingTrainMapper`.
        total_batch_size: summed over DDP ranks; must be a multiple of the world size.
        seed: fixes the sample order (shared by all ranks) and every sample's augmentation.
            None: one seed drawn and shared across ranks.
    """
    return build_resumable_train_loader(
        get_matting_dataset_dicts(dataset), mapper, total_batch_size, num_workers, seed
    )


def build_matting_test_loader(*, dataset: DatasetSpec, mapper: Callable[[dict], dict] | None = None,
                              num_workers: int = 0) -> DataLoader:
    """Loader of one-image batches covering the set once (split over DDP ranks).

    `mapper` defaults to :class:`~mematte_d2.data.MattingTestMapper` (full resolution).
    """
    dicts = get_matting_dataset_dicts(dataset)
    return build_detection_test_loader(dicts, mapper=mapper or MattingTestMapper(),
                                       num_workers=num_workers)
