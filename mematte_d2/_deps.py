"""Checks for the dependencies that pip cannot install from setup.py (torch, detectron2)."""

import warnings

_INSTALL_HINT = (
    "Run `make env` (or `bash tools/setup_env.sh`) in the mematte_d2 checkout: it installs "
    "torch==2.14.1, torchvision==0.29.1 and detectron2 (from $DETECTRON2_SOURCE, a git URL or "
    "local path, when set; otherwise the registry package sal-detectron2==0.7.2)."
)


def check_dependencies() -> None:
    """Raise an ImportError that says how to install torch or detectron2 when either is missing."""
    try:
        import torch  # noqa: F401
    except ImportError as e:
        raise ImportError(f"mematte_d2 needs PyTorch, which is not importable ({e}). "
                          f"{_INSTALL_HINT}") from e
    # detectron2 0.7 scripts a few helpers at import; torch 2.14 warns about each of them.
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated",
                            category=FutureWarning)
    try:
        import detectron2.config  # noqa: F401
        import detectron2.engine  # noqa: F401
    except ImportError as e:
        raise ImportError(f"mematte_d2 needs detectron2, which is not importable ({e}). "
                          f"{_INSTALL_HINT}") from e
