"""tools/gpu_check.py's plumbing, with the CUDA checks stood in for by small commands: per-check
time limits, the report (JSON and Markdown), the exit status, --only, --help, and the real
script on a CPU-only machine."""

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools/gpu_check.py"
sys.path.insert(0, str(REPO / "tools"))
import gpu_check  # noqa: E402


def _result(passed, numbers=None, detail=""):
    line = gpu_check.RESULT_PREFIX + json.dumps(
        {"passed": passed, "numbers": numbers or {}, "detail": detail})
    return [sys.executable, "-c", f"print({line!r})"]


@pytest.fixture
def fake_cuda_machine(monkeypatch):
    """One 'GPU'; each check's process replaced by a command that passes, fails, crashes or
    hangs; time limits of 3 s."""
    behaviour = {
        "environment": _result(True, {"cuda_devices": 1, "torch": "x"}),
        "cuda_equals_cpu": _result(True, {"mematte_s_max_alpha_diff": 3e-6}),
        "predictor_sizes": [sys.executable, "-c", "import time; time.sleep(60)"],
        "forced_oom": [sys.executable, "-c", "import sys; sys.exit('boom: cuBLAS failed')"],
        "train_resume": _result(False, {"weights_equal": False}, "resumed weights differ"),
    }
    monkeypatch.setattr(gpu_check, "child_command",
                        lambda name, work: behaviour.get(name, _result(True)))
    for check in gpu_check.CHECKS:
        monkeypatch.setattr(check, "timeout", 3)


def test_report_and_exit_status_follow_the_checks(fake_cuda_machine, tmp_path, capsys):
    assert gpu_check.main(["--output", str(tmp_path)]) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status == {
        "environment": "pass", "cuda_equals_cpu": "pass", "predictor_sizes": "FAIL",
        "mematte_vs_vitmatte": "pass", "forced_oom": "FAIL", "sdpa_kernels": "pass",
        "train_amp": "pass", "train_resume": "FAIL", "gloo_training": "pass", "export": "pass",
        "nccl_equals_one_process": "skipped",
    }
    assert report["passed"] is False
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["predictor_sizes"]["detail"] == "timeout: no result after 3 s"
    assert checks["predictor_sizes"]["seconds"] < 30  # the hang was stopped, not waited for
    assert checks["forced_oom"]["detail"] == "boom: cuBLAS failed"
    assert checks["nccl_equals_one_process"]["detail"] == "needs 2 GPUs, 1 here"
    assert checks["cuda_equals_cpu"]["numbers"] == {"mematte_s_max_alpha_diff": 3e-6}
    md = (tmp_path / "report.md").read_text()
    assert "| predictor_sizes | FAIL |" in md and "| export | pass |" in md
    assert "## cuda_equals_cpu" in md and "- mematte_s_max_alpha_diff: 3e-06" in md
    assert "gpu_check: train_resume FAIL" in capsys.readouterr().out


def test_only_runs_a_subset(fake_cuda_machine, tmp_path):
    assert gpu_check.main(["--output", str(tmp_path), "--only", "export,cuda_equals_cpu"]) == 0
    names = [c["name"] for c in json.loads((tmp_path / "report.json").read_text())["checks"]]
    assert names == ["environment", "export", "cuda_equals_cpu"]
    with pytest.raises(SystemExit, match="unknown check.*'exprot'"):
        gpu_check.main(["--output", str(tmp_path), "--only", "exprot"])


def test_help_lists_every_check(capsys):
    with pytest.raises(SystemExit):
        gpu_check.main(["--help"])
    text = capsys.readouterr().out
    assert all(check.name in text for check in gpu_check.CHECKS)


def test_a_check_that_raises_reports_its_error(monkeypatch, capsys):
    def broken(work):
        raise RuntimeError("CUDA error: an illegal memory access")

    monkeypatch.setitem(gpu_check.CHILD_CHECKS, "export", broken)
    assert gpu_check.run_child("export", Path(".")) == 0
    line = capsys.readouterr().out.strip()
    assert json.loads(line.removeprefix(gpu_check.RESULT_PREFIX)) == {
        "passed": False, "numbers": {},
        "detail": "RuntimeError: CUDA error: an illegal memory access"}


def test_every_check_has_its_code_and_its_imports_exist():
    """The CUDA checks run only on a GPU machine: here at least their names and every module
    and name they import are checked."""
    assert set(gpu_check.CHILD_CHECKS) == {c.name for c in gpu_check.CHECKS}
    tree = ast.parse(SCRIPT.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}"), f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
    for name in ("mematte_s", "vitmatte_s", "vitmatte_s_dense"):
        assert gpu_check._model_cfg(name).model is not None


def test_without_cuda_it_says_what_it_skipped_and_exits_0(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(SCRIPT), "--output", str(tmp_path)], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no CUDA device here; skipped cuda_equals_cpu, predictor_sizes" in done.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is True
    assert report["checks"][0]["numbers"]["cuda_available"] is False
    assert {c["status"] for c in report["checks"][1:]} == {"skipped"}
