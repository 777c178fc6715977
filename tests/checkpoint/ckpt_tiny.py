"""The smallest training setup the checkpoint tests run (imported by module name)."""

from pathlib import Path

from detectron2.config import LazyConfig

from mematte_d2.engine import apply_overrides

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs/quick_schedules/mematte_tiny_synthetic.py")


def ckpt_opts(output_dir: Path) -> list[str]:
    """Overrides of the quick schedule: a 32-wide encoder on 64 px crops, 2 per step, on the
    sets ``register_synthetic_sets(..., "ckpt_tiny")`` registers, evaluated only at the end."""
    return [
        "model.backbone.embed_dim=32",
        "model.decoder.in_chans=32",
        "dataloader.train.mapper.crop_size=64",
        "dataloader.train.total_batch_size=2",
        "dataloader.train.num_workers=0",
        "dataloader.test.num_workers=0",
        "dataloader.train.dataset=ckpt_tiny_train",
        "dataloader.train.mapper.dataset_names=ckpt_tiny_train",
        "dataloader.test.dataset=ckpt_tiny_test",
        "dataloader.evaluator.dataset_name=ckpt_tiny_test",
        "train.vis_period=0",
        "train.log_period=1",
        "train.eval_period=0",
        f"train.output_dir={output_dir}",
    ]


def ckpt_cfg(output_dir: Path, *extra: str):
    return apply_overrides(LazyConfig.load(QUICK), ckpt_opts(output_dir) + list(extra))
