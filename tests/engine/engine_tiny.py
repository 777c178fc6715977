"""Tiny engine-test settings shared by the engine tests (imported by module name)."""

import os
from pathlib import Path

from tiny_models import TINY_TRAIN_OPTS, synthetic_set_opts

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "configs/quick_schedules/mematte_tiny_synthetic.py")

def tiny_in_process_opts(output_dir: Path) -> list[str]:
    """TINY_TRAIN_OPTS on the sets the ``tiny_datasets_root`` fixture registers in this
    process."""
    return [*TINY_TRAIN_OPTS, *synthetic_set_opts("engine_tiny"),
            f"train.output_dir={output_dir}"]


def cli_env(datasets_root: Path) -> dict:
    """Environment of a command-line run that finds the tiny set as ``synthetic_*``."""
    env = dict(os.environ, MEMATTE_DATASETS=str(datasets_root), OMP_NUM_THREADS="1")
    env.pop("MEMATTE_TRACEBACK", None)
    return env
