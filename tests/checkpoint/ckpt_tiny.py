"""The smallest training setup the checkpoint tests run (imported by module name)."""

from pathlib import Path

from detectron2.config import LazyConfig
from tiny_models import TINY_TRAIN_OPTS, synthetic_set_opts

from mematte_d2.config import apply_overrides

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs/quick_schedules/mematte_tiny_synthetic.py")


def ckpt_opts(output_dir: Path) -> list[str]:
    """The tiny training overrides on the sets ``register_synthetic_sets(..., "ckpt_tiny")``
    registers, evaluated only at the end."""
    return [*TINY_TRAIN_OPTS, *synthetic_set_opts("ckpt_tiny"), "train.eval_period=0",
            f"train.output_dir={output_dir}"]


def ckpt_cfg(output_dir: Path, *extra: str):
    return apply_overrides(LazyConfig.load(QUICK), ckpt_opts(output_dir) + list(extra))
