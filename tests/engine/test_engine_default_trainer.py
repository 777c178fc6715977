"""MattingTrainer is a DefaultTrainer for real: every public method works on a LazyConfig."""

import inspect
import json

import pytest
from detectron2.config import LazyConfig
from detectron2.engine import DefaultTrainer, hooks
from detectron2.utils.events import EventStorage, JSONWriter
from tiny_models import QUICK, tiny_in_process_opts

from mematte_d2.config import apply_overrides
from mematte_d2.engine import MattingTrainer


def _cfg(output_dir, *extra):
    return apply_overrides(LazyConfig.load(QUICK), tiny_in_process_opts(output_dir) + list(extra))


def _public(cls) -> dict:
    return {name: member for name, member in inspect.getmembers(cls)
            if not name.startswith("_")}


def test_every_public_method_reading_the_yacs_config_is_overridden():
    """DefaultTrainer's methods that read ``cfg.SOMETHING`` would fail on a LazyConfig."""
    reading_cfg = []
    for name, member in _public(DefaultTrainer).items():
        function = inspect.unwrap(getattr(member, "__func__", member))
        if isinstance(member, property) or not callable(function):
            continue
        if "cfg." in inspect.getsource(function):
            reading_cfg.append(name)
    assert "build_writers" in reading_cfg and "auto_scale_workers" in reading_cfg
    not_overridden = [n for n in reading_cfg if n not in vars(MattingTrainer)]
    assert not not_overridden


@pytest.mark.integration
def test_each_public_method_runs_on_a_lazyconfig(tiny_datasets_root, tmp_path):
    cfg = _cfg(tmp_path, "train.max_iter=2", "train.eval_period=0",
               "train.checkpointer.period=1000")
    trainer = MattingTrainer(cfg)
    writers = trainer.build_writers()
    assert any(isinstance(w, JSONWriter) for w in writers)
    for writer in writers:
        writer.close()
    assert trainer.auto_scale_workers(cfg, 1) is cfg  # no reference world size: unchanged
    assert isinstance(trainer.build_hooks()[0], hooks.IterationTimer)
    assert trainer.model is not None and trainer.optimizer is not None
    assert trainer.data_loader is not None
    state = trainer.state_dict()
    trainer.load_state_dict(state)
    trainer.resume_or_load(resume=False)
    with EventStorage(0) as trainer.storage:
        trainer.iter = 0
        trainer.run_step()
    results = MattingTrainer.test(cfg, trainer.model)
    assert set(results) == {"engine_tiny_test"}
    evaluator = MattingTrainer.build_evaluator(cfg, "engine_tiny_test")
    assert evaluator is not None
    trainer.train()  # before/after_train, before/after_step and the hooks
    lines = (tmp_path / "metrics.json").read_text().splitlines()
    assert json.loads(lines[-1])["iteration"] >= 1  # the writers built by build_writers


def test_auto_scale_workers_keeps_the_batch_per_process(tmp_path):
    cfg = _cfg(tmp_path, "train.reference_world_size=2", "dataloader.train.total_batch_size=8",
               "train.max_iter=1000", "train.eval_period=100", "optimizer.lr=1e-3")
    scaled = MattingTrainer.auto_scale_workers(cfg, 4)
    assert scaled.dataloader.train.total_batch_size == 16
    assert scaled.optimizer.lr == pytest.approx(2e-3)
    assert (scaled.train.max_iter, scaled.train.eval_period) == (500, 50)
    assert scaled.lr_multiplier.max_iter == 500  # the schedule follows train.max_iter
    assert scaled.train.reference_world_size == 4 and cfg.train.max_iter == 1000
    with pytest.raises(ValueError, match="not divisible"):
        MattingTrainer.auto_scale_workers(_cfg(tmp_path, "train.reference_world_size=3"), 2)
