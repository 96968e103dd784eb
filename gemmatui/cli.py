"""Command-line entry point: ``gemmatui [COMMAND] ...``.

Only the standard library is imported here at module level. Each command lives in
``gemmatui/commands/<name>.py`` with ``register(subparsers)`` (stdlib only, runs at
start-up: only for the command that runs, when the command line starts with it) and
``run(args) -> int`` (imports what it needs inside). ``--help``, ``--version``, ``fit``
and ``ask`` therefore never load Textual.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from typing import TYPE_CHECKING

from gemmatui import __version__
from gemmatui.core.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_USAGE, GemmaTuiError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from types import ModuleType
    from typing import Any, TextIO

# Subcommands, in the order --help lists them. Each is gemmatui.commands.<name>.
COMMANDS = ("fit", "ask", "pull", "models", "serve")

EPILOG = """\
exit codes (every command):
  0    ok
  1    does not fit / generic failure
  2    usage error
  3    engine unreachable (Ollama, llama-server), or not an engine
  4    model not installed
  5    error during generation
  130  interrupted (Ctrl-C)

Run `gemmatui` with no command to open the terminal app."""


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` (``$COLUMNS``, else the terminal's width,
    else 80) without importing shutil, which loads bz2, lzma and zlib: argparse imports
    it for this one number, ~3 ms of every command's start."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs kept as written; the width as argparse's own formatter
    takes it (:func:`_terminal_columns` less 2)."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    """argparse that prints one line (not the whole usage) and exits 2 on bad input;
    help is formatted by :class:`_HelpFormatter` (the commands' parsers are ``_Parser``
    too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def add_host_argument(parser: argparse.ArgumentParser, *, subcommand: bool = True) -> None:
    """``--host`` is accepted before and after the command name; a subcommand's own
    option only overrides the top-level one when it is given."""
    parser.add_argument(
        "--host",
        metavar="URL",
        default=argparse.SUPPRESS if subcommand else None,
        help="engine server, Ollama or llama-server (default: $OLLAMA_HOST, then config, "
        "then http://127.0.0.1:11434)",
    )


def add_engine_argument(parser: argparse.ArgumentParser, *, subcommand: bool = True) -> None:
    """``--engine`` is accepted before and after the command name, like ``--host``."""
    parser.add_argument(
        "--engine",
        metavar="NAME",
        default=argparse.SUPPRESS if subcommand else None,
        help="auto, ollama or llama-server (default: $GEMMATUI_ENGINE, then config, then "
        "auto: ask the host what it is)",
    )


def build_parser(commands: Iterable[str] = COMMANDS) -> argparse.ArgumentParser:
    """The command line's parser with the subcommands named in ``commands``: all of
    them, unless ``main`` knows which one runs (:func:`_commands_to_build`)."""
    parser = _Parser(
        prog="gemmatui",
        description="Run Google's Gemma 3 QAT models well on the hardware you own.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"gemmatui {__version__}")
    add_host_argument(parser, subcommand=False)
    add_engine_argument(parser, subcommand=False)
    parser.add_argument("--theme", metavar="NAME", help="colour theme for the terminal app")
    parser.add_argument("--ctx", metavar="N", help="context length for the terminal app (e.g. 32k)")
    parser.add_argument("--model", metavar="NAME", help="model for the terminal app (e.g. 27b)")
    parser.add_argument(
        "--gguf",
        metavar="PATH",
        help="terminal app: plan this Gemma 3 GGUF on the model screen; Enter starts "
        "llama-server on it",
    )
    parser.add_argument(
        "--mmproj", metavar="FILE", help="terminal app: the --gguf file's vision projector"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in commands:
        module = importlib.import_module(f"gemmatui.commands.{name}")
        module.register(sub)
    return parser


def _commands_to_build(argv: Sequence[str]) -> Sequence[str]:
    """The subcommands ``main`` builds to parse ``argv``: the one ``argv`` starts with,
    else all of them (top-level options first, ``--help``, no command).

    ``gemmatui fit ...`` can run nothing but ``fit``: not importing and building the
    other commands is a part of its quick start.
    """
    return argv[:1] if argv[:1] and argv[0] in COMMANDS else COMMANDS


class OutputError(Exception):
    """Standard output cannot be written (disk full, I/O error, an encoding that
    cannot represent the text). ``str(err)`` says why, in a few words."""

    def __init__(self, cause: Exception) -> None:
        self.cause = cause
        if isinstance(cause, OSError):
            text = cause.strerror or str(cause)
        elif isinstance(cause, UnicodeEncodeError):
            text = (
                f"its encoding ({cause.encoding}) has no "
                f"{cause.object[cause.start:cause.end]!r}; set PYTHONIOENCODING=utf-8"
            )
        else:
            text = str(cause)
        super().__init__(text)


class _CheckedStdout:
    """``sys.stdout`` while a command runs: a write or flush that fails raises
    :class:`OutputError`, so ``main`` can tell it from any other ``OSError``.

    Everything else (``isatty``, ``encoding``, ``reconfigure`` ...) is the wrapped
    stream's. A reader that went away still raises :class:`BrokenPipeError`.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except (OSError, UnicodeEncodeError) as err:
            raise OutputError(err) from err

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as err:
            raise OutputError(err) from err

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _run_command(module: ModuleType, args: argparse.Namespace) -> int:
    """Run a command with a checked ``sys.stdout``, flushed before the command ends.

    The flush surfaces a failed write here, where ``main`` reports it, rather than at
    interpreter exit ("Exception ignored ..."). Text the output encoding cannot
    represent becomes ``?`` instead of a :class:`UnicodeEncodeError` (an ASCII-only
    ``PYTHONIOENCODING``); a stream set up more leniently is left as it is.

    Returns:
        The command's exit code.

    Raises:
        OutputError: Standard output could not be written.
        BrokenPipeError: Its reader went away.
    """
    stream = sys.stdout
    if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
        try:
            stream.reconfigure(errors="replace")
        except (ValueError, OSError):  # pragma: no cover - a stream that refuses
            pass
    checked = _CheckedStdout(stream)
    sys.stdout = checked  # type: ignore[assignment]
    try:
        code = int(module.run(args) or 0)
        checked.flush()
        return code
    except BaseException:
        # The command failed (or its output did): keep its error, and make sure
        # what it left in the buffer cannot fail once more at exit.
        try:
            checked.flush()
        except (OutputError, OSError):
            _discard_output(stream)
        raise
    finally:
        sys.stdout = stream


def _discard_output(stream: TextIO | None = None) -> None:
    """Point standard output at the null device after a failed write.

    Python flushes ``sys.stdout`` once more at exit; on a full disk or a closed pipe
    that flush would fail again and print "Exception ignored ...". A stream without
    a file descriptor (a test's capture) is left alone.
    """
    stream = stream if stream is not None else sys.stdout
    if stream is None:
        return
    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError, AttributeError):
        return
    try:
        os.dup2(devnull, fd)
    except OSError:
        pass
    finally:
        os.close(devnull)


def _leave_objects_to_the_os() -> None:
    """The process ends once ``main`` returns: take what it built (the imports' modules,
    classes and functions, tens of thousands of objects, most in reference cycles) out
    of the garbage collector's sight, so that Python's exit does not walk and free them
    one by one (~5 ms of ``fit``'s start); the operating system reclaims the memory.
    Exit handlers still run and the standard streams are still flushed."""
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    """Run one command line and return its exit code.

    Args:
        argv: The arguments; ``None`` means this process's (``sys.argv[1:]``): ``main``
            is then the program (console script, ``python -m gemmatui``), and a command
            ends with :func:`_leave_objects_to_the_os`.
    """
    if sys.stdout is None:  # started with standard output closed (`gemmatui ... >&-`)
        if sys.stderr is not None:
            print("gemmatui: error: standard output is closed", file=sys.stderr)
        return EXIT_FAIL
    program = argv is None
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(_commands_to_build(argv))
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from gemmatui.tui.terminal import require_terminal

            require_terminal()  # before Textual loads: no terminal, one line, exit 2
            from gemmatui.tui.app import run_tui

            return run_tui(args)
        module = importlib.import_module(f"gemmatui.commands.{args.command}")
        return _run_command(module, args)
    except GemmaTuiError as err:
        print(f"gemmatui: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("gemmatui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `gemmatui fit | head`: the reader went away; that is not our error.
        _discard_output()
        return 0
    except OutputError as err:
        # `gemmatui fit > /dev/full`: one line, not a traceback.
        print(f"gemmatui: error: cannot write the output: {err}", file=sys.stderr)
        _discard_output()
        return EXIT_FAIL
    finally:
        if program and args.command is not None:
            _leave_objects_to_the_os()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
