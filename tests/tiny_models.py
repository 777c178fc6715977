"""The tiny MEMatte / ViTMatte the tests share: the ViT-S model configs shrunk to width 32,
2 heads, 6 blocks (2 global, routed in MEMatte), window 4; and the registration of a generated
synthetic set under a test's own names."""

from pathlib import Path

from mematte_d2 import model_zoo
from mematte_d2.config import load_config
from mematte_d2.data import register_composition_dataset, register_evaluation_dataset

MEMATTE_CONFIG = model_zoo.get_config_file("common/models/mematte_s.py")
VITMATTE_CONFIG = model_zoo.get_config_file("common/models/vitmatte_s.py")

_ENCODER = {
    "embed_dim": 32,
    "num_heads": 2,
    "depth": 6,
    "window_size": 4,
    "window_block_indexes": "[0,1,3,4]",
    "residual_block_indexes": "[2,5]",
}


def _encoder(node: str) -> list[str]:
    return [f"model.{node}.{key}={value}" for key, value in _ENCODER.items()]


VITMATTE_OPTS = _encoder("backbone") + ["model.decoder.in_chans=32"]
MEMATTE_OPTS = VITMATTE_OPTS + _encoder("teacher_backbone")
# With an 8-channel decoder, for tests that time or repeat many calls (the benchmark's).
_SMALL_DECODER = ["model.decoder.convstream_out=[8,8,8]", "model.decoder.fusion_out=[8,8,8,8]"]
FAST_VITMATTE_OPTS = VITMATTE_OPTS + _SMALL_DECODER
FAST_MEMATTE_OPTS = MEMATTE_OPTS + _SMALL_DECODER


def tiny_cfg(kind: str = "mematte", extra: list[str] | tuple = ()):
    """Config of the tiny MEMatte ("mematte") or ViTMatte ("vitmatte"), plus ``extra``."""
    if kind not in ("mematte", "vitmatte"):
        raise ValueError(f"kind must be 'mematte' or 'vitmatte', got {kind!r}")
    path, opts = (MEMATTE_CONFIG, MEMATTE_OPTS) if kind == "mematte" else (VITMATTE_CONFIG,
                                                                           VITMATTE_OPTS)
    return load_config(path, [*opts, *extra])


def register_synthetic_sets(synthetic: Path, prefix: str) -> None:
    """Register a folder written by ``generate_synthetic_dataset`` as ``<prefix>_train`` and
    ``<prefix>_test``."""
    register_composition_dataset(
        f"{prefix}_train", synthetic / "train/fg", synthetic / "train/alpha",
        synthetic / "train/bg",
    )
    register_evaluation_dataset(
        f"{prefix}_test", synthetic / "test/image", synthetic / "test/alpha",
        synthetic / "test/trimap",
    )


# The quick schedule shrunk for training tests: 32-wide encoder, 64 px crops, 2 images per step.
TINY_TRAIN_OPTS = [
    "model.backbone.embed_dim=32",
    "model.decoder.in_chans=32",
    "dataloader.train.mapper.crop_size=64",
    "dataloader.train.total_batch_size=2",
    "dataloader.train.num_workers=0",
    "dataloader.test.num_workers=0",
    "train.vis_period=0",
    "train.log_period=1",
]


def synthetic_set_opts(prefix: str) -> list[str]:
    """Overrides that train on ``<prefix>_train`` and evaluate on ``<prefix>_test``."""
    return [
        f"dataloader.train.dataset={prefix}_train",
        f"dataloader.train.mapper.dataset_names={prefix}_train",
        f"dataloader.test.dataset={prefix}_test",
        f"dataloader.evaluator.dataset_name={prefix}_test",
    ]
