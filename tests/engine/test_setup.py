"""``train.deterministic``: the switches it sets, and that a CPU run still trains with them."""

import argparse
import os
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig
from tiny_models import QUICK, tiny_in_process_opts

from mematte_d2.config import apply_overrides
from mematte_d2.engine import MattingTrainer
from mematte_d2.engine.setup import setup_job
from mematte_d2.utils import determinism


@pytest.fixture
def restore_global_state(monkeypatch):
    """Put back every process-wide switch ``enable_determinism`` changes."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    saved = (torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
             torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
     torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) = saved[2:]


def _cfg(output_dir: Path, *extra: str):
    return apply_overrides(LazyConfig.load(QUICK), tiny_in_process_opts(output_dir) + list(extra))


def _args(**kw):
    return argparse.Namespace(eval_only=False, **kw)


def test_off_by_default_and_on_sets_every_switch(restore_global_state, tmp_path):
    assert LazyConfig.load("configs/common/train.py").train.deterministic is False
    torch.backends.cudnn.benchmark = torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    setup_job(_cfg(tmp_path / "off"), _args())
    assert not torch.are_deterministic_algorithms_enabled()
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ

    setup_job(_cfg(tmp_path / "on", "train.deterministic=True"), _args())
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_a_deterministic_cublas_setting_is_kept(restore_global_state, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    determinism.prepare_cublas_workspace()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":0:0")
    determinism.prepare_cublas_workspace()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_cudnn_benchmark_is_refused_with_it(restore_global_state, tmp_path):
    cfg = _cfg(tmp_path, "train.deterministic=True", "train.cudnn_benchmark=True")
    with pytest.raises(ValueError, match="train.cudnn_benchmark=True"):
        setup_job(cfg, _args())
    assert not torch.are_deterministic_algorithms_enabled()


def test_cpu_run_trains_with_it(restore_global_state, tiny_datasets_root, tmp_path):
    cfg = _cfg(tmp_path, "train.deterministic=True", "train.device=cpu", "train.max_iter=2",
               "train.eval_period=0", "train.checkpointer.period=1000")
    setup_job(cfg, _args())
    trainer = MattingTrainer(cfg)
    trainer.train()
    assert torch.are_deterministic_algorithms_enabled()
    assert (tmp_path / "model_final.pth").is_file()
