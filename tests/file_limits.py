"""File-system conditions made for tests (imported by name): a full disk without one (a
file-size limit on this process) and a folder a command may not write into."""

import contextlib
import os
import resource
import shutil
import signal
from pathlib import Path

import pytest


@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """Writes past `nbytes` of any file fail with EFBIG, as on a full disk they fail with
    ENOSPC; the limit is lifted on exit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


@contextlib.contextmanager
def read_only_folder(path: Path):
    """Make ``path`` a folder nobody may write into; yields the prefix that makes a command
    respect it: root ignores folder permissions, so as root the command runs without the
    capability that lets it (setpriv, util-linux; the test is skipped without setpriv)."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permissions cannot bind")
        prefix = ["setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override", "--"]
    path.mkdir()
    path.chmod(0o555)
    try:
        yield prefix
    finally:
        path.chmod(0o755)
