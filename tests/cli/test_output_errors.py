"""Output that cannot be written: one line on stderr and exit 1, never a traceback.

Every command runs as a user runs it (a subprocess, against the fake Ollama) with its
standard output on ``/dev/full`` (every write fails with ENOSPC), on a pipe whose reader
has gone (``| head -1``), or with an ASCII-only encoding.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import REPO
from tests.fake_ollama import FakeOllama

FULL = Path("/dev/full")
NO_SPACE = "gemmatui: error: cannot write the output: No space left on device"

COMMANDS = [
    ("fit", "--vram", "24G", "--ctx", "8k"),
    ("fit", "--vram", "24G", "--json"),
    ("ask", "hello"),
    ("ask", "--json", "hello"),
    ("models",),
    ("models", "--json"),
    ("pull", "1b"),
]


def _run(env: dict[str, str], args: tuple[str, ...], stdout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gemmatui", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_full_disk_is_one_line_and_exit_1(cli_env: dict, args: tuple[str, ...]) -> None:
    with FULL.open("w") as full:
        done = _run(cli_env, args, full.fileno())
    _no_traceback(done.stderr)
    assert done.returncode == 1
    # `pull` reports its progress on stderr first; the error is the last line.
    assert done.stderr.splitlines()[-1] == NO_SPACE


@pytest.mark.parametrize(
    "args", [("fit", "--vram", "24G"), ("ask", "hello"), ("models", "--json")], ids=" ".join
)
def test_a_reader_that_went_away_ends_quietly(cli_env: dict, args: tuple[str, ...]) -> None:
    """``gemmatui fit | head -1``: the reader is gone before we write (deterministic)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = _run(cli_env, args, write_end)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")


def test_head_dash_1_ends_quietly(cli_env: dict) -> None:
    """The real pipeline, where ``head`` may leave at any moment of the output."""
    done = subprocess.run(
        f"{sys.executable} -m gemmatui fit --vram 24G | head -1",
        shell=True,
        cwd=REPO,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.startswith("Simulated") and done.stdout.count("\n") == 1
    assert done.stderr == ""


def test_ascii_only_output_is_readable(cli_env: dict) -> None:
    env = {**cli_env, "PYTHONIOENCODING": "ascii"}
    done = _run(env, ("fit", "--vram", "24G", "--ctx", "8k"), subprocess.PIPE)
    _no_traceback(done.stderr)
    assert done.returncode == 0 and done.stderr == ""
    assert "Recommended: Gemma 3 27B fits fully" in done.stdout
    assert "#" in done.stdout and "|" in done.stdout  # the bars, in ASCII


def test_ascii_only_output_replaces_what_it_cannot_show(
    cli_env: dict, fake: FakeOllama
) -> None:
    fake.config.reply = "Gemma says “héllo” ▶ done"
    env = {**cli_env, "PYTHONIOENCODING": "ascii"}
    done = _run(env, ("ask", "hi"), subprocess.PIPE)
    _no_traceback(done.stderr)
    assert done.returncode == 0
    assert done.stdout.startswith("Gemma says ?h?llo? ? done")


def _command(monkeypatch: pytest.MonkeyPatch, run: Callable[[object], int]) -> None:
    """Make ``gemmatui probe`` run ``run``: a command module of its own, for ``main``."""
    import argparse

    from gemmatui import cli

    module = types.ModuleType("gemmatui.commands.probe")
    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gemmatui.commands.probe", module)
    parser = argparse.ArgumentParser(prog="gemmatui")
    parser.add_argument("command")
    monkeypatch.setattr(cli, "build_parser", lambda commands=cli.COMMANDS: parser)


def test_text_the_encoding_cannot_show_is_replaced_in_every_command(monkeypatch) -> None:
    """In-process: ``main`` sets ``sys.stdout`` up alike for every command."""
    from gemmatui import cli

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="strict")
    monkeypatch.setattr(sys, "stdout", stream)

    def run(args: object) -> int:
        print("naïve █")
        return 0

    _command(monkeypatch, run)
    assert cli.main(["probe"]) == 0
    assert sys.stdout is stream
    assert raw.getvalue() == b"na?ve ?\n"


def test_a_failed_write_is_told_apart_from_other_os_errors(monkeypatch, capsys) -> None:
    """Only a write to stdout is "cannot write the output"; another OSError is a bug
    and surfaces as one."""
    from gemmatui import cli

    def run(args: object) -> int:
        print("partial output")
        raise FileNotFoundError(2, "No such file or directory")

    _command(monkeypatch, run)
    with pytest.raises(FileNotFoundError):
        cli.main(["probe"])
    captured = capsys.readouterr()
    assert captured.out == "partial output\n"
    assert "cannot write the output" not in captured.err
