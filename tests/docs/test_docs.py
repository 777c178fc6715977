"""The documentation stays true: every command in README.md and docs/*.md code blocks parses,
every config override it shows names a real key, and every internal link resolves.

Commands are parsed in-process: the program's argparse parser runs on the shown arguments and
is stopped right after parsing, so nothing is trained or predicted. The `integration` test runs
each program's `--help` once in a subprocess, as a user would.
"""

import argparse
import os
import re
import runpy
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mematte_d2.config import load_config

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_BLOCKS = ("bash", "sh", "shell", "console")
# Commands of other tools that the docs show; not this project's to check.
EXTERNAL = ("pip", "git", "tensorboard", "cd", "export", "cmp")
PREFIXES = ("time", "/usr/bin/time", "taskset", "env")


def _code_blocks(text: str):
    """(language, first line number, body) of every fenced code block."""
    for match in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.M | re.S):
        yield match.group(1), text.count("\n", 0, match.start()) + 2, match.group(2)


def _commands(page: Path):
    """(page:line, argv) of every command of the page's shell code blocks; a line ending in a
    backslash continues on the next."""
    for language, first, body in _code_blocks(page.read_text()):
        if language not in SHELL_BLOCKS:
            continue
        pending, start = "", None
        for i, line in enumerate(body.splitlines()):
            start = first + i if start is None else start
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            words = shlex.split(pending + line, comments=True)
            if words:
                yield f"{page.relative_to(REPO)}:{start}", words
            pending, start = "", None


def _strip_prefixes(words: list[str]) -> list[str]:
    """Drop VAR=value assignments and wrappers such as `time -v` and `taskset -c 0`."""
    while words:
        if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            words = words[1:]
        elif words[0] in PREFIXES:
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[2:] if words[0] == "-c" else words[1:]
        else:
            return words
    return words


def _console_scripts() -> dict[str, str]:
    """Console script name -> "module:function", from setup.py."""
    text = (REPO / "setup.py").read_text()
    return dict(re.findall(r'"([\w-]+)=([\w.]+:\w+)"', text))


def _make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return {t for line in re.findall(r"^([\w.\- ]+):(?!=)", text, re.M) for t in line.split()}


ALL_COMMANDS = [c for page in PAGES for c in _commands(page)]


def _program(words: list[str]):
    """(kind, target, arguments) of a command: kind is make, script, module, console, pytest
    or external."""
    words = _strip_prefixes(words)
    head = words[0]
    if head == "make":
        return "make", None, words[1:]
    if head in EXTERNAL:
        return "external", head, words[1:]
    if head == "pytest":
        return "pytest", None, words[1:]
    if head in ("python", "python3") or head.endswith("/python"):
        if words[1:3] == ["-m", "pytest"]:
            return "pytest", None, words[3:]
        if words[1] == "-m":
            return "module", words[2], words[3:]
        return "script", words[1], words[2:]
    if head == "torchrun":  # torchrun's own options, then the script and its arguments
        script = next((i for i, w in enumerate(words) if w.endswith(".py")), None)
        if script is not None:
            return "script", words[script], words[script + 1:]
    if head in _console_scripts():
        return "console", _console_scripts()[head], words[1:]
    return "unknown", head, words[1:]


class _Parsed(Exception):
    """Raised by the patched parser right after the outermost parse succeeded."""

    def __init__(self, namespace: argparse.Namespace, extras: list[str]):
        super().__init__("parsed")
        self.namespace, self.extras = namespace, extras


@pytest.fixture
def stop_after_parsing(monkeypatch):
    """Make the outermost parse_args / parse_known_args raise _Parsed with its result."""
    depth = [0]
    known, full = argparse.ArgumentParser.parse_known_args, argparse.ArgumentParser.parse_args

    def parse_known_args(self, args=None, namespace=None):
        depth[0] += 1
        try:
            namespace, extras = known(self, args, namespace)
        finally:
            depth[0] -= 1
        if depth[0] == 0:
            raise _Parsed(namespace, extras)
        return namespace, extras

    def parse_args(self, args=None, namespace=None):
        depth[0] += 1
        try:
            namespace = full(self, args, namespace)
        finally:
            depth[0] -= 1
        raise _Parsed(namespace, [])

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", parse_known_args)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)


