"""Writing a file so that readers see either the old content or the complete new one.

`atomic_write` writes to a fresh temporary file in the destination's folder, flushes it to
disk, then renames it over the destination. A crash, a full disk or an exception in the
writer leaves the destination as it was and no temporary file behind. The rename replaces a
symbolic link at the destination by a regular file: the link's target is never written.

A process killed outright (SIGKILL, power loss) cannot remove its temporary file
``.NAME.PID.XXXXXXXX.tmp``. The first write of a later process to that folder removes such
leftovers: only files of exactly that pattern, untouched for ``STALE_SECONDS``, whose writer
PID is no longer running on this machine. A concurrent writer is never disturbed: it is alive,
and its file is fresh while it writes. (On a folder shared by several machines a PID can be
alive elsewhere; the age keeps a slow remote writer's file unless it stalls for that long.)
"""

import contextlib
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["STALE_SECONDS", "atomic_write", "atomic_write_bytes", "remove_stale_temps"]

_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_TEMP_NAME = re.compile(r"\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")
STALE_SECONDS = 15 * 60
_CLEANED: set[str] = set()  # folders this process has already cleaned


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a PID we cannot ask about: keep its file
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files killed writers left in `folder` (see the module docstring);
    returns those removed. Errors (a file vanishing, no permission) are ignored."""
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if (not entry.is_file(follow_symlinks=False) or now - info.st_mtime < STALE_SECONDS
                    or _pid_alive(int(match["pid"]))):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def _open_temp(folder: Path, name: str) -> tuple[Path, int]:
    """A new file next to the destination; O_EXCL so an existing file or link is never reused.
    The first call for a folder in this process removes stale leftovers there first."""
    key = os.path.abspath(folder)
    if key not in _CLEANED:
        _CLEANED.add(key)
        remove_stale_temps(folder)
    while True:
        temp = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            return temp, os.open(temp, _TEMP_FLAGS, 0o666)
        except FileExistsError:
            continue


class _TrackedFile:
    """The temporary file, remembering an OSError raised by its `write`: some writers (such as
    torch.save) replace that error by one of their own that no longer says what failed."""

    def __init__(self, f: BinaryIO):
        self._f = f
        self.write_error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as e:
            self.write_error = e
            raise

    def __getattr__(self, name: str):
        return getattr(self._f, name)


def _naming_path(path: Path, error: OSError) -> OSError:
    cause = error.strerror or str(error) or type(error).__name__
    return OSError(error.errno, f"cannot write {path}: {cause}")


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; some file systems cannot open a folder, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a binary file that becomes `path` only once complete.

    Returns `path` as a Path. Any OSError (missing folder, permission, full disk, `path` being
    a folder) is raised again as an OSError naming `path` and the cause, with the same errno;
    so is an error `write` raised because writing to the file failed. Other exceptions from
    `write` propagate unchanged. In every failure the destination is untouched and the
    temporary file removed.
    """
    path = Path(path)
    temp = None
    try:
        temp, fd = _open_temp(path.parent, path.name)
        with os.fdopen(fd, "wb") as f:
            tracked = _TrackedFile(f)
            try:
                write(tracked)
            except Exception as e:
                if tracked.write_error is None or isinstance(e, OSError):
                    raise
                lost = tracked.write_error
                raise OSError(lost.errno, lost.strerror or str(lost)) from e
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
        temp = None
    except OSError as e:
        raise _naming_path(path, e) from e
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                temp.unlink()
    _fsync_folder(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """`atomic_write` of a ready bytes object."""
    return atomic_write(path, lambda f: f.write(data))
