"""Command-line pieces shared by predict and evaluate_folder: one-line option errors, checked
argparse types and one-line descriptions of per-file failures."""

import argparse
import io
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the option (exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def checked(convert: Callable, check: Callable) -> Callable:
    """An argparse type: `convert` the text, then apply a mematte_d2.inference.options check."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected {convert.__name__}, got {text!r}") from e
        try:
            return check(value)
        except (TypeError, ValueError) as e:
            raise argparse.ArgumentTypeError(str(e)) from e

    return parse


def check_writable(folder: Path, option: str) -> None:
    """Raise a ValueError naming ``option`` unless a new file can be made in ``folder`` (a
    temporary file is made and removed), so an output that cannot be written stops a command
    before its long work, not after it."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise ValueError(f"{option}: cannot write there ({e.strerror or e})") from e


def describe_error(e: BaseException) -> str:
    """An error as one line; unexpected kinds keep their type name."""
    if isinstance(e, OSError) and e.strerror and e.filename is None:
        return e.strerror  # "cannot write PATH: CAUSE" (atomic_write), without "[Errno N]"
    expected = (ValueError, TypeError, OSError, MemoryError)
    return str(e) if isinstance(e, expected) and str(e) else f"{type(e).__name__}: {e}"


def check_weights_option(text: str) -> None:
    """Raise FileNotFoundError naming ``--weights`` unless `text` is a model-zoo name, a
    remote URL or an existing file or folder (``file://`` URLs are read like local paths)."""
    from mematte_d2.model_zoo.checkpoints import CHECKPOINTS, file_url_path

    if text in CHECKPOINTS or ("://" in text and not text.lower().startswith("file://")):
        return
    if not os.path.exists(file_url_path(text)):
        raise FileNotFoundError(f"--weights {text}: no such file (nor a model-zoo name: "
                                f"{', '.join(CHECKPOINTS)})")


def tolerant_output() -> None:
    """Let stdout and stderr write any text: characters their encoding lacks (such as the
    undecodable bytes of a file name, held as surrogates) come out backslash-escaped instead
    of raising UnicodeEncodeError, which would stop a batch after its first such name."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
