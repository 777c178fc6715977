"""Start, watch and end the processes of a distributed run (gloo on CPU, NCCL on CUDA).

detectron2's ``launch`` picks NCCL whenever CUDA is available; a CPU run on a CUDA machine
then fails, as NCCL handles only CUDA tensors. :func:`launch` here takes the backend from the
device the run trains on. Every rank also runs a :class:`RankWatchdog`, so that a rank that
dies or fails stops the others within a bounded time with an error naming it, even across
machines and with NCCL, whose collectives would otherwise wait for 30 minutes.

A process that ``torchrun`` (or a cluster launcher setting its variables) started is one rank
already: :func:`launch` joins the job through ``env://`` instead of starting processes, and
the watchdog only names a rank that failed: torchrun's agent watches, stops and restarts the
processes (docs/design.md, "Launch", says which parts of the watchdog remain, and why).
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
from typing import NamedTuple
from urllib.parse import urlparse

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.utils import comm

__all__ = [
    "LostRankError",
    "RankWatchdog",
    "TorchrunRank",
    "backend_for",
    "broadcast_buffers_from_rank0",
    "finish_distributed",
    "free_port",
    "launch",
    "ranks_where",
    "restart_count",
    "torchrun_rank",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=30)  # of a collective, as detectron2's launch

# Seconds without a heartbeat after which a rank counts as lost.
RANK_TIMEOUT_ENV = "MEMATTE_RANK_TIMEOUT"
_DEFAULT_RANK_TIMEOUT = 30.0
# Seconds a rank whose collective broke waits for a failure report without heartbeats (a rank
# that fails writes it before its connections close).
_REPORT_WAIT = 2.0

_watchdog: RankWatchdog | None = None


class LostRankError(RuntimeError):
    """Another rank of the job died or failed, so this one stopped too."""


def backend_for(device_type: str) -> str:
    """The process-group backend for a run on ``device_type``: NCCL for CUDA, else gloo."""
    return "nccl" if device_type == "cuda" else "gloo"


class TorchrunRank(NamedTuple):
    """The place torchrun gave this process in the job (from its environment variables)."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int


