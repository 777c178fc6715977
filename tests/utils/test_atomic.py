"""atomic_write: all-or-nothing files, no symlink following, errors naming path and cause."""

import errno
import os

import pytest
import torch
from file_limits import file_size_limit

from mematte_d2.utils.atomic import atomic_write, atomic_write_bytes


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_content_with_the_usual_permissions(tmp_path):
    target = tmp_path / "out.bin"
    assert atomic_write(target, lambda f: f.write(b"abc")) == target
    assert target.read_bytes() == b"abc"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


def test_failing_writer_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"partial")
        raise RuntimeError("encoder broke")

    with pytest.raises(RuntimeError, match="encoder broke"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_full_disk_keeps_the_old_file_and_names_path_and_cause(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with file_size_limit(1 << 16), pytest.raises(OSError) as info:
        atomic_write_bytes(target, b"x" * (1 << 20))
    assert info.value.errno == errno.EFBIG
    assert str(target) in str(info.value) and "too large" in str(info.value)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_symlink_at_destination_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    link = tmp_path / "out" / "alpha.png"
    link.parent.mkdir()
    link.symlink_to(victim)
    atomic_write_bytes(link, b"output")
    assert victim.read_bytes() == b"precious"
    assert not link.is_symlink() and link.read_bytes() == b"output"


def test_unwritable_destinations_name_the_path(tmp_path):
    missing = tmp_path / "no_such_folder" / "out.bin"
    with pytest.raises(FileNotFoundError, match=f"cannot write {missing}: No such file"):
        atomic_write_bytes(missing, b"x")
    folder = tmp_path / "a_folder"
    folder.mkdir()
    (folder / "inside").write_bytes(b"")
    with pytest.raises(OSError, match=f"cannot write {folder}: "):
        atomic_write_bytes(folder, b"x")
    assert folder.is_dir() and _leftovers(tmp_path) == []


def test_writer_that_hides_the_disk_error_still_reports_it(tmp_path):
    target = tmp_path / "model.pth"
    with file_size_limit(1 << 16), pytest.raises(OSError) as info:
        atomic_write(target, lambda f: torch.save({"w": torch.zeros(1 << 16)}, f))
    assert info.value.errno == errno.EFBIG
    assert str(info.value).endswith(f"cannot write {target}: File too large")
    assert not target.exists() and _leftovers(tmp_path) == []
    atomic_write(target, lambda f: torch.save({"w": torch.ones(3)}, f))
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(3))


@pytest.mark.integration
def test_a_killed_writers_temp_file_is_removed_by_the_next_write_to_its_folder(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from mematte_d2.utils.atomic import STALE_SECONDS

    code = ("import sys, time; from mematte_d2.utils.atomic import atomic_write; "
            "atomic_write(sys.argv[1], lambda f: (f.write(b'partial'), f.flush(), "
            "print('writing', flush=True), time.sleep(60)))")
    writer = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "model.pth")],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    (killed,) = _leftovers(tmp_path)
    assert f".model.pth.{writer.pid}." in killed

    old = time.time() - STALE_SECONDS - 60
    fresh_dead = tmp_path / f".other.pth.{writer.pid}.0123abcd.tmp"  # a kill just now
    alive = tmp_path / f".busy.pth.{os.getpid()}.0123abcd.tmp"  # a writer still running
    not_ours = tmp_path / ".notes.tmp"
    for path in (fresh_dead, alive, not_ours):
        path.write_bytes(b"x")
    for path in (tmp_path / killed, alive, not_ours):
        os.utime(path, (old, old))

    atomic_write_bytes(tmp_path / "next.bin", b"ok")
    assert _leftovers(tmp_path) == sorted([fresh_dead.name, alive.name, not_ours.name])
