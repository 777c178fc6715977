"""Weights files that would exhaust memory are refused before allocating, naming the file and
the reason, on every loading path (plain loading, the checkpointer, conversion, training
initialisation); odd numpy dtypes give a message, not a traceback."""

import re

import cv2
import numpy as np
import pytest
import torch
from hostile_weights import (
    deflated_pth,
    detectron2_pkl,
    numpy_pkl,
    one_array_many_keys_pkl,
    shared_buffer_pkl,
    shared_storage_pth,
    stride0_pth,
)
from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS
from torch import nn

from mematte_d2.checkpoint import (
    CheckpointError,
    StrictCheckpointer,
    UnsafeCheckpointError,
    initialize_from_checkpoint,
    load_state_dict,
)
from mematte_d2.checkpoint.limits import overlaps
from mematte_d2.cli.convert_checkpoint import main as convert_main
from mematte_d2.cli.predict import main as predict_main

# name -> (writer, words of the reason)
MEMORY_BOMBS = {
    "shared buffer pkl": (shared_buffer_pkl, "repeats one buffer for many arrays"),
    "one array under many keys pkl": (one_array_many_keys_pkl, "entries repeat or share data"),
    "stride-0 pth": (stride0_pth, "overlaps itself (stride 0"),
    "shared storage pth": (shared_storage_pth, "entries repeat or share data"),
    "deflated pth": (deflated_pth, "zip members declare"),
}


def _bomb(tmp_path, name):
    writer, reason = MEMORY_BOMBS[name]
    suffix = ".pkl" if "pkl" in name else ".pth"
    return writer(tmp_path / f"bomb{suffix}"), reason


@pytest.mark.parametrize("name", MEMORY_BOMBS)
def test_memory_bombs_are_refused_by_the_loader_naming_file_and_reason(tmp_path, name):
    path, reason = _bomb(tmp_path, name)
    with pytest.raises(UnsafeCheckpointError, match=f"{path}: refused to load: ") as info:
        load_state_dict(path)
    assert reason in str(info.value)


@pytest.mark.parametrize("name", MEMORY_BOMBS)
def test_memory_bombs_are_refused_by_training_initialisation_and_the_checkpointer(tmp_path,
                                                                                  name):
    path, reason = _bomb(tmp_path, name)
    with pytest.raises(UnsafeCheckpointError, match=re.escape(reason)):
        initialize_from_checkpoint(nn.Linear(2, 2), path)  # train.init_checkpoint
    with pytest.raises(UnsafeCheckpointError, match=re.escape(reason)):
        StrictCheckpointer(nn.Linear(2, 2)).load(str(path), checkpointables=[])


@pytest.mark.parametrize("name", MEMORY_BOMBS)
def test_hostile_batch_every_command_exits_2_with_one_message(tmp_path, capsys, name):
    path, reason = _bomb(tmp_path, name)
    assert convert_main(["vitmatte2mematte", str(path), str(tmp_path / "init.pth")]) == 2
    assert f"{path}: refused to load: " in capsys.readouterr().err
    assert not (tmp_path / "init.pth").exists()
    assert convert_main(["check", str(path), "--config-file", MEMATTE_CONFIG, *MEMATTE_OPTS]) == 2
    assert reason in capsys.readouterr().err
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.zeros((16, 16, 3), np.uint8))
    assert predict_main(["--config-file", MEMATTE_CONFIG, "--input", str(image), "--trimap",
                         str(image), "--output", str(tmp_path / "out"), "--weights", str(path),
                         *MEMATTE_OPTS]) == 2
    assert reason in capsys.readouterr().err


def test_legitimate_ties_and_views_still_load(tmp_path):
    torch.manual_seed(0)
    weight = torch.randn(8, 4)
    tied = {"decoder.a": weight, "decoder.b": weight, "decoder.t": weight.t()}  # ties, a view
    torch.save({"model": tied}, tmp_path / "tied.pth")
    state = load_state_dict(tmp_path / "tied.pth")
    assert torch.equal(state["decoder.t"], weight.t()) and torch.equal(state["decoder.b"], weight)
    state = load_state_dict(detectron2_pkl(tmp_path / "tied.pkl", tied))
    assert torch.equal(state["decoder.a"], weight)


@pytest.mark.parametrize(
    "size, stride, expected",
    [((4, 3), (3, 1), False), ((3, 4), (1, 3), False), ((5,), (0,), True),
     ((1, 7), (0, 1), False), ((4, 4), (1, 1), True), ((2, 3), (2, 1), True)],
)
def test_overlap_rule(size, stride, expected):
    assert overlaps(size, stride) is expected


def test_float128_array_names_the_file_and_big_endian_loads(tmp_path):
    if not hasattr(np, "float128"):
        pytest.skip("this numpy has no float128")
    path = numpy_pkl(tmp_path / "f128.pkl", np.ones(3, np.float128))
    with pytest.raises(CheckpointError, match=f"{path}: entry 'backbone.w' is a numpy array "
                                              "of dtype float128"):
        load_state_dict(path)
    values = np.arange(3, dtype=">f4")
    state = load_state_dict(numpy_pkl(tmp_path / "big_endian.pkl", values))
    assert state["backbone.w"].tolist() == [0.0, 1.0, 2.0]
