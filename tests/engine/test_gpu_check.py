"""tools/gpu_check.py: without CUDA it says so and succeeds; its commands name real files."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import REPO

sys.path.insert(0, str(REPO / "tools"))
import gpu_check  # noqa: E402

pytestmark = pytest.mark.integration


def test_without_cuda_it_says_so_and_exits_0():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(REPO / "tools/gpu_check.py")], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no CUDA device here; nothing to check" in done.stdout


def test_checks_cover_the_cuda_paths_with_existing_tools(tmp_path):
    checks = gpu_check.checks(tmp_path, gpus=2)
    names = [c.name for c in checks]
    assert names == ["train, AMP, 2 GPU(s)", "--eval-only", "predict fp32", "predict fp16",
                     "predict bf16", "benchmark row", "GPU-marked tests"]
    for check in checks:
        scripts = [a for a in check.command if a.endswith(".py")]
        assert all(Path(s).is_file() for s in scripts), check.name
    assert "--num-gpus" in checks[0].command and "train.device=cuda" in checks[0].command
