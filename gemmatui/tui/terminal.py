"""Whether the terminal app can run: it needs a terminal on standard input and output.

Without one (``gemmatui < /dev/null > out``, a cron job, a pipe) Textual would write
escape codes into the file and wait for keys that never come. This module imports
neither Textual nor anything heavy, so ``gemmatui`` can refuse before loading them.
"""

from __future__ import annotations

import sys
from typing import TextIO

from gemmatui.core.errors import UsageError

NEEDS_TERMINAL = (
    "the terminal app needs a terminal (stdin and stdout); "
    "for scripts use `gemmatui ask` or `gemmatui fit`"
)


def is_terminal(stream: TextIO | None) -> bool:
    """Whether ``stream`` is open and connected to a terminal."""
    if stream is None:
        return False
    try:
        return stream.isatty()
    except (ValueError, OSError):  # closed, or not a real file
        return False


def require_terminal(stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
    """Raise unless both ``stdin`` and ``stdout`` (default: ``sys``'s) are terminals.

    Raises:
        UsageError: One of them is not a terminal (exit code 2); the message says what
            to use instead.
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    if not (is_terminal(stdin) and is_terminal(stdout)):
        raise UsageError(NEEDS_TERMINAL)
