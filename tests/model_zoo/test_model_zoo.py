"""Configs ship with the package: model_zoo finds them in a checkout and in an installed wheel."""

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from mematte_d2 import model_zoo

ROOT = Path(__file__).resolve().parents[2]
RECIPES = [
    "AIM-500/mematte_s_topk0.25_eval.py",
    "Composition-1K/mematte_b_topk0.25.py",
    "Composition-1K/mematte_s_topk0.25.py",
    "Composition-1K/vitmatte_b.py",
    "Composition-1K/vitmatte_s.py",
    "Distinctions-646/mematte_s_topk0.25.py",
    "UHR-395/mematte_s_topk0.25.py",
    "quick_schedules/mematte_tiny_synthetic.py",
]


def test_every_shipped_recipe_loads():
    assert model_zoo.list_configs() == RECIPES
    for recipe in RECIPES:
        cfg = model_zoo.get_config(recipe)
        assert {"model", "train", "optimizer", "dataloader", "lr_multiplier"} <= set(cfg.keys())
    cfg = model_zoo.get_config("Composition-1K/mematte_s_topk0.25.py", ["train.max_iter=7"])
    assert cfg.train.max_iter == 7


@pytest.mark.parametrize("name", ["Composition-1K/nope.py", "../setup.py", "/etc/hostname"])
def test_unknown_or_outside_paths_are_refused_with_the_recipes_listed(name):
    with pytest.raises(FileNotFoundError, match="Composition-1K/mematte_s_topk0.25.py"):
        model_zoo.get_config_file(name)


def test_build_requirement_admits_the_package_data_globs():
    """setup.py's ``**`` in package_data needs setuptools >= 62.3 (older ones copy nothing)."""
    import ast
    import re

    from packaging.specifiers import SpecifierSet

    globs = [
        node.value for node in ast.walk(ast.parse((ROOT / "setup.py").read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "**" in node.value
    ]
    assert globs, "setup.py no longer globs with **: drop this test"
    (spec,) = re.findall(r'requires = \["setuptools([^"]*)"', (ROOT / "pyproject.toml").read_text())
    assert "62.2" not in SpecifierSet(spec) and "62.3" in SpecifierSet(spec)


def _build_wheel(tmp: Path) -> Path:
    """A wheel built from a copy of the files setup.py packages (keeps the checkout clean)."""
    src = _mkdir(tmp / "src")
    for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "mematte_d2", src / "mematte_d2", ignore=ignore)
    shutil.copytree(ROOT / "configs", src / "configs", ignore=ignore)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = (tmp / "dist").glob("mematte_d2-*.whl")
    return wheel


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


@pytest.mark.integration
def test_wheel_carries_the_configs_and_finds_them_when_installed(tmp_path):
    wheel = _build_wheel(tmp_path)
    shipped = {
        p.relative_to(ROOT / "configs").as_posix() for p in (ROOT / "configs").rglob("*.py")
    }
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    prefix = "mematte_d2/model_zoo/configs/"
    assert {n[len(prefix):] for n in names if n.startswith(prefix)} == shipped

    # The unpacked wheel stands for an installation: run from another folder, the checkout off
    # the path, and the demo's and benchmark's configs must come from inside the package.
    code = textwrap.dedent(
        """
        import mematte_d2
        from mematte_d2 import model_zoo
        from mematte_d2.benchmark.cases import MODEL_CONFIGS
        from mematte_d2.cli.demo import DEMO_CONFIG
        print(mematte_d2.__file__)
        print(model_zoo.get_config_file(DEMO_CONFIG))
        print(MODEL_CONFIGS["mematte_s"])
        print(model_zoo.get_config(DEMO_CONFIG).train.max_iter)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    cwd = _mkdir(tmp_path / "elsewhere")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    package, demo_config, bench_config, max_iter = out.stdout.split()[-4:]
    inside = str(tmp_path / "site" / "mematte_d2")
    assert package.startswith(inside)
    assert demo_config.startswith(inside) and bench_config.startswith(inside)
    assert max_iter == "600"
