"""A data set over several ranks: the split, resuming with --skip-existing, the summary, and a
2-process CPU run of the predict command against a 1-process one."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch.multiprocessing as mp
from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS

from mematte_d2.cli.predict import _lost_rank, build_parser
from mematte_d2.cli.predict import main as predict_main
from mematte_d2.inference.batch import ShardReport, run_shard, shard, summarize
from mematte_d2.inference.file_pairs import Job

REPO = Path(__file__).resolve().parents[2]


def test_shard_takes_every_world_size_th_item_from_the_rank():
    items = [f"im{i}" for i in range(7)]
    shards = [shard(items, r, 3) for r in range(3)]
    assert shards == [["im0", "im3", "im6"], ["im1", "im4"], ["im2", "im5"]]
    assert sorted(sum(shards, [])) == items


def test_skip_existing_runs_only_jobs_without_every_output(tmp_path, capsys):
    jobs = [Job(tmp_path / f"{s}.png", None) for s in "abcd"]
    jobs.append(Job(tmp_path / "e.png", None, error="no trimap named e_trimap.*"))

    def outputs_of(job):
        return [tmp_path / f"{job.image.stem}_alpha.png", tmp_path / f"{job.image.stem}_cut.png"]

    (tmp_path / "a_alpha.png").write_bytes(b"done")
    (tmp_path / "a_cut.png").write_bytes(b"done")
    (tmp_path / "b_alpha.png").write_bytes(b"done")  # b's cutout is missing: b runs again
    (tmp_path / ".c_alpha.png.1a2b3c4d.tmp").write_bytes(b"half")  # a write that was killed
    ran = []

    def process(job):
        ran.append(job.image.stem)
        if job.image.stem == "d":
            raise ValueError("cannot write d_alpha.png: No space left on device")
        return "ok"

    report = run_shard(jobs, process, outputs_of, skip_existing=True, rank=1)
    assert ran == ["b", "c", "d"]
    assert (report.rank, report.assigned, report.written, report.complete) == (1, 5, 2, 1)
    assert report.failures == [
        (str(tmp_path / "d.png"), "cannot write d_alpha.png: No space left on device"),
        (str(tmp_path / "e.png"), "no trimap named e_trimap.*"),
    ]
    assert run_shard(jobs[:1], process, outputs_of, skip_existing=False).written == 1


def test_summary_counts_every_rank_and_names_each_failure_with_its_rank():
    reports = [
        ShardReport(rank=1, assigned=3, written=1, complete=1, failures=[("x/b.png", "bad")],
                    seconds=4.0),
        ShardReport(rank=0, assigned=3, written=3, seconds=2.0),
    ]
    out, err = summarize(sorted(reports, key=lambda r: r.rank), Path("out"))
    assert out.splitlines()[:3] == [
        "4 of 6 images written to out",
        "1 already complete, passed over (--skip-existing)",
        "4 images computed in 4.0 s on 2 processes, 1.00 images/s",
    ]
    assert "  rank 1: 1 written, 1 complete, 1 failed in 4.0 s" in out
    assert err == "1 failed:\n  x/b.png: bad (rank 1)"


def test_a_dead_rank_is_named_with_its_global_rank():
    args = build_parser().parse_args(
        ["--config-file", "c.py", "--input", "i", "--trimap", "t", "--output", "o",
         "--num-gpus", "2", "--num-machines", "2", "--machine-rank", "1"])
    dead = mp.ProcessExitedException("process 1 terminated with signal SIGKILL",
                                     error_index=1, error_pid=4321, exit_code=-9,
                                     signal_name="SIGKILL")
    assert _lost_rank(dead, args) == ("rank 3 (pid 4321) stopped the run: process 1 "
                                      "terminated with signal SIGKILL")


def _trimap(h, w):
    tri = np.full((h, w), 128, np.uint8)
    tri[: h // 4], tri[-h // 4 :] = 0, 255
    return tri


@pytest.mark.integration
def test_two_cpu_processes_resume_and_match_one_process(tmp_path, weights, capsys):
    """Outputs of half the images exist (a run stopped halfway, one write killed): 2 CPU
    processes with --skip-existing compute only the others, byte-identical to 1 process, and
    name the file that failed on its rank."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    stems = [f"im{i}" for i in range(5)]
    for stem in stems:
        cv2.imwrite(str(src / f"{stem}.png"), rng.integers(0, 256, (32, 40, 3), np.uint8))
        cv2.imwrite(str(src / f"{stem}_trimap.png"), _trimap(32, 40))
    (src / "im5.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")  # rank 1's third file
    cv2.imwrite(str(src / "im5_trimap.png"), _trimap(32, 40))
    common = ["--config-file", MEMATTE_CONFIG, "--weights", weights, "--device", "cpu",
              "--input", str(src), "--trimap", str(src)]
    assert predict_main([*common, "--output", str(tmp_path / "one"), *MEMATTE_OPTS]) == 1
    capsys.readouterr()

    out = tmp_path / "two"
    out.mkdir()
    for stem in ("im0", "im3"):  # one done by each rank before the stop
        shutil.copy(tmp_path / "one" / f"{stem}_alpha.png", out)
    (out / ".im2_alpha.png.0badf00d.tmp").write_bytes(b"killed while writing")
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "predict.py"), *common, "--output", str(out),
         "--skip-existing", "--num-gpus", "2", *MEMATTE_OPTS],
        capture_output=True, text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 1, proc.stderr
    assert "3 of 6 images written to" in proc.stdout
    assert "2 already complete, passed over (--skip-existing)" in proc.stdout
    assert "rank 0: 2 written, 1 complete, 0 failed" in proc.stdout
    assert "rank 1: 1 written, 1 complete, 1 failed" in proc.stdout
    assert f"1 failed:\n  {src / 'im5.png'}: " in proc.stderr
    assert "not a readable image" in proc.stderr and "(rank 1)" in proc.stderr
    for stem in stems:
        assert (out / f"{stem}_alpha.png").read_bytes() == \
            (tmp_path / "one" / f"{stem}_alpha.png").read_bytes(), stem
    assert all((out / name).stat().st_mtime_ns == ns for name, ns in before.items()
               if not name.endswith(".tmp"))
