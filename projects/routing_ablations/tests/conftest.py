"""Puts the project on sys.path, as its configs do (the deterministic-CPU fixture lives in the
repository's root conftest.py)."""

import sys
from pathlib import Path

PROJECT_DIR = str(Path(__file__).resolve().parents[1])
if PROJECT_DIR not in sys.path:
    sys.path.insert(0, PROJECT_DIR)

