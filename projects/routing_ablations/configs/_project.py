"""Puts this project on ``sys.path`` and registers its components, once per process.

detectron2 executes a config's relative imports afresh on every ``LazyConfig.load``, so this
file runs each time; the imports inside :func:`register` are ordinary ones that hit
``sys.modules`` after the first, so no component is registered twice.
"""

import importlib
import sys
from pathlib import Path

PROJECT_DIR = str(Path(__file__).resolve().parents[1])
OUTPUT_ROOT = "./output/routing_ablations"


def register(*modules: str) -> None:
    """Import project modules by name (e.g. ``"example_router"``); importing registers."""
    if PROJECT_DIR not in sys.path:
        sys.path.insert(0, PROJECT_DIR)
    for name in modules:
        importlib.import_module(name)


register("routing_ablations")
