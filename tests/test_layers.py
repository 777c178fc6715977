"""Layering: data loading, evaluation and utils sit below inference and never import it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mematte_d2"


def imported_modules(path: Path, package: Path = PACKAGE) -> set[str]:
    """Absolute names of the modules ``path`` (a file under ``package``) imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the file's own package
                parts = path.relative_to(package.parent).with_suffix("").parts[: -node.level]
                names.add(".".join([*parts, node.module] if node.module else parts))
            elif node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize("layer", ["data", "evaluation", "utils"])
def test_lower_layers_do_not_import_inference(layer):
    offenders = {}
    for path in (PACKAGE / layer).rglob("*.py"):
        bad = sorted(m for m in imported_modules(path) if m.startswith("mematte_d2.inference"))
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = bad
    assert not offenders


def test_relative_imports_are_resolved(tmp_path):
    module = tmp_path / "mematte_d2" / "evaluation" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("from ..inference.memory import f\nfrom . import metrics\n")
    assert imported_modules(module, tmp_path / "mematte_d2") == {
        "mematte_d2.inference.memory", "mematte_d2.evaluation"}
