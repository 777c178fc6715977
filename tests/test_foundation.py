"""The installation: dependencies import, and mematte_d2 explains a missing detectron2."""

import subprocess
import sys
import textwrap

import pytest
import torch


def test_detectron2_pieces_import_without_compiled_ops():
    from detectron2.config import LazyConfig  # noqa: F401
    from detectron2.data import DatasetCatalog  # noqa: F401
    from detectron2.engine import DefaultTrainer  # noqa: F401
    from detectron2.evaluation import DatasetEvaluator  # noqa: F401

    assert torch.__version__.startswith("2.14.1")


@pytest.mark.integration
def test_import_without_detectron2_says_how_to_install():
    code = textwrap.dedent(
        """
        import sys
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name == "detectron2" or name.startswith("detectron2."):
                    raise ImportError("blocked for the test")
        sys.meta_path.insert(0, _Block())
        try:
            import mematte_d2
        except ImportError as e:
            print("MSG:", e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "MSG:" in out.stdout, out.stderr
    assert "detectron2" in out.stdout and "setup_env.sh" in out.stdout
    assert "DETECTRON2_SOURCE" in out.stdout


@pytest.mark.integration
def test_second_setup_run_installs_nothing():
    """The stamp keyed by the requirement files makes a re-run of the installer a no-op."""
    import os
    from pathlib import Path

    import pytest

    root = Path(__file__).resolve().parents[1]
    if not (Path(sys.prefix) / ".mematte_d2_requirements.sha256").is_file():
        pytest.skip("this interpreter's venv was not made by tools/setup_env.sh")
    env = dict(os.environ, VENV=sys.prefix)
    out = subprocess.run(["bash", str(root / "tools/setup_env.sh")], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "installing" not in out.stdout + out.stderr


def test_repository_points_nowhere_outside_itself():
    """No source, test, config or document names a file or folder outside the repository."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    # Spelled in pieces so that this file does not match itself.
    forbidden = ("PAPER" + ".md", "METRICS" + ".md", "shared" + "/reference", "/" + "work/")
    suffixes = {".py", ".md", ".toml", ".txt", ".cfg", ".in", ".sh", ".yaml", ".tsv"}
    generated = {".git", ".venv", ".pytest_cache", ".ruff_cache", "__pycache__", "output", "build"}
    offenders = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        parts = relative.parts
        if generated.intersection(parts) or any(p.endswith(".egg-info") for p in parts):
            continue
        if not path.is_file():
            continue
        if path.suffix not in suffixes and path.name not in ("Makefile", "run"):
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{relative}: {word}" for word in forbidden if word in text]
    assert not offenders, offenders
