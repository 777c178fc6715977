"""Checkpoints and last_checkpoint are written atomically: a full disk leaves the previous
files intact and names the path and cause; symlinks in the output folder are not followed."""

import errno

import pytest
import torch
from file_limits import file_size_limit
from torch import nn

from mematte_d2.checkpoint import StrictCheckpointer


def _checkpointer(folder):
    torch.manual_seed(0)
    return StrictCheckpointer(nn.Linear(64, 64), str(folder))


def test_full_disk_keeps_the_previous_checkpoint_and_tag(tmp_path):
    checkpointer = _checkpointer(tmp_path)
    checkpointer.save("model_final", iteration=1)
    good = (tmp_path / "model_final.pth").read_bytes()
    with torch.no_grad():
        checkpointer.model.weight.add_(1)
    with file_size_limit(4096), pytest.raises(OSError) as info:
        checkpointer.save("model_final", iteration=2)
    assert info.value.errno == errno.EFBIG
    assert f"cannot write {tmp_path / 'model_final.pth'}: File too large" in str(info.value)
    assert (tmp_path / "model_final.pth").read_bytes() == good
    assert torch.load(tmp_path / "model_final.pth", weights_only=True)["iteration"] == 1
    assert (tmp_path / "last_checkpoint").read_text() == "model_final.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_final.pth"]


def test_symlinks_named_like_checkpoints_are_replaced_not_followed(tmp_path):
    victims = {name: tmp_path / f"victim_{name}" for name in ("pth", "tag")}
    for victim in victims.values():
        victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "model_0000001.pth").symlink_to(victims["pth"])
    (out / "last_checkpoint").symlink_to(victims["tag"])
    checkpointer = _checkpointer(out)
    checkpointer.save("model_0000001", iteration=1)
    assert all(v.read_text() == "precious" for v in victims.values())
    assert not (out / "model_0000001.pth").is_symlink()
    assert (out / "last_checkpoint").read_text() == "model_0000001.pth"
    loaded = torch.load(out / "model_0000001.pth", weights_only=True)
    assert torch.equal(loaded["model"]["weight"], checkpointer.model.weight)
