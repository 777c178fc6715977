"""--resume survives a bad last checkpoint: it falls back to the newest one that loads, says
which it skipped and why, and never starts from scratch silently; max_to_keep holds across
restarts."""

import logging
import os
import shutil

import pytest
import torch
from hostile_weights import flip_tensor_bytes
from tiny_models import ckpt_cfg

from mematte_d2.checkpoint import CheckpointError, prune_checkpoints
from mematte_d2.engine import MattingTrainer

pytestmark = pytest.mark.integration


def _train(output_dir, *extra, resume=False):
    trainer = MattingTrainer(ckpt_cfg(output_dir, *extra))
    trainer.resume_or_load(resume=resume)
    trainer.train()
    return trainer


def _periodic(folder):
    return sorted(p.name for p in folder.glob("model_0*.pth"))


@pytest.fixture(scope="module")
def finished_run(ckpt_datasets, tmp_path_factory):
    """A 6-iteration run checkpointing every 2: model_000000{1,3,5}.pth and model_final.pth."""
    out = tmp_path_factory.mktemp("finished")
    _train(out, "train.max_iter=6", "train.checkpointer.period=2")
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    return out


def _resume(folder, caplog):
    trainer = MattingTrainer(ckpt_cfg(folder, "train.max_iter=8", "train.checkpointer.period=2"))
    # attached directly: a command-line run in this process may have stopped "mematte_d2"
    # records from propagating to the root logger caplog listens to
    logger = logging.getLogger("mematte_d2.checkpoint")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            trainer.resume_or_load(resume=True)
    finally:
        logger.removeHandler(caplog.handler)
    return trainer


def _weights_equal(model, path):
    saved = torch.load(path, weights_only=True)["model"]
    return all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


BREAKAGES = {
    "truncated": (_truncate, "not a PyTorch checkpoint"),
    "empty": (lambda p: p.write_bytes(b""), "the file is empty or cut short"),
    "missing": (lambda p: p.unlink(), "no such file"),
    "64 flipped bytes in a tensor": (flip_tensor_bytes, "does not match its CRC"),
    "weights only": (
        lambda p: torch.save({"model": torch.load(p, weights_only=True)["model"]}, p),
        "holds no trainer state",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_bad_last_checkpoint_falls_back_to_the_newest_that_loads(
    finished_run, tmp_path, caplog, breakage
):
    run = shutil.copytree(finished_run, tmp_path / "run")  # keeps modification times
    breaker, reason = BREAKAGES[breakage]
    breaker(run / "model_final.pth")
    trainer = _resume(run, caplog)
    assert trainer.start_iter == 6
    assert _weights_equal(trainer.model, run / "model_0000005.pth")
    assert f"skipping {run / 'model_final.pth'}: " in caplog.text and reason in caplog.text


def test_empty_tag_and_no_tag_resume_from_the_newest_file(finished_run, tmp_path, caplog):
    run = shutil.copytree(finished_run, tmp_path / "run")
    (run / "model_final.pth").unlink()
    older = run / "model_0000003.pth"
    newest = max(p.stat().st_mtime_ns for p in run.iterdir())
    os.utime(older, ns=(newest + 10**9,) * 2)  # now the most recent write
    (run / "last_checkpoint").write_text("")
    trainer = _resume(run, caplog)
    assert "last_checkpoint: the tag file is empty" in caplog.text
    assert trainer.start_iter == 4 and _weights_equal(trainer.model, older)

    (run / "last_checkpoint").unlink()
    assert _resume(run, caplog).start_iter == 4


def test_no_loadable_checkpoint_is_an_error_not_a_fresh_start(finished_run, tmp_path, caplog):
    run = shutil.copytree(finished_run, tmp_path / "run")
    for path in run.glob("model_*.pth"):
        _truncate(path)
    trainer = MattingTrainer(ckpt_cfg(run, "train.max_iter=8"))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(CheckpointError, match=f"no checkpoint in {run} can be loaded") as info:
        trainer.resume_or_load(resume=True)
    for name in ("model_final.pth", "model_0000005.pth", "model_0000001.pth"):
        assert f"{run / name}: not a PyTorch checkpoint" in str(info.value)
    assert trainer.start_iter == 0
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_empty_folder_starts_fresh(ckpt_datasets, tmp_path, caplog):
    trainer = _resume(tmp_path, caplog)
    assert trainer.start_iter == 0 and f"No checkpoint in {tmp_path}" in caplog.text


def test_max_to_keep_holds_across_restarts(ckpt_datasets, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # periodic checkpoints an earlier, longer run left behind
    for it in (10, 11, 12):
        (run / f"model_{it:07d}.pth").write_bytes(b"stale")
        os.utime(run / f"model_{it:07d}.pth", (1, 1))
    opts = ("train.checkpointer.period=1", "train.checkpointer.max_to_keep=2")
    _train(run, "train.max_iter=3", *opts)
    assert _periodic(run) == ["model_0000001.pth", "model_0000002.pth"]
    _train(run, "train.max_iter=5", *opts, resume=True)
    assert _periodic(run) == ["model_0000003.pth", "model_0000004.pth"]
    assert (run / "model_final.pth").is_file()


def test_prune_keeps_the_newest_and_the_tagged_file(tmp_path):
    for i, name in enumerate(["model_0000009.pth", "model_0000001.pth", "model_0000002.pth",
                              "model_final.pth", "model_best.pth", "other_0000003.pth"]):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (100 + i, 100 + i))
    (tmp_path / "last_checkpoint").write_text("model_0000009.pth")
    deleted = prune_checkpoints(tmp_path, keep=1)
    assert [p.name for p in deleted] == ["model_0000001.pth"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "last_checkpoint", "model_0000002.pth", "model_0000009.pth", "model_best.pth",
        "model_final.pth", "other_0000003.pth",
    ]
    with pytest.raises(ValueError, match="max_to_keep must be at least 1, got 0"):
        prune_checkpoints(tmp_path, keep=0)


def test_prune_recognises_the_tagged_file_under_a_dotted_folder_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for i, name in enumerate(["model_0000003.pth", "model_0000001.pth", "model_0000002.pth"]):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (100 + i, 100 + i))
    (tmp_path / "last_checkpoint").write_text("model_0000003.pth")  # the oldest
    prune_checkpoints("./", keep=1)
    assert sorted(p.name for p in tmp_path.glob("model_*")) == [
        "model_0000002.pth", "model_0000003.pth"
    ]
