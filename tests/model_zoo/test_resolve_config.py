"""Programs take a config as a file, a shipped config name, or the recipe of a zoo weights name
(issue: an installed wheel has no configs/ folder beside it)."""

import subprocess
import sys
from pathlib import Path

import pytest

from mematte_d2 import model_zoo
from mematte_d2.app.launch import model_files
from mematte_d2.cli.export import build_parser as export_parser
from mematte_d2.cli.export import check_args as check_export_args

PREDICT = str(Path(__file__).resolve().parents[2] / "tools" / "predict.py")


def test_a_file_a_shipped_name_and_a_zoo_weights_name_resolve(tmp_path):
    own = tmp_path / "mine.py"
    own.write_text("")
    assert model_zoo.resolve_config_file(str(own)) == str(own)
    name = "Composition-1K/mematte_s_topk0.25.py"
    assert model_zoo.resolve_config_file(name) == model_zoo.get_config_file(name)
    entry = model_zoo.CHECKPOINTS["MEMatte-S-Composition-1K"]
    assert model_zoo.resolve_config_file(None, entry.name) == model_zoo.get_config_file(
        entry.config)


def test_neither_a_file_nor_a_name_lists_the_names():
    with pytest.raises(FileNotFoundError, match="nor a shipped config.*Composition-1K/vitmatte_s"):
        model_zoo.resolve_config_file("nosuch.py")
    with pytest.raises(FileNotFoundError, match="zoo names: MEMatte-S-Composition-1K"):
        model_zoo.resolve_config_file(None, "my.pth")


def test_export_and_app_take_zoo_names(tmp_path):
    args = export_parser().parse_args(["--weights", "ViTMatte-S-Composition-1K", "--output",
                                       str(tmp_path / "m.onnx"), "--keep-ratio", "0.25"])
    pytest.importorskip("onnx")
    check_export_args(args)
    assert args.config_file == model_zoo.get_config_file("Composition-1K/vitmatte_s.py")
    config, weights = model_files(None, "MEMatte-S-Composition-1K")
    assert config.endswith("mematte_s_topk0.25.py") and weights == "MEMatte-S-Composition-1K"
    with pytest.raises(ValueError, match="shipped configs are"):
        model_files("nosuch.py", None)


@pytest.mark.integration
def test_predict_reads_a_shipped_config_by_name(tmp_path):
    import cv2
    import numpy as np

    (tmp_path / "in").mkdir(), (tmp_path / "tri").mkdir()
    cv2.imwrite(str(tmp_path / "in/a.png"), np.full((40, 48, 3), 90, np.uint8))
    trimap = np.zeros((40, 48), np.uint8)
    trimap[10:30] = 128
    cv2.imwrite(str(tmp_path / "tri/a.png"), trimap)
    common = ["--input", str(tmp_path / "in"), "--trimap", str(tmp_path / "tri"),
              "--output", str(tmp_path / "out"), "--device", "cpu"]
    run = subprocess.run([sys.executable, PREDICT, "--config-file",
                          "Composition-1K/vitmatte_s.py", *common],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out/a_alpha.png").is_file()
    bad = subprocess.run([sys.executable, PREDICT, "--config-file", "nosuch.py",
                          *common], capture_output=True, text=True)
    assert bad.returncode == 2 and "shipped configs are" in bad.stderr


def test_training_and_eval_only_take_a_shipped_config_name(capsys):
    from mematte_d2.cli.train import cli

    # A bad override after a config given by name: the name resolved, the override refused.
    assert cli(["--config-file", "quick_schedules/mematte_tiny_synthetic.py", "--eval-only",
                "train.no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err
    assert cli(["--config-file", "nosuch.py", "--eval-only"]) == 2
    assert "shipped configs are" in capsys.readouterr().err
