#!/usr/bin/env python
"""The check to run on a new CUDA machine: every CUDA path of the project once, in minutes.

On a small synthetic set: AMP training of the quick schedule on 2 GPUs (1 where only one
exists), ``--eval-only`` of the result, ``predict`` in fp32 / fp16 / bf16, one CUDA benchmark
row and the GPU-marked tests. Prints one table (check, pass/fail, seconds, peak CUDA memory
used on all GPUs above the idle level, sampled every 0.1 s) and exits 1 if a check failed.
Without CUDA it says so and exits 0.

    python tools/gpu_check.py [--output DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "configs/quick_schedules/mematte_tiny_synthetic.py")
TOOLS = REPO / "tools"


@dataclass
class Check:
    name: str
    command: list[str]


@dataclass
class Outcome:
    name: str
    passed: bool
    seconds: float
    peak_mb: float
    detail: str


class PeakMemory:
    """Peak of the memory used on all CUDA devices (any process) above the level at start."""

    def __init__(self, period: float = 0.1):
        self.period = period
        self.devices = range(torch.cuda.device_count())
        self.baseline = self._used()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _used(self) -> int:
        return sum(total - free for free, total in map(torch.cuda.mem_get_info, self.devices))

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.peak = max(self.peak, self._used() - self.baseline)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def checks(work: Path, gpus: int) -> list[Check]:
    """The commands, in order; each later one uses the weights the training writes."""
    python = sys.executable
    train_dir, weights = work / "train", work / "train/model_final.pth"
    test = work / "datasets/synthetic/test"
    run = ["train.device=cuda", "train.max_iter=20", "train.eval_period=0",
           "train.checkpointer.period=20", "train.vis_period=0", "train.log_period=5"]
    predict = [python, str(TOOLS / "predict.py"), "--config-file", QUICK, "--weights",
               str(weights), "--input", str(test / "image"), "--trimap", str(test / "trimap"),
               "--device", "cuda"]
    return [
        Check(f"train, AMP, {gpus} GPU(s)",
              [python, str(TOOLS / "lazyconfig_train_net.py"), "--config-file", QUICK,
               "--num-gpus", str(gpus), *run, f"train.output_dir={train_dir}"]),
        Check("--eval-only",
              [python, str(TOOLS / "lazyconfig_train_net.py"), "--config-file", QUICK,
               "--eval-only", "train.device=cuda", f"train.output_dir={work / 'eval'}",
               f"train.init_checkpoint={weights}"]),
        *(Check(f"predict {p}", [*predict, "--precision", p, "--output", str(work / p)])
          for p in ("fp32", "fp16", "bf16")),
        Check("benchmark row",
              [python, str(TOOLS / "benchmark.py"), "--models", "mematte_s", "--sizes", "1024",
               "--device", "cuda", "--dtypes", "fp16", "--repeats", "2",
               "--output", str(work / "benchmark")]),
        Check("GPU-marked tests", [python, "-m", "pytest", "-m", "gpu", "-q", "-p",
                                   "no:cacheprovider", str(REPO / "tests")]),
    ]


def run_check(check: Check, env: dict) -> Outcome:
    start = time.perf_counter()
    with PeakMemory() as memory:
        done = subprocess.run(check.command, env=env, cwd=REPO, capture_output=True, text=True)
    lines = (done.stderr or done.stdout).strip().splitlines()
    detail = "" if done.returncode == 0 else (lines[-1] if lines else f"exit {done.returncode}")
    return Outcome(check.name, done.returncode == 0, time.perf_counter() - start,
                   memory.peak / 2**20, detail)


def table(outcomes: list[Outcome]) -> str:
    rows = [f"{'check':<24} {'result':<6} {'seconds':>8} {'peak CUDA MB':>13}"]
    for o in outcomes:
        rows.append(f"{o.name:<24} {'pass' if o.passed else 'FAIL':<6} {o.seconds:>8.1f} "
                    f"{o.peak_mb:>13.0f}" + (f"  {o.detail}" if o.detail else ""))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check (run it on a CUDA machine)")
        return 0
    from mematte_d2.data.synthetic import generate_synthetic_dataset

    work = Path(args.output or tempfile.mkdtemp(prefix="mematte_gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    generate_synthetic_dataset(work / "datasets/synthetic", num_train=8, num_bg=4, num_test=4,
                               size=256, test_size=320, seed=0)
    env = dict(os.environ, MEMATTE_DATASETS=str(work / "datasets"))
    gpus = min(2, torch.cuda.device_count())
    print(f"gpu_check: {torch.cuda.device_count()} CUDA device(s), "
          f"{torch.cuda.get_device_name(0)}; work folder {work}", flush=True)
    outcomes = []
    for check in checks(work, gpus):
        outcomes.append(run_check(check, env))
        print(table(outcomes[-1:]).splitlines()[-1], flush=True)
    print("\n" + table(outcomes))
    if not (args.keep or args.output):
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
