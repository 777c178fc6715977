"""``--num-machines 2 --machine-rank 0|1 --dist-url tcp://...`` as two commands on loopback:
one job, the same as one 2-process launch; a machine that dies stops the other, named."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from tiny_models import QUICK, REPO, TINY_TRAIN_OPTS, cli_env

from mematte_d2.config import apply_overrides
from mematte_d2.utils.distributed import RANK_TIMEOUT_ENV, free_port

TRAIN_NET = str(REPO / "tools/lazyconfig_train_net.py")
pytestmark = pytest.mark.integration  # training commands of a few seconds each


def _command(output_dir, max_iter: int, *launch: str) -> list[str]:
    return [sys.executable, TRAIN_NET, "--config-file", QUICK, *launch, *TINY_TRAIN_OPTS,
            f"train.output_dir={output_dir}", f"train.max_iter={max_iter}",
            "train.checkpointer.period=2", "train.eval_period=0"]


def _machine(output_dir, max_iter: int, rank: int, url: str, env: dict) -> subprocess.Popen:
    """One machine's command, in its own session so that the whole machine can be killed."""
    launch = ["--num-gpus", "1", "--num-machines", "2", "--machine-rank", str(rank),
              "--dist-url", url]
    return subprocess.Popen(_command(output_dir, max_iter, *launch), env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _weights(path) -> dict:
    return torch.load(path, weights_only=False)["model"]


def test_two_machine_commands_make_one_job(tiny_datasets_root, tmp_path):
    env = cli_env(tiny_datasets_root)
    one = subprocess.run(_command(tmp_path / "one", 4, "--num-gpus", "2"), env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=900)
    assert one.returncode == 0, one.stderr[-3000:]

    url = f"tcp://127.0.0.1:{free_port()}"
    machines = [_machine(tmp_path / "two", 4, rank, url, env) for rank in (0, 1)]
    for proc in machines:
        err = proc.communicate(timeout=900)[1]
        assert proc.returncode == 0, err[-3000:]
    a, b = _weights(tmp_path / "one/model_final.pth"), _weights(tmp_path / "two/model_final.pth")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_killed_machine_stops_the_other_naming_the_lost_rank(tiny_datasets_root, tmp_path):
    env = dict(cli_env(tiny_datasets_root), **{RANK_TIMEOUT_ENV: "5"})
    url = f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "run"
    rank0, rank1 = (_machine(out, 100000, rank, url, env) for rank in (0, 1))
    deadline = time.monotonic() + 600
    while not (out / "last_checkpoint").is_file():
        assert rank0.poll() is None and rank1.poll() is None, "a machine ended early"
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.1)
    os.killpg(rank1.pid, signal.SIGKILL)  # machine 1 dies: its launcher and its rank
    rank1.communicate()
    killed = time.monotonic()
    try:
        err = rank0.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        os.killpg(rank0.pid, signal.SIGKILL)
        raise AssertionError("rank 0 still runs 2 minutes after rank 1 died") from None
    stopped_after = time.monotonic() - killed
    assert rank0.returncode != 0
    assert "rank 0 stopped because rank 1 was lost (no heartbeat for 5 s)" in err, err[-3000:]
    assert stopped_after < 60

    cfg = apply_overrides(LazyConfig.load(QUICK), TINY_TRAIN_OPTS)
    model = instantiate(cfg.model)
    checkpoint = out / (out / "last_checkpoint").read_text().strip()
    model.load_state_dict(_weights(checkpoint))  # strict: the file is complete
