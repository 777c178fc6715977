"""The tiny models and settings the tests share (tests/ and projects/ import it by name):

* the ViT-S model configs shrunk to width 32, 2 heads, 6 blocks (2 global, routed in MEMatte),
  window 4 (``tiny_cfg``), and the registration of a generated synthetic set under a test's own
  names;
* the training settings of the engine and checkpoint tests (``QUICK``, ``TINY_TRAIN_OPTS``,
  ``tiny_in_process_opts``, ``ckpt_cfg``, ``cli_env``);
* encoders and MEMattes built directly from modules: ``tiny_student`` / ``tiny_teacher``
  (width 64, 4 heads) and the routing-ablation ``tiny_encoder`` / ``tiny_model`` /
  ``tiny_batch`` (width ``DIM``, 2 heads).
"""

import os
from pathlib import Path

import torch
from detectron2.config import LazyConfig

from mematte_d2 import model_zoo
from mematte_d2.config import apply_overrides, load_config
from mematte_d2.data import register_composition_dataset, register_evaluation_dataset
from mematte_d2.modeling import DetailCapture, MEMatte, RoutedViT, ViTMatteEncoder

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "configs/quick_schedules/mematte_tiny_synthetic.py")

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


def tiny_in_process_opts(output_dir: Path) -> list[str]:
    """TINY_TRAIN_OPTS on the sets the engine tests' ``tiny_datasets_root`` fixture registers
    in this process."""
    return [*TINY_TRAIN_OPTS, *synthetic_set_opts("engine_tiny"),
            f"train.output_dir={output_dir}"]


def cli_env(datasets_root: Path) -> dict:
    """Environment of a command-line run that finds the tiny set as ``synthetic_*``."""
    env = dict(os.environ, MEMATTE_DATASETS=str(datasets_root), OMP_NUM_THREADS="1")
    env.pop("MEMATTE_TRACEBACK", None)
    return env


def ckpt_opts(output_dir: Path) -> list[str]:
    """The tiny training overrides on the sets ``register_synthetic_sets(..., "ckpt_tiny")``
    registers, evaluated only at the end."""
    return [*TINY_TRAIN_OPTS, *synthetic_set_opts("ckpt_tiny"), "train.eval_period=0",
            f"train.output_dir={output_dir}"]


def ckpt_cfg(output_dir: Path, *extra: str):
    return apply_overrides(LazyConfig.load(QUICK), ckpt_opts(output_dir) + list(extra))


# Encoders built directly: width 64, 4 heads, window blocks 0 and 2, blocks 1 and 3 global
# (routed in the student).
TINY_ENCODER = dict(
    embed_dim=64,
    num_heads=4,
    depth=4,
    window_size=4,
    window_block_indexes=(0, 2),
    residual_block_indexes=(1, 3),
)


def tiny_student(**overrides) -> RoutedViT:
    return RoutedViT(**{**TINY_ENCODER, **overrides})


def tiny_teacher(**overrides) -> ViTMatteEncoder:
    return ViTMatteEncoder(**{**TINY_ENCODER, "img_size": 128, **overrides})


# The routing ablations' encoder: width DIM, 2 heads, window blocks 0-1, routed blocks 2-3.
DIM = 64


def tiny_encoder(router="LocalGlobalRouter", refiner="LTRM", policy="BATR", **kwargs):
    """embed_dim 64, 2 heads, depth 4: window blocks 0-1, routed global blocks 2-3 (the
    routing_ablations project's components can be named once ``routing_ablations`` is
    imported)."""
    options = dict(
        embed_dim=DIM,
        num_heads=2,
        depth=4,
        window_size=4,
        window_block_indexes=(0, 1),
        residual_block_indexes=(3,),
        router=router,
        refiner=refiner,
        routing_policy=policy,
        keep_ratio=0.25,
    )
    options.update(kwargs)
    return RoutedViT(**options)


def tiny_model(router="LocalGlobalRouter", refiner="LTRM", policy="BATR", **kwargs) -> MEMatte:
    """Tiny MEMatte (no teacher, whole-image decoding) with the named routing components."""
    return MEMatte(
        backbone=tiny_encoder(router, refiner, policy, **kwargs),
        decoder=DetailCapture(in_chans=DIM, convstream_out=(8, 16, 16), fusion_out=(32, 16, 8, 8)),
        tile_size=0,
    )


def tiny_batch(size: int = 64, batch: int = 2) -> list[dict]:
    """Random images with a band of unknown trimap and an alpha matte consistent with it."""
    items = []
    for _ in range(batch):
        trimap = torch.zeros(1, size, size)
        trimap[:, size // 2 :] = 255
        trimap[:, size // 2 - 6 : size // 2 + 6] = 128
        alpha = (trimap / 255).clamp(0, 1)
        alpha[trimap == 128] = torch.rand(int((trimap == 128).sum()))
        items.append({"image": torch.rand(3, size, size) * 255, "trimap": trimap, "alpha": alpha})
    return items
