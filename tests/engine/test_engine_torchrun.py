"""Training started by torchrun (env:// rendezvous) is the job ``--num-gpus`` starts, and a
worker lost under ``--max-restarts`` is restarted from the last good checkpoint."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_models import QUICK, REPO, TINY_TRAIN_OPTS, cli_env

TRAIN_NET = str(REPO / "tools/lazyconfig_train_net.py")
JOB = str(Path(__file__).with_name("torchrun_job.py"))
DIST_JOBS = str(Path(__file__).with_name("dist_jobs.py"))
MAX_ITER = 6
pytestmark = pytest.mark.integration


def _opts(output_dir: Path) -> list[str]:
    return ["--config-file", QUICK, *TINY_TRAIN_OPTS, f"train.output_dir={output_dir}",
            f"train.max_iter={MAX_ITER}", "train.checkpointer.period=2", "train.eval_period=0"]


def _run(command: list[str], env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def _torchrun(*options: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", "2", "--monitor-interval", "0.2", *options]


def _weights(output_dir: Path) -> dict:
    return torch.load(output_dir / "model_final.pth", weights_only=False)["model"]


@pytest.fixture(scope="module")
def num_gpus_weights(tiny_datasets_root, tmp_path_factory) -> dict:
    """The final weights of the same job started by ``--num-gpus 2``."""
    out = tmp_path_factory.mktemp("num_gpus")
    _run([sys.executable, TRAIN_NET, "--num-gpus", "2", *_opts(out)],
         cli_env(tiny_datasets_root))
    return _weights(out)


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_torchrun_trains_the_weights_of_num_gpus(tiny_datasets_root, tmp_path,
                                                 num_gpus_weights):
    _run(_torchrun(TRAIN_NET, *_opts(tmp_path)), cli_env(tiny_datasets_root))
    _assert_same(_weights(tmp_path), num_gpus_weights)


def test_a_lost_worker_is_restarted_from_the_last_checkpoint(tiny_datasets_root, tmp_path,
                                                             num_gpus_weights):
    env = dict(cli_env(tiny_datasets_root), MEMATTE_TEST_DIE_AT="4")
    done = _run(_torchrun("--max-restarts", "1", JOB, *_opts(tmp_path)), env)
    log = (tmp_path / "log.txt").read_text()
    assert "Resumed from" in log and "model_000000" in log, log[-3000:]
    assert "failed (exitcode: 3) local_rank: 1" in done.stderr, done.stderr[-3000:]  # the fault
    _assert_same(_weights(tmp_path), num_gpus_weights)  # as if it had never been lost


def test_a_failing_rank_is_named_on_the_others(tmp_path):
    """torchrun's agent stops the job; the survivor's broken collective names the rank at
    fault and its error, which torch's "Connection closed by peer" does not."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "--monitor-interval", "5", DIST_JOBS, "raise"]
    done = subprocess.run(command, env=cli_env(tmp_path), cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    assert "ValueError: rank 1 broke on purpose" in done.stderr
    assert ("LostRankError: rank 0 stopped because rank 1 failed: ValueError: rank 1 broke on "
            "purpose") in done.stderr, done.stderr[-3000:]