def _parse(kind: str, target: str, args: list[str], monkeypatch) -> _Parsed:
    """Run the program's entry point on `args` until its parser has parsed them."""
    monkeypatch.chdir(REPO)
    try:
        if kind == "script":
            assert (REPO / target).is_file(), f"{target} does not exist"
            monkeypatch.setattr(sys, "argv", [target, *args])
            runpy.run_path(str(REPO / target), run_name="__main__")
        elif kind == "module":
            monkeypatch.setattr(sys, "argv", [target, *args])
            with warnings.catch_warnings():  # runpy warns when the module is imported already
                warnings.simplefilter("ignore", RuntimeWarning)
                runpy.run_module(target, run_name="__main__", alter_sys=False)
        else:
            module, function = target.split(":")
            getattr(__import__(module, fromlist=[function]), function)(args)
    except _Parsed as parsed:
        return parsed
    except SystemExit as e:
        if e.code == 0 and {"-h", "--help"} & set(args):
            return _Parsed(argparse.Namespace(), [])  # the help itself was asked for
        pytest.fail(f"the arguments do not parse (exit code {e.code})")
    pytest.fail("the program returned without parsing its arguments")


def _check_overrides(parsed: _Parsed) -> None:
    """Config overrides shown with a config file must name keys of that config."""
    ns = parsed.namespace
    config = getattr(ns, "config_file", None)
    if not config:
        return
    opts = [*(getattr(ns, "opts", None) or []), *parsed.extras]
    assert all("=" in o and not o.startswith("-") for o in opts), f"not key=value: {opts}"
    load_config(config, opts)


@pytest.mark.parametrize(
    "where, words", ALL_COMMANDS, ids=[where for where, _ in ALL_COMMANDS]
)
def test_command_parses(where, words, stop_after_parsing, monkeypatch):
    kind, target, args = _program(words)
    assert kind != "unknown", f"{where}: {target!r} is no command this test knows how to check"
    if kind == "make":
        missing = [t for t in args if "=" not in t and t not in _make_targets()]
        assert not missing, f"{where}: no Makefile target {missing}"
    elif kind == "pytest":
        paths = [a for a in args if not a.startswith("-") and ("/" in a or a.endswith(".py"))]
        missing = [p for p in paths if not (REPO / p.split("::")[0]).exists()]
        assert not missing, f"{where}: no test path {missing}"
    elif kind != "external":
        _check_overrides(_parse(kind, target, args, monkeypatch))


def test_commands_are_found():
    """The extraction sees the docs' commands (an empty list would pass vacuously)."""
    kinds = {_program(words)[0] for _, words in ALL_COMMANDS}
    assert {"make", "script"} <= kinds
    assert any(words[-1] == "test" for _, words in ALL_COMMANDS)  # `make test`, CI's command


# --------------------------------------------------------------------------- links
def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.M):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        anchors.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    return anchors


def _links(page: Path):
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
        if not re.match(r"[a-z]+:", target):
            yield target


ALL_LINKS = [(page, link) for page in PAGES for link in _links(page)]


@pytest.mark.parametrize(
    "page, link", ALL_LINKS, ids=[f"{p.relative_to(REPO)}->{link}" for p, link in ALL_LINKS]
)
def test_internal_link_resolves(page, link):
    path, _, anchor = link.partition("#")
    target = (page.parent / path).resolve() if path else page
    assert target.exists(), f"{page.relative_to(REPO)}: {link} points to a missing file"
    if anchor:
        assert anchor in _anchors(target), f"{page.relative_to(REPO)}: no heading #{anchor}"


def test_links_are_found():
    assert any(link.startswith("docs/") for page, link in ALL_LINKS if page.name == "README.md")


def test_slug_follows_github():
    assert _slug("The `predict` command") == "the-predict-command"
    assert _slug("MEMatte-S against ViTMatte-S") == "mematte-s-against-vitmatte-s"
    assert _slug("An 8192 x 8192 image") == "an-8192-x-8192-image"
    assert _slug("The model_zoo, *briefly*") == "the-model_zoo-briefly"


# --------------------------------------------------------------------------- --help
def _help_argv(kind: str, target: str) -> list[str]:
    if kind == "script":
        return [sys.executable, target, "--help"]
    if kind == "module":
        return [sys.executable, "-m", target, "--help"]
    module, function = target.split(":")
    return [sys.executable, "-c",
            f"import sys; from {module} import {function} as f; sys.exit(f(['--help']))"]


PROGRAMS = sorted({
    (kind, target) for _, words in ALL_COMMANDS
    for kind, target, _ in [_program(words)] if kind in ("script", "module", "console")
})


@pytest.mark.integration
@pytest.mark.parametrize("kind, target", PROGRAMS, ids=[t for _, t in PROGRAMS])
def test_program_help_runs(kind, target):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), str(REPO / "projects/routing_ablations"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(_help_argv(kind, target), cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage:" in run.stdout
