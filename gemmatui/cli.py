"""Command-line entry point: ``gemmatui [COMMAND] ...``.

Only the standard library is imported here at module level. Each command lives in
``gemmatui/commands/<name>.py`` with ``register(subparsers)`` (stdlib only, runs at
start-up) and ``run(args) -> int`` (imports what it needs inside). ``--help``,
``--version``, ``fit`` and ``ask`` therefore never load Textual.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gemmatui import __version__
from gemmatui.core.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_USAGE, GemmaTuiError

# Subcommands, in the order --help lists them. Each is gemmatui.commands.<name>.
COMMANDS = ("fit", "ask", "pull", "models")

EPILOG = """\
exit codes (every command):
  0    ok
  1    does not fit / generic failure
  2    usage error
  3    Ollama unreachable
  4    model not installed
  5    error during generation
  130  interrupted (Ctrl-C)

Run `gemmatui` with no command to open the terminal app."""


class _Parser(argparse.ArgumentParser):
    """argparse that prints one line (not the whole usage) and exits 2 on bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def add_host_argument(parser: argparse.ArgumentParser, *, subcommand: bool = True) -> None:
    """``--host`` is accepted before and after the command name; a subcommand's own
    option only overrides the top-level one when it is given."""
    parser.add_argument(
        "--host",
        metavar="URL",
        default=argparse.SUPPRESS if subcommand else None,
        help="Ollama server (default: $OLLAMA_HOST, then config, then http://127.0.0.1:11434)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gemmatui",
        description="Run Google's Gemma 3 QAT models well on the hardware you own.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gemmatui {__version__}")
    add_host_argument(parser, subcommand=False)
    parser.add_argument("--theme", metavar="NAME", help="colour theme for the terminal app")
    parser.add_argument("--ctx", metavar="N", help="context length for the terminal app (e.g. 32k)")
    parser.add_argument("--model", metavar="NAME", help="model for the terminal app (e.g. 27b)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"gemmatui.commands.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if sys.stdout is None:  # started with standard output closed (`gemmatui ... >&-`)
        if sys.stderr is not None:
            print("gemmatui: error: standard output is closed", file=sys.stderr)
        return EXIT_FAIL
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from gemmatui.tui.app import run_tui

            return run_tui(args)
        module = importlib.import_module(f"gemmatui.commands.{args.command}")
        return int(module.run(args) or 0)
    except GemmaTuiError as err:
        print(f"gemmatui: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("gemmatui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `gemmatui fit | head`: the reader went away; that is not our error.
        try:
            sys.stdout = None  # type: ignore[assignment]
        finally:
            return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
