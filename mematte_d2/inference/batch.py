"""Matting a list of images as one rank of a run over many processes or machines.

Each rank takes every world-size-th image of the sorted list (rank r: items r, r + W, ...),
writes its outputs itself (atomically, so an output that exists is complete) and, with
`skip_existing`, leaves out the images whose outputs all exist: a killed run resumes where it
stopped. At the end every rank's `ShardReport` is gathered (gloo, also under NCCL) and rank 0
prints one summary: counts, each failed file with its reason and rank, and the throughput.
"""

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from detectron2.utils import comm
from tqdm import tqdm

from mematte_d2.cli.common import describe_error
from mematte_d2.inference.file_pairs import Job

__all__ = ["ShardReport", "gather_reports", "run_shard", "shard", "summarize"]


@dataclass
class ShardReport:
    """What one rank did: images computed, passed over as complete, failed (with reasons)."""

    rank: int
    assigned: int = 0
    written: int = 0
    complete: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def shard(items: Sequence, rank: int, world_size: int) -> list:
    """Rank `rank`'s share of `items`: every `world_size`-th item from index `rank`."""
    return list(items[rank::world_size])


def run_shard(
    jobs: Sequence[Job],
    process: Callable[[Job], str],
    outputs_of: Callable[[Job], list[Path]],
    skip_existing: bool = False,
    rank: int = 0,
) -> ShardReport:
    """Run ``process(job)`` (which writes the job's outputs and returns a one-line summary) on
    each job; a failure is recorded with its reason and the next job runs.

    With `skip_existing`, a job whose outputs (``outputs_of(job)``) all exist is not run: the
    outputs are written atomically, so an existing one is complete (an interrupted write
    leaves only a hidden temporary file, which is not an output).
    """
    report = ShardReport(rank=rank, assigned=len(jobs))
    start = time.perf_counter()
    with tqdm(jobs, desc="matting", unit="img", disable=rank != 0) as bar:
        for job in bar:
            if job.error:
                report.failures.append((str(job.image), job.error))
                bar.write(f"FAILED {job.image}: {job.error}", file=sys.stderr)
                continue
            if skip_existing and all(path.is_file() for path in outputs_of(job)):
                report.complete += 1
                continue
            try:
                summary = process(job)
            except Exception as e:  # one bad file must not stop the batch
                reason = describe_error(e)
                report.failures.append((str(job.image), reason))
                bar.write(f"FAILED {job.image}: {reason}", file=sys.stderr)
                continue
            report.written += 1
            bar.set_postfix_str(summary)
            bar.write(f"{job.image.name}: {summary}")
    report.seconds = time.perf_counter() - start
    return report


def gather_reports(report: ShardReport) -> list[ShardReport]:
    """Every rank's report, in rank order, on every rank (one all_gather_object)."""
    return sorted(comm.all_gather(report), key=lambda r: r.rank)


def summarize(reports: list[ShardReport], out_dir: Path) -> tuple[str, str]:
    """The run's summary as (stdout text, stderr text): counts and throughput (over the
    slowest rank's time), then each failed file with its reason (and rank, when several)."""
    wall_seconds = max(r.seconds for r in reports)
    total = sum(r.assigned for r in reports)
    written = sum(r.written for r in reports)
    complete = sum(r.complete for r in reports)
    lines = [f"{written} of {total} images written to {out_dir}"]
    if complete:
        lines.append(f"{complete} already complete, passed over (--skip-existing)")
    rate = f", {written / wall_seconds:.2f} images/s" if written and wall_seconds > 0 else ""
    processes = f" on {len(reports)} processes" if len(reports) > 1 else ""
    lines.append(f"{written} images computed in {wall_seconds:.1f} s{processes}{rate}")
    if len(reports) > 1:
        lines += [f"  rank {r.rank}: {r.written} written, {r.complete} complete, "
                  f"{len(r.failures)} failed in {r.seconds:.1f} s" for r in reports]
    failures = sorted((path, reason, r.rank) for r in reports for path, reason in r.failures)
    errors = []
    if failures:
        errors.append(f"{len(failures)} failed:")
        errors += [f"  {path}: {reason}" + (f" (rank {rank})" if len(reports) > 1 else "")
                   for path, reason, rank in failures]
    return "\n".join(lines), "\n".join(errors)