# Set by torchrun for each worker (with MASTER_ADDR / MASTER_PORT for env://).
_TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def torchrun_rank() -> TorchrunRank | None:
    """This process's rank when torchrun (or a launcher setting its variables) started it,
    else None. Raises ValueError when only some of the variables are set."""
    present = [name for name in _TORCHRUN_VARS if name in os.environ]
    if not present:
        return None
    missing = [name for name in _TORCHRUN_VARS if name not in os.environ]
    if missing:
        raise ValueError(
            f"{', '.join(present)} set but not {', '.join(missing)}: start the job under "
            "torchrun (or set all of them for env://), or unset them to use --num-gpus"
        )
    try:
        rank, local_rank, world_size = (int(os.environ[k])
                                        for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
        local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    except ValueError as e:
        raise ValueError(f"torchrun's RANK / LOCAL_RANK / WORLD_SIZE must be integers: {e}") \
            from None
    if not (0 <= rank < world_size and 0 <= local_rank < local_world_size <= world_size
            and world_size % local_world_size == 0):
        raise ValueError(
            f"RANK={rank}, LOCAL_RANK={local_rank}, WORLD_SIZE={world_size}, "
            f"LOCAL_WORLD_SIZE={local_world_size}: not one rank of a job of equal machines"
        )
    return TorchrunRank(rank, local_rank, world_size, local_world_size)


def restart_count() -> int:
    """How often torchrun restarted the job's processes (``--max-restarts``); 0 otherwise."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


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
    Under torchrun (:func:`torchrun_rank`) this process is one rank: it joins the job by
    ``env://`` and returns main_func's result; torchrun's options set the process counts.
    """
    under_torchrun = torchrun_rank()
    if under_torchrun is not None:
        if num_processes != 1 or num_machines != 1 or machine_rank != 0:
            raise ValueError(
                f"torchrun started this process as rank {under_torchrun.rank} of "
                f"{under_torchrun.world_size}: leave --num-gpus, --num-machines and "
                "--machine-rank out (torchrun's --nproc-per-node and --nnodes set them)"
            )
        return _launched_by_torchrun(main_func, under_torchrun, device_type, args, timeout)
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


def _launched_by_torchrun(main_func: Callable, place: TorchrunRank, device_type: str,
                          args: tuple, timeout: timedelta):
    if device_type == "cuda" and place.local_rank >= torch.cuda.device_count():
        raise ValueError(
            f"torchrun's LOCAL_RANK {place.local_rank} but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s); use a smaller --nproc-per-node"
        )
    if place.world_size == 1:
        return main_func(*args)
    # torchrun's store outlives a restart (--max-restarts): an attempt that read the keys of
    # the previous one would connect to its dead processes, so each attempt has its own.
    store, _, _ = next(dist.rendezvous("env://", place.rank, place.world_size, timeout=timeout))
    store = dist.PrefixStore(f"mematte/attempt_{restart_count()}", store)
    return _run_rank(main_func, place.rank, place.local_rank, place.local_world_size,
                     place.world_size, device_type, args, timeout, store=store)


def _worker(local_rank: int, main_func: Callable, world_size: int, num_processes: int,
            machine_rank: int, dist_url: str, device_type: str, args: tuple,
            timeout: timedelta, gpu: int | None = None) -> None:
    rank = machine_rank * num_processes + local_rank
    _run_rank(main_func, rank, local_rank, num_processes, world_size, device_type, args,
              timeout, dist_url=dist_url, gpu=gpu)


def _run_rank(main_func: Callable, rank: int, local_rank: int, local_size: int,
              world_size: int, device_type: str, args: tuple, timeout: timedelta, *,
              dist_url: str | None = None, store: dist.Store | None = None,
              gpu: int | None = None):
    """One rank: join the process group (by `dist_url`, with a heartbeat watchdog, or
    through torchrun's `store`, with a watchdog that only reads failure reports), run
    main_func, tear down. A broken collective is re-raised as LostRankError when the
    watchdog names the rank at fault."""
    if device_type == "cuda":
        torch.cuda.set_device(local_rank if gpu is None else gpu)
    dist.init_process_group(backend_for(device_type), init_method=dist_url, store=store,
                            world_size=world_size, rank=rank, timeout=timeout)
    comm.create_local_process_group(local_size)
    global _watchdog
    if store is None:
        _watchdog = RankWatchdog.for_url(dist_url, rank, world_size)
    else:
        _watchdog = RankWatchdog(dist.PrefixStore(RankWatchdog.PREFIX, store), rank,
                                 world_size, heartbeat=False)
    try:
        comm.synchronize()
        result = main_func(*args)
        finish_distributed()
        return result
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
    """Which rank of the job failed or was lost, through the job's rendezvous store.

    Every rank records in the store whether it finished or failed (with its error), so that
    a rank whose collective broke can name the rank at fault. With `heartbeat` (the
    processes :func:`launch` starts itself, where no agent watches them), a background thread
    also bumps this rank's counter every `interval` seconds and reads the others'. A rank then
    counts as lost when it reported a failure, when its counter stood still for
    `rank_timeout` seconds, or (for rank 0, which hosts the store) when the store stopped
    answering; when a rank is lost and this process has not ended `rank_timeout` seconds
    later (e.g. blocked in a collective that waits for the lost rank), it exits with status 1
    after logging which rank was lost. Under torchrun (no heartbeat) the agent does that.
    """

    PREFIX = "mematte/rank_watchdog"

    def __init__(self, store: dist.Store, rank: int, world_size: int,
                 rank_timeout: float | None = None, interval: float = 0.5,
                 heartbeat: bool = True):
        if rank_timeout is None:
            rank_timeout = float(os.environ.get(RANK_TIMEOUT_ENV, _DEFAULT_RANK_TIMEOUT))
        self.store, self.rank, self.world_size = store, rank, world_size
        self.rank_timeout, self.interval, self.heartbeat = rank_timeout, interval, heartbeat
        self.lost: dict[int, str] = {}
        self._lost_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rank-watchdog", daemon=True)
        if heartbeat:
            self._thread.start()

    @classmethod
    def for_url(cls, dist_url: str, rank: int, world_size: int) -> RankWatchdog | None:
        """A heartbeat watchdog on its own client of the tcp:// (or env://) rendezvous store,
        or None for other init methods."""
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
        return cls(dist.PrefixStore(cls.PREFIX, store), rank, world_size)

    def _key(self, kind: str, rank: int) -> str:
        return f"{kind}/{rank}"

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
        collective failed, which usually means that a peer just went away). Without heartbeat
        only a rank that reported its failure can be named."""
        if not self.heartbeat:
            deadline = time.monotonic() + _REPORT_WAIT
            while not self.lost and time.monotonic() < deadline:
                self._read_failures()
                time.sleep(self.interval / 2)
            return dict(self.lost)
        deadline = time.monotonic() + self.rank_timeout + 2 * self.interval
        while not self.lost and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(self.interval / 2)
        return dict(self.lost)

    def _read_failures(self) -> None:
        for rank in range(self.world_size):
            if rank != self.rank and self.store.check([self._key("failed", rank)]):
                reason = self.store.get(self._key("failed", rank)).decode()
                self._report(rank, f"failed: {reason}")

    def stop(self, failure: BaseException | None = None) -> None:
        """End the heartbeats, telling the others whether this rank finished or failed."""
        self._stop.set()
        if self.heartbeat:
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
        if failed is None and _watchdog.rank == 0 and _watchdog.heartbeat:
            _watchdog.wait_until_all_done()  # rank 0 hosts the store (under torchrun, the agent)
        _watchdog = None
    if hasattr(comm, "_LOCAL_PROCESS_GROUP"):
        comm._LOCAL_PROCESS_GROUP = None
    cached_gloo_group = getattr(comm, "_get_global_gloo_group", None)
    if hasattr(cached_gloo_group, "cache_clear"):
        cached_gloo_group.cache_clear()
    dist.destroy_process_group()
    gc.collect()
