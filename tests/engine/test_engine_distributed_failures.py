"""A failure on one rank ends the whole job quickly, named on the other rank, never a hang."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_models import REPO, cli_env

from mematte_d2.utils.distributed import free_port

pytestmark = pytest.mark.integration

JOBS = str(Path(__file__).with_name("dist_jobs.py"))


def _run_two_ranks(scenario: str, env: dict, limit: float = 240.0):
    url = f"tcp://127.0.0.1:{free_port()}"
    procs = [
        subprocess.Popen([sys.executable, JOBS, scenario, str(rank), url], env=env, cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for rank in (0, 1)
    ]
    start = time.monotonic()
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=limit)[1])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise AssertionError(f"{scenario}: the job hung (> {limit} s)") from None
    return [p.returncode for p in procs], outputs, time.monotonic() - start


def test_error_on_one_rank_stops_the_other_naming_it(tmp_path):
    codes, (err0, err1), _ = _run_two_ranks("raise", cli_env(tmp_path))
    assert codes[1] != 0 and "ValueError: rank 1 broke on purpose" in err1
    assert codes[0] != 0, err0[-2000:]
    assert "LostRankError: rank 0 stopped because rank 1 failed: ValueError: rank 1 broke" \
        in err0, err0[-2000:]


@pytest.mark.slow
def test_nonfinite_loss_on_one_rank_raises_on_every_rank(tmp_path):
    codes, errors, _ = _run_two_ranks("nonfinite", cli_env(tmp_path))
    for rank, (code, err) in enumerate(zip(codes, errors)):
        assert code != 0
        assert "FloatingPointError: loss became non-finite at iteration 0 on rank(s) [1]" \
            in err, f"rank {rank}: {err[-2000:]}"
