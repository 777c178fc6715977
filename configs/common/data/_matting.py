"""Data loading shared by the data-set configs; each config fills in names and crop size."""

from detectron2.config import LazyCall as L
from omegaconf import OmegaConf

from mematte_d2.data import (
    MattingTestMapper,
    MattingTrainMapper,
    build_matting_test_loader,
    build_matting_train_loader,
)
from mematte_d2.data.transforms import (
    Composite,
    CropAroundUnknown,
    FitBackground,
    ForegroundColorJitter,
    GenerateTrimap,
    RandomAffine,
    RandomResize,
    RandomSecondForeground,
)
from mematte_d2.evaluation import MattingEvaluator

# The release's training pipeline (GCA-Matting's), step by step. Each step sits in the
# mapper's `transforms` list, so "${...x}" is the mapper's x: overriding
# dataloader.train.mapper.crop_size or .dataset_names reaches the steps.
RELEASE_TRAIN_TRANSFORMS = [
    L(RandomSecondForeground)(sources="${...dataset_names}", prob=0.5),
    L(RandomResize)(size=(640, 640), prob=0.25),
    L(RandomAffine)(degrees=30.0, scale=(0.8, 1.25), shear=10.0, flip_prob=0.5,
                    min_rotation_side=1024),
    L(GenerateTrimap)(work_size=(640, 640), kernel_sizes=(1, 29)),
    L(FitBackground)(),
    L(CropAroundUnknown)(size="${...crop_size}"),
    L(ForegroundColorJitter)(hue_degrees=40, max_offset=0.1),
    L(Composite)(),
]


def matting_dataloader(train: str, test: str, crop_size: int = 512, total_batch_size: int = 32,
                       num_workers: int = 4):
    """``dataloader`` node: the release's training crops from `train`, full-size test on `test`."""
    dataloader = OmegaConf.create()
    dataloader.train = L(build_matting_train_loader)(
        dataset=train,
        mapper=L(MattingTrainMapper)(dataset_names=train, crop_size=crop_size,
                                     transforms=RELEASE_TRAIN_TRANSFORMS),
        total_batch_size=total_batch_size,
        num_workers=num_workers,
        seed=None,  # None: train.seed
    )
    dataloader.test = L(build_matting_test_loader)(
        dataset=test, mapper=L(MattingTestMapper)(), num_workers=2
    )
    dataloader.evaluator = L(MattingEvaluator)(dataset_name=test, save_predictions=False)
    return dataloader
