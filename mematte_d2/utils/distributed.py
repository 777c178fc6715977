"""Start, watch and end the processes of a distributed run (gloo on CPU, NCCL on CUDA).

detectron2's ``launch`` picks NCCL whenever CUDA is available; a CPU run on a CUDA machine
then fails, as NCCL handles only CUDA tensors. :func:`launch` here takes the backend from the
device the run trains on. Every rank also runs a :class:`RankWatchdog`, so that a rank that
dies or fails stops the others within a bounded time with an error naming it, even across
machines and with NCCL, whose collectives would otherwise wait for 30 minutes.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlparse

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.utils import comm

__all__ = [
    "LostRankError",
    "RankWatchdog",
    "backend_for",
    "broadcast_buffers_from_rank0",
    "finish_distributed",
    "free_port",
    "launch",
    "ranks_where",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=30)  # of a collective, as detectron2's launch

# Seconds without a heartbeat after which a rank counts as lost.
RANK_TIMEOUT_ENV = "MEMATTE_RANK_TIMEOUT"
_DEFAULT_RANK_TIMEOUT = 30.0

_watchdog: RankWatchdog | None = None


class LostRankError(RuntimeError):
    """Another rank of the job died or failed, so this one stopped too."""


def backend_for(device_type: str) -> str:
    """The process-group backend for a run on ``device_type``: NCCL for CUDA, else gloo."""
    return "nccl" if device_type == "cuda" else "gloo"


def free_port() -> int:
    """A TCP port free on this machine now (another process may take it before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(
    main_func: Callable,
    num_processes: int,
    *,
    device_type: str,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str | None = None,
    args: tuple = (),
    timeout: timedelta = DEFAULT_TIMEOUT,
    gpu: int | None = None,
):
    """Run ``main_func(*args)`` in `num_processes` processes on this machine (one per GPU on
    CUDA), as part of a job of ``num_machines * num_processes`` ranks.

    Like detectron2's ``launch``, except that the backend follows `device_type` and the GPU
    count is checked only for CUDA runs. Each CUDA process is bound to its GPU (its local
    rank, or `gpu` for a single process per machine, ``train.device=cuda:K``) before anything
    else touches CUDA. Returns main_func's result for a single process.
    """
    if num_processes < 1 or num_machines < 1 or not 0 <= machine_rank < num_machines:
        raise ValueError(
            f"--num-gpus {num_processes}, --num-machines {num_machines}, --machine-rank "
            f"{machine_rank}: need at least one process and 0 <= machine rank < machines"
        )
    if gpu is not None and num_processes > 1:
        raise ValueError(f"launch: gpu={gpu} names one GPU for {num_processes} processes")
    if device_type == "cuda" and num_processes > torch.cuda.device_count():
        raise ValueError(
            f"--num-gpus {num_processes} but this machine has {torch.cuda.device_count()} CUDA "
            "device(s); use fewer processes or train.device=cpu"
        )
    world_size = num_machines * num_processes
    if world_size == 1:
        if device_type == "cuda" and gpu is not None:
            torch.cuda.set_device(gpu)
        return main_func(*args)
    if dist_url in (None, "auto"):
        if num_machines > 1:
            raise ValueError("a job of several machines needs --dist-url tcp://HOST:PORT")
        dist_url = f"tcp://127.0.0.1:{free_port()}"
    mp.start_processes(
        _worker,
        nprocs=num_processes,
        args=(main_func, world_size, num_processes, machine_rank, dist_url, device_type, args,
              timeout, gpu),
        daemon=False,
    )
    return None


def _worker(local_rank: int, main_func: Callable, world_size: int, num_processes: int,
            machine_rank: int, dist_url: str, device_type: str, args: tuple,
            timeout: timedelta, gpu: int | None = None) -> None:
    rank = machine_rank * num_processes + local_rank
    if device_type == "cuda":
        torch.cuda.set_device(local_rank if gpu is None else gpu)
    dist.init_process_group(backend_for(device_type), init_method=dist_url,
                            world_size=world_size, rank=rank, timeout=timeout)
    comm.create_local_process_group(num_processes)
    global _watchdog
    _watchdog = RankWatchdog.for_url(dist_url, rank, world_size)
    try:
        comm.synchronize()
        main_func(*args)
        finish_distributed()
    except BaseException as exc:
        lost = {}
        if _watchdog is not None and _is_communication_error(exc):
            lost = _watchdog.wait_for_lost_ranks()
        finish_distributed(failed=exc)
        if lost:
            raise LostRankError(_describe_lost(rank, lost)) from exc
        raise


# What gloo, NCCL and the store say when a peer went away.
_COMMUNICATION_FAILURES = ("connection closed", "connection reset", "broken pipe", "nccl",
                           "gloo", "timed out", "timeout")


def _is_communication_error(exc: BaseException) -> bool:
    if isinstance(exc, dist.DistError):
        return True
    return isinstance(exc, RuntimeError) and any(
        word in str(exc).lower() for word in _COMMUNICATION_FAILURES
    )


def _describe_lost(rank: int, lost: dict[int, str]) -> str:
    return f"rank {rank} stopped because " + "; ".join(
        f"rank {r} {why}" for r, why in sorted(lost.items())
    )


class RankWatchdog:
    """Heartbeats of every rank through the job's rendezvous store.

    A background thread bumps this rank's counter every `interval` seconds and reads the
    others'. A rank counts as lost when it reported a failure, when its counter stood still
    for `rank_timeout` seconds, or (for rank 0, which hosts the store) when the store stopped
    answering. When a rank is lost and this process has not ended `rank_timeout` seconds
    later (e.g. blocked in a collective that waits for the lost rank), it exits with status 1
    after logging which rank was lost.
    """

    PREFIX = "mematte/rank_watchdog"

    def __init__(self, store: dist.Store, rank: int, world_size: int,
                 rank_timeout: float | None = None, interval: float = 0.5):
        if rank_timeout is None:
            rank_timeout = float(os.environ.get(RANK_TIMEOUT_ENV, _DEFAULT_RANK_TIMEOUT))
        self.store, self.rank, self.world_size = store, rank, world_size
        self.rank_timeout, self.interval = rank_timeout, interval
        self.lost: dict[int, str] = {}
        self._lost_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rank-watchdog", daemon=True)
        self._thread.start()

    @classmethod
    def for_url(cls, dist_url: str, rank: int, world_size: int) -> RankWatchdog | None:
        """A watchdog on its own client of the tcp:// (or env://) rendezvous store, or None
        for other init methods."""
        if dist_url.startswith("env://"):
            host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
        elif dist_url.startswith("tcp://"):
            parsed = urlparse(dist_url)
            host, port = parsed.hostname, parsed.port
        else:
            logger.warning("no rank watchdog for %s: use tcp:// to have lost ranks detected",
                           dist_url)
            return None
        store = dist.TCPStore(host, port, is_master=False, timeout=timedelta(seconds=10),
                              wait_for_workers=False)
        return cls(store, rank, world_size)

    def _key(self, kind: str, rank: int) -> str:
        return f"{self.PREFIX}/{kind}/{rank}"

    def _run(self) -> None:
        others = [r for r in range(self.world_size) if r != self.rank]
        beats = dict.fromkeys(others, -1)
        changed = dict.fromkeys(others, time.monotonic())
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            try:
                self.store.add(self._key("beat", self.rank), 1)
                for r in others:
                    beat = self.store.add(self._key("beat", r), 0)
                    if beat != beats[r]:
                        beats[r], changed[r] = beat, now
                    else:  # a still counter: finished, failed, slow or gone?
                        self._check_quiet_rank(r, now - changed[r])
            except Exception as exc:  # the store lives in rank 0's process
                if self.rank != 0:
                    self._report(0, f"was lost (its rendezvous store stopped answering: {exc})")
            if self.lost and not self._stop.is_set():
                self._exit_if_stuck(now)

    def _check_quiet_rank(self, rank: int, quiet_for: float) -> None:
        if self.store.check([self._key("done", rank)]):
            return
        if self.store.check([self._key("failed", rank)]):
            reason = self.store.get(self._key("failed", rank)).decode()
            self._report(rank, f"failed: {reason}")
        elif quiet_for > self.rank_timeout:
            self._report(rank, f"was lost (no heartbeat for {self.rank_timeout:g} s)")

    def _report(self, rank: int, why: str) -> None:
        if rank not in self.lost:
            self.lost[rank] = why
            logger.error("rank %d: rank %d %s", self.rank, rank, why)
            if self._lost_since is None:
                self._lost_since = time.monotonic()

    def _exit_if_stuck(self, now: float) -> None:
        if now - self._lost_since < self.rank_timeout:
            return
        message = _describe_lost(self.rank, self.lost) + " (still blocked after "
        message += f"{self.rank_timeout:g} s; exiting)"
        logger.error(message)
        print(f"LostRankError: {message}", file=sys.stderr, flush=True)
        os._exit(1)

    def wait_for_lost_ranks(self) -> dict[int, str]:
        """The ranks found lost, waiting up to one rank timeout for a verdict (called after a
        collective failed, which usually means that a peer just went away)."""
        deadline = time.monotonic() + self.rank_timeout + 2 * self.interval
        while not self.lost and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(self.interval / 2)
        return dict(self.lost)

    def stop(self, failure: BaseException | None = None) -> None:
        """End the heartbeats, telling the others whether this rank finished or failed."""
        self._stop.set()
        self._thread.join()
        try:
            if failure is None:
                self.store.set(self._key("done", self.rank), "1")
            else:
                self.store.set(self._key("failed", self.rank),
                               f"{type(failure).__name__}: {failure}"[:500])
        except Exception:  # the store is gone with rank 0: nobody is left to tell
            pass

    def wait_until_all_done(self) -> None:
        """Rank 0 hosts the store: keep it up until every rank has read its last key."""
        keys = [self._key("done", r) for r in range(self.world_size)]
        deadline = time.monotonic() + self.rank_timeout
        while time.monotonic() < deadline and not self.store.check(keys):
            time.sleep(self.interval / 5)


def ranks_where(flag: bool) -> list[int]:
    """The ranks on which `flag` is true (every rank calls this; one all-reduce)."""
    if comm.get_world_size() == 1:
        return [0] if flag else []
    votes = torch.zeros(comm.get_world_size(), dtype=torch.int32)
    votes[comm.get_rank()] = int(flag)
    dist.all_reduce(votes, group=comm._get_global_gloo_group())  # a CPU vote, also under NCCL
    return [r for r, v in enumerate(votes.tolist()) if v]


def broadcast_buffers_from_rank0(module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics), which are what rank 0's
    checkpoints hold. A no-op outside a multi-process run."""
    if comm.get_world_size() == 1:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def finish_distributed(failed: BaseException | None = None) -> None:
    """Tear the process groups down while the interpreter is alive.

    After success: wait for every rank first (a rank that returns early could otherwise exit
    while gloo still holds connections the others use). After a failure (`failed`): no
    collective at all, as the other ranks may be waiting in a different one; they learn of
    the failure through the watchdog or their broken connections.

    detectron2 keeps its own references to process groups (the per-machine group and a cached
    gloo group for gathers); they are dropped too, so that no group is left to be destroyed
    during interpreter shutdown, where gloo's threads can abort the process (SIGABRT).
    """
    global _watchdog
    if not (dist.is_available() and dist.is_initialized()):
        return
    if failed is None:
        comm.synchronize()
    if _watchdog is not None:
        _watchdog.stop(failed)
        if failed is None and _watchdog.rank == 0:
            _watchdog.wait_until_all_done()
        _watchdog = None
    if hasattr(comm, "_LOCAL_PROCESS_GROUP"):
        comm._LOCAL_PROCESS_GROUP = None
    cached_gloo_group = getattr(comm, "_get_global_gloo_group", None)
    if hasattr(cached_gloo_group, "cache_clear"):
        cached_gloo_group.cache_clear()
    dist.destroy_process_group()
    gc.collect()
