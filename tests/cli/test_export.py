"""tools/export.py: bad options exit with status 2 and one line, before any model is built."""

import subprocess
import sys
from pathlib import Path

import pytest
from tiny_models import MEMATTE_CONFIG, MEMATTE_OPTS

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


# ------------------------------------------------------------- writing, missing packages
def _export(tmp_path, output, *extra, weights=None):
    return main([*extra, "--config-file", MEMATTE_CONFIG, "--output", str(output),
                 "--keep-ratio", "0.25", *(["--weights", weights] if weights else []),
                 *MEMATTE_OPTS])


@pytest.mark.integration
def test_a_link_at_output_is_replaced_not_followed_and_a_failed_write_keeps_the_old_file(
    tmp_path, capsys, monkeypatch
):
    import errno

    import onnx

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    output = tmp_path / "m.onnx"
    output.symlink_to(victim)
    assert _export(tmp_path, output) == 0
    assert victim.read_text() == "keep me"
    assert not output.is_symlink() and onnx.load(str(output)).graph.output[0].name == "alpha"

    good = output.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("mematte_d2.utils.atomic.os.fsync", disk_full)
    capsys.readouterr()
    assert _export(tmp_path, output) == 2
    err = capsys.readouterr().err
    assert f"cannot write {output}: No space left on device" in err and err.count("\n") == 1
    assert output.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "victim.txt"]


@pytest.mark.parametrize(
    "missing, extra, option",
    [("onnx", [], "--format onnx needs the onnx package"),
     ("onnxruntime", ["--benchmark", "64"], "--benchmark needs the onnxruntime package")],
)
def test_a_missing_export_package_names_the_extra_before_any_work(
    tmp_path, capsys, no_model, monkeypatch, missing, extra, option
):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == missing else find_spec(name, *a))
    output = tmp_path / "m.onnx"
    assert _export(tmp_path, output, *extra) == 2
    err = capsys.readouterr().err
    assert option in err and "pip install mematte_d2[export]" in err and err.count("\n") == 1
    assert not output.exists()


def test_weights_accept_zoo_names_and_file_urls_like_predict(tmp_path, capsys, no_model,
                                                             monkeypatch):
    from mematte_d2.cli.export import build_parser, check_args
    from mematte_d2.model_zoo import checkpoints as zoo

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"unused")
    monkeypatch.setitem(zoo.CHECKPOINTS, "test-zoo", zoo.ZooCheckpoint(
        "test-zoo", weights.as_uri(), "w.pth", "Composition-1K/vitmatte_s.py", "http", "a test"))
    for given in ("test-zoo", weights.as_uri(), str(weights)):
        check_args(build_parser().parse_args(
            ["--config-file", MEMATTE_CONFIG, "--weights", given, "--output",
             str(tmp_path / "m.onnx"), "--keep-ratio", "0.25"]))
    assert _export(tmp_path, tmp_path / "m.onnx", weights=(tmp_path / "absent.pth").as_uri()) == 2
    assert "no such file (nor a model-zoo name" in capsys.readouterr().err
