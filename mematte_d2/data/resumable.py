"""A training loader whose stream of batches is a pure function of (seed, rank, iteration).

detectron2's TrainingSampler gives each DDP rank its own shuffled share of the data. On top of
it, every sample gets its own augmentation seed derived from its position in the rank's stream,
and the batch sampler can start at any iteration. A run resumed at iteration k therefore sees
exactly the batches an uninterrupted run sees from iteration k on, whatever the worker count.
"""

import copy
import itertools
import random
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from detectron2.data.samplers import TrainingSampler
from detectron2.utils import comm
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["ResumableBatchSampler", "SeededMapDataset", "build_resumable_train_loader"]


def sample_seed(seed: int, rank: int, position: int, stream: int = 0) -> int:
    """A 32-bit seed for item `position` of rank `rank`'s stream number `stream`
    (0 = training samples, 1 = training steps)."""
    return int(np.random.SeedSequence([seed, rank, stream, position]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (what mappers draw from)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class SeededMapDataset(Dataset):
    """Maps ``(index, seed)`` keys to ``mapper(dicts[index])`` with all global RNGs seeded."""

    def __init__(self, dataset_dicts: Sequence[dict], mapper: Callable[[dict], dict]):
        self.dataset_dicts = dataset_dicts
        self.mapper = mapper

    def __len__(self) -> int:
        return len(self.dataset_dicts)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        seed_everything(seed)
        return self.mapper(copy.deepcopy(self.dataset_dicts[index]))


class ResumableBatchSampler(Sampler):
    """Per-iteration lists of ``(index, seed)`` keys; set ``start_iter`` before iterating."""

    def __init__(self, size: int, batch_size: int, seed: int, shuffle: bool = True):
        if size <= 0:
            raise ValueError("ResumableBatchSampler: the training set is empty")
        self.size = size
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.start_iter = 0

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        rank = comm.get_rank()
        indices = iter(TrainingSampler(self.size, shuffle=self.shuffle, seed=self.seed))
        first = self.start_iter * self.batch_size
        position = itertools.count(first)
        for index in itertools.islice(indices, first, None):
            batch = [(int(index), sample_seed(self.seed, rank, next(position)))]
            for index in itertools.islice(indices, self.batch_size - 1):
                batch.append((int(index), sample_seed(self.seed, rank, next(position))))
            yield batch


def _as_list(batch: list[dict]) -> list[dict]:
    return batch


def build_resumable_train_loader(
    dataset_dicts: Sequence[dict],
    mapper: Callable[[dict], dict],
    total_batch_size: int,
    num_workers: int = 0,
    seed: int | None = None,
) -> DataLoader:
    """Infinite loader of per-rank batches (lists of mapped dicts).

    ``total_batch_size`` is split evenly over the DDP ranks. ``seed`` None draws one seed shared
    by all ranks. ``loader.batch_sampler.start_iter`` selects the first iteration.
    """
    world_size = comm.get_world_size()
    if total_batch_size <= 0 or total_batch_size % world_size:
        raise ValueError(
            f"dataloader.train.total_batch_size={total_batch_size} must be a positive multiple "
            f"of the number of processes ({world_size})"
        )
    if seed is None:
        seed = comm.shared_random_seed()
    batch_sampler = ResumableBatchSampler(len(dataset_dicts), total_batch_size // world_size, seed)
    return DataLoader(
        SeededMapDataset(dataset_dicts, mapper),
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        collate_fn=_as_list,
        persistent_workers=num_workers > 0,
    )
