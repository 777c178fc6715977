"""The installation: dependencies import, and mematte_d2 explains a missing detectron2."""

import subprocess
import sys
import textwrap

import torch


def test_detectron2_pieces_import_without_compiled_ops():
    from detectron2.config import LazyConfig  # noqa: F401
    from detectron2.data import DatasetCatalog  # noqa: F401
    from detectron2.engine import DefaultTrainer  # noqa: F401
    from detectron2.evaluation import DatasetEvaluator  # noqa: F401

    assert torch.__version__.startswith("2.14.1")


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
