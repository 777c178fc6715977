"""Command-line pieces shared by predict and evaluate_folder: one-line option errors, checked
argparse types and one-line descriptions of per-file failures."""

import argparse
import io
import sys
from collections.abc import Callable


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


def describe_error(e: BaseException) -> str:
    """An error as one line; unexpected kinds keep their type name."""
    expected = (ValueError, TypeError, OSError, MemoryError)
    return str(e) if isinstance(e, expected) and str(e) else f"{type(e).__name__}: {e}"


def tolerant_output() -> None:
    """Let stdout and stderr write any text: characters their encoding lacks (such as the
    undecodable bytes of a file name, held as surrogates) come out backslash-escaped instead
    of raising UnicodeEncodeError, which would stop a batch after its first such name."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
