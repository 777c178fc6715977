"""Data loading shared by the data-set configs; each config fills in names and crop size."""

from detectron2.config import LazyCall as L
from omegaconf import OmegaConf

from mematte_d2.data import (
    MattingTestMapper,
    MattingTrainMapper,
    build_matting_test_loader,
    build_matting_train_loader,
)
from mematte_d2.data.transforms import release_train_transforms
from mematte_d2.evaluation import MattingEvaluator


def matting_dataloader(train: str, test: str, crop_size: int = 512, total_batch_size: int = 32,
                       num_workers: int = 4, test_protocol: str = "release"):
    """``dataloader`` node: the release's training crops from `train`, full-size test on `test`.

    Each name is written once, in ``dataloader.train.dataset`` and ``dataloader.test.dataset``;
    the mapper and the evaluator read it by interpolation, so one override selects a set.

    `test_protocol` (``dataloader.test.mapper.protocol``): "release" feeds and saves test images
    as the authors' inference.py (the published numbers), "native" as MattingPredictor.
    """
    dataloader = OmegaConf.create()
    dataloader.train = L(build_matting_train_loader)(
        dataset=train,
        mapper=L(MattingTrainMapper)(
            dataset_names="${..dataset}",
            crop_size=crop_size,
            # The release's steps, as a list: replace it with your own list of steps to change
            # the augmentation. "${..x}" is the mapper's x, so overrides of crop_size and
            # of the training set reach the steps.
            transforms=L(release_train_transforms)(sources="${..dataset_names}",
                                                   crop_size="${..crop_size}"),
        ),
        total_batch_size=total_batch_size,
        num_workers=num_workers,
        seed=None,  # None: train.seed
    )
    dataloader.test = L(build_matting_test_loader)(
        dataset=test, mapper=L(MattingTestMapper)(protocol=test_protocol), num_workers=2
    )
    dataloader.evaluator = L(MattingEvaluator)(dataset_name="${..test.dataset}",
                                               save_predictions=False)
    return dataloader
