"""Parent side of the benchmark: run each case in a fresh Python process, never crash.

A case that fails (exception, killed by the out-of-memory killer, over its time limit) comes
back as a result with a ``status`` saying so; on a time-out the child's peak resident memory
so far is read before it is stopped, as a lower bound.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from mematte_d2.utils.process_memory import peak_rss_bytes

from .cases import InferenceCase, TrainCase

RESULT_PREFIX = "BENCHMARK_RESULT "
POLL_SECONDS = 0.5


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env


def _failure(returncode: int, stderr: str) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (out of memory?)" if -returncode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "error: " + (lines[-1][:200] if lines else f"exit code {returncode}")


def run_case(case: InferenceCase | TrainCase, timeout: float | None = None) -> dict:
    """Measure ``case`` in a new interpreter; returns the child's measurements plus
    ``status`` ("ok", "skipped: ...", "timeout (> N s)", "killed by ...", "error: ..."),
    ``wall_s`` and the 1-minute load average when the case started (``load_1m``: other work
    skews latency)."""
    args = [sys.executable, "-m", "mematte_d2.benchmark.measure", case.to_json()]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(args, stdout=out, stderr=err, env=_child_env(case.threads))
        peak_so_far = None
        while child.poll() is None:
            if timeout is not None and time.monotonic() - start > timeout:
                peak_so_far = peak_rss_bytes(child.pid)
                child.kill()
                child.wait()
                break
            time.sleep(POLL_SECONDS)
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if peak_so_far is not None or (timeout is not None and child.returncode == -signal.SIGKILL
                                   and wall > timeout):
        result = {"status": f"timeout (> {timeout:g} s)", "wall_s": wall, "load_1m": load}
        if peak_so_far is not None:
            result["peak_memory_lower_bound_bytes"] = peak_so_far
        return result
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
            return {"status": "ok", "wall_s": wall, "load_1m": load, **result}
    return {"status": _failure(child.returncode, stderr), "wall_s": wall, "load_1m": load}
