"""This or another process's resident memory, read once here for every caller.

Linux reports it in /proc/<pid>/status: VmRSS (now) and VmHWM (the peak so far; ru_maxrss would
also count a parent's peak inherited through fork + exec). Elsewhere only this process's peak
is known, from ru_maxrss (macOS reports bytes, others KiB).
"""

from __future__ import annotations

import resource
import sys


def _status_bytes(field: str, pid: int | str = "self") -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes(pid: int | None = None) -> int | None:
    """Peak resident bytes of process ``pid`` (None: this process; never None for it)."""
    peak = _status_bytes("VmHWM", "self" if pid is None else pid)
    if peak is not None or pid is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)


def current_rss_bytes() -> int:
    """Resident bytes of this process now (its peak where the current figure is unknown)."""
    current = _status_bytes("VmRSS")
    return current if current is not None else peak_rss_bytes()
