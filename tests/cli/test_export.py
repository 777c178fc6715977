"""tools/export.py: bad options exit with status 2 and one line, before any model is built."""

import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import MEMATTE_CONFIG

import mematte_d2.inference
from mematte_d2.cli.export import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_model(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(mematte_d2.inference, "MattingPredictor", fail)


def _weights(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"unused")
    return str(path)


@pytest.mark.parametrize(
    "extra,message",
    [
        ([], "exactly one of max_tokens and keep_ratio"),
        (["--keep-ratio", "0.25", "--max-tokens", "100"], "exactly one"),
        (["--keep-ratio", "0"], "keep_ratio must be in (0, 1]"),
        (["--max-tokens", "0"], "max_tokens must be None or a positive int"),
    ],
)
def test_budget_options(tmp_path, capsys, no_model, extra, message):
    status = main(["--config-file", MEMATTE_CONFIG, "--weights", _weights(tmp_path),
                   "--output", str(tmp_path / "m.onnx"), *extra])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and message in err and err.startswith("error: --max-tokens")


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing_weights", "--weights"),
        ("missing_folder", "does not exist"),
        ("output_is_folder", "is a directory"),
        ("missing_config", "--config-file"),
    ],
)
def test_paths(tmp_path, capsys, no_model, case, message):
    config, weights, output = MEMATTE_CONFIG, _weights(tmp_path), tmp_path / "m.onnx"
    if case == "missing_weights":
        weights = str(tmp_path / "absent.pth")
    elif case == "missing_folder":
        output = tmp_path / "absent" / "m.onnx"
    elif case == "output_is_folder":
        output = tmp_path
    else:
        config = str(tmp_path / "absent.py")
    status = main(["--config-file", config, "--weights", weights, "--output", str(output),
                   "--keep-ratio", "0.25"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and message in err
    assert not output.is_file()


def test_script_reports_bad_budget(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "export.py"), "--config-file", MEMATTE_CONFIG,
         "--output", str(tmp_path / "m.onnx")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --max-tokens / --keep-ratio: give exactly one of max_tokens and keep_ratio"]
