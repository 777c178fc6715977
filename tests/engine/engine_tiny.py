"""Tiny engine-test settings shared by the engine tests (imported by module name)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs/quick_schedules/mematte_tiny_synthetic.py")

# The quick schedule shrunk further: 32-wide encoder, 64 px crops, 2 images per step.
TINY_OPTS = [
    "model.backbone.embed_dim=32",
    "model.decoder.in_chans=32",
    "dataloader.train.mapper.crop_size=64",
    "dataloader.train.total_batch_size=2",
    "dataloader.train.num_workers=0",
    "dataloader.test.num_workers=0",
    "train.vis_period=0",
    "train.log_period=1",
]


def tiny_in_process_opts(output_dir: Path) -> list[str]:
    """TINY_OPTS on the sets the ``tiny_datasets_root`` fixture registers in this process."""
    return TINY_OPTS + [
        "dataloader.train.dataset=engine_tiny_train",
        "dataloader.train.mapper.dataset_names=engine_tiny_train",
        "dataloader.test.dataset=engine_tiny_test",
        "dataloader.evaluator.dataset_name=engine_tiny_test",
        f"train.output_dir={output_dir}",
    ]


def cli_env(datasets_root: Path) -> dict:
    """Environment of a command-line run that finds the tiny set as ``synthetic_*``."""
    env = dict(os.environ, MEMATTE_DATASETS=str(datasets_root), OMP_NUM_THREADS="1")
    env.pop("MEMATTE_TRACEBACK", None)
    return env
