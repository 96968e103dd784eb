"""What keeps a command's start short (issue #11), without changing what it does:
``main`` builds only the command a command line starts with, the help formatter sizes
itself without shutil, and a command run as the program leaves its objects to the
operating system at exit (``gc.freeze``) but never does so in-process.

``tests/test_import_hygiene.py`` checks which modules ``fit`` does (not) load.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import subprocess
import sys

import pytest

from gemmatui import cli
from tests.cli.conftest import REPO

ARGVS = [
    ["fit", "--json"],
    ["fit", "--ctx", "32k", "--kv-cache", "q8_0", "--host", "127.0.0.1:9", "--engine", "ollama"],
    ["--host", "127.0.0.1:9", "fit", "--vram", "24G"],
    ["--model", "fit"],  # "fit" is --model's value here: the terminal app, no command
    ["ask", "--json", "hello"],
    ["pull", "4b"],
    ["models", "--json"],
    ["serve", "model.gguf", "--port", "8081"],
    ["--ctx", "8k"],
    [],
]
BAD_ARGVS = [
    ["fit", "--bogus"],
    ["fit", "ask"],
    ["fit", "--flash-attention", "maybe"],
    ["fit", "--ctx"],
    ["bogus"],
]


def _name(argv: list[str]) -> str:
    return " ".join(argv) or "(none)"


@pytest.mark.parametrize("argv", ARGVS, ids=_name)
def test_the_parser_main_builds_reads_a_command_line_as_the_whole_one_does(argv):
    whole = cli.build_parser().parse_args(argv)
    built = cli.build_parser(cli._commands_to_build(argv)).parse_args(argv)
    assert vars(built) == vars(whole)


@pytest.mark.parametrize("argv", BAD_ARGVS, ids=_name)
def test_the_parser_main_builds_refuses_what_the_whole_one_refuses(argv, capsys):
    said = []
    for parser in (cli.build_parser(), cli.build_parser(cli._commands_to_build(argv))):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(argv)
        said.append((exited.value.code, capsys.readouterr().err))
    assert said[0] == said[1]
    assert said[0][0] == 2 and said[0][1].startswith("gemmatui")


def test_a_command_line_that_starts_with_a_command_builds_that_command_alone():
    assert list(cli._commands_to_build(["fit", "--json"])) == ["fit"]
    assert list(cli._commands_to_build(["serve", "fit"])) == ["serve"]
    assert cli._commands_to_build(["--host", "127.0.0.1:9", "fit"]) == cli.COMMANDS
    assert cli._commands_to_build(["--help"]) == cli.COMMANDS
    assert cli._commands_to_build([]) == cli.COMMANDS


@pytest.mark.parametrize("columns", [None, "", "0", "-5", "wide", "40", "132"])
def test_help_is_as_wide_as_argparse_itself_would_make_it(monkeypatch, columns):
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert cli._terminal_columns() == shutil.get_terminal_size().columns


@pytest.mark.parametrize("columns", ["50", "100"])
def test_help_reads_as_with_argparse_own_raw_description_formatter(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    top = cli.build_parser()
    (commands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    parsers = [top, *(commands.choices[name] for name in cli.COMMANDS)]
    ours = [parser.format_help() for parser in parsers]
    for parser in parsers:
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
    assert ours == [parser.format_help() for parser in parsers]


def test_a_command_run_in_process_leaves_the_garbage_collector_alone(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("GEMMATUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    frozen = gc.get_freeze_count()
    assert cli.main(["fit", "--vram", "24G", "--ram", "32G", "--json"]) == 0
    assert capsys.readouterr().out.startswith("{")
    assert gc.get_freeze_count() == frozen


def test_a_command_run_as_the_program_leaves_its_objects_to_the_os(tmp_path):
    """``main()`` reading ``sys.argv``, as the console script and ``python -m gemmatui``
    call it: the objects are frozen once the command is done (its output is complete)."""
    code = (
        "import gc, sys\n"
        "from gemmatui.cli import main\n"
        "sys.argv = ['gemmatui', 'fit', '--vram', '24G', '--ram', '32G', '--json']\n"
        "rc = main()\n"
        "print(rc, gc.get_freeze_count() > 0, file=sys.stderr)\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "GEMMATUI_"))},
        "GEMMATUI_CONFIG": str(tmp_path / "config.toml"),
        "OLLAMA_HOST": "127.0.0.1:9",
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stderr.split() == ["0", "True"], out.stderr
    assert out.stdout.startswith("{") and out.stdout.endswith("}\n")
