"""``gemmatui ask``: one prompt, the reply streamed to stdout. Scriptable; no Textual."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

if TYPE_CHECKING:
    from gemmatui.commands._common import Target
    from gemmatui.core.types import ChatStats

HELP = "ask a Gemma 3 model one question and stream the reply to stdout"

DESCRIPTION = """\
Send one prompt to Ollama and stream the reply to stdout as it arrives.

The prompt is the words after `ask`. Text piped on stdin is added after a blank
line (like `ollama run`); with `-` as the prompt, stdin is the whole prompt:

  gemmatui ask "why is the sky blue?"
  git diff | gemmatui ask "review this change"
  gemmatui ask - < question.txt

Every request carries the planned context (--ctx, else config num_ctx, else the
context the fit expects Ollama to use here) and the config's keep_alive.

exit codes: 0 ok, 2 usage error, 3 Ollama unreachable, 4 model not installed,
5 the reply failed (the model did not load, or the reply broke off: the text
received so far is still printed), 130 Ctrl-C."""


def temperature(text: str) -> float:
    """``--temperature``'s type: a finite number of 0 or more.

    Raises:
        argparse.ArgumentTypeError: Not such a number (argparse prints it on one line).

    >>> temperature("0.7")
    0.7
    >>> temperature("nan")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a finite number of 0 or more, not 'nan'
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of 0 or more, not {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``ask`` subcommand (standard library only)."""
    from gemmatui.cli import add_host_argument

    p = sub.add_parser(
        "ask",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "prompt", nargs="*", metavar="PROMPT", help="the question (`-`: read it from stdin)"
    )
    p.add_argument(
        "--model",
        metavar="NAME",
        help="1b, 4b, 12b, 27b or a full tag "
        "(default: config, else the largest installed one that fits)",
    )
    p.add_argument(
        "--ctx",
        metavar="N",
        help="context length, e.g. 8k or 32768 (default: config, else the fit's)",
    )
    p.add_argument("--system", metavar="TEXT", help="system prompt (default: config system_prompt)")
    p.add_argument(
        "--temperature",
        type=temperature,
        metavar="T",
        help="sampling temperature, 0 or more (model default: 1.0)",
    )
    p.add_argument("--seed", type=int, metavar="N", help="random seed, for repeatable replies")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (model, response, stats) at the end",
    )
    p.add_argument(
        "--stats", action="store_true", help="print a speed line on stderr after the reply"
    )
    add_host_argument(p)


# --------------------------------------------------------------------------- terminal safety


class ControlFilter:
    """Removes terminal control sequences from streamed text, across chunk boundaries.

    Drops ESC sequences (CSI ``ESC [ … final``, OSC ``ESC ] … BEL/ST``, DCS/SOS/PM/APC
    strings, two- and three-character escapes), their 8-bit C1 forms, and every other
    C0/C1 control character except newline and tab. A sequence split between two
    chunks is still recognised: the parser state carries over.

    >>> f = ControlFilter()
    >>> f.feed("red \\x1b[3"), f.feed("1mtext\\x1b[0m\\r\\n"), f.feed("\\x1b]0;title\\x07ok\\tdone")
    ('red ', 'text\\n', 'ok\\tdone')
    """

    _TEXT, _ESC, _CSI, _INTERMEDIATE, _STRING, _STRING_ESC = range(6)
    _STRING_STARTERS = frozenset("]PX^_")
    _C1_STRINGS = frozenset("\x90\x98\x9d\x9e\x9f")
    # An unterminated string would swallow the rest of the reply; give up after this.
    MAX_STRING = 4096

    def __init__(self) -> None:
        self._state = self._TEXT
        self._string_length = 0

    def feed(self, text: str) -> str:
        """Return the printable part of ``text``, remembering an unfinished sequence."""
        out: list[str] = []
        for char in text:
            self._step(char, out)
        return "".join(out)

    def _step(self, char: str, out: list[str]) -> None:
        code = ord(char)
        state = self._state
        if state == self._TEXT:
            if char == "\x1b":
                self._state = self._ESC
            elif char == "\x9b":
                self._state = self._CSI
            elif char in self._C1_STRINGS:
                self._start_string()
            elif char in "\n\t" or not (code < 0x20 or 0x7F <= code <= 0x9F):
                out.append(char)
        elif state == self._ESC:
            if char == "[":
                self._state = self._CSI
            elif char in self._STRING_STARTERS:
                self._start_string()
            elif 0x20 <= code <= 0x2F:
                self._state = self._INTERMEDIATE
            elif 0x30 <= code <= 0x7E:
                self._state = self._TEXT
            elif char != "\x1b":
                self._state = self._TEXT
                self._step(char, out)
        elif state in (self._CSI, self._INTERMEDIATE):
            final = (0x40 if state == self._CSI else 0x30) <= code <= 0x7E
            if final:
                self._state = self._TEXT
            elif not 0x20 <= code <= 0x3F:
                self._state = self._TEXT
                self._step(char, out)
        else:  # inside an OSC/DCS/... string, or just after an ESC in one
            self._string_length += 1
            ends = char in "\x07\x9c" or (state == self._STRING_ESC and char == "\\")
            if ends or self._string_length > self.MAX_STRING:
                self._state = self._TEXT
            else:
                self._state = self._STRING_ESC if char == "\x1b" else self._STRING

    def _start_string(self) -> None:
        self._state = self._STRING
        self._string_length = 0


# --------------------------------------------------------------------------- command


def read_prompt(words: list[str], stdin: BinaryIO | None) -> str:
    """The prompt from the words and stdin.

    ``-`` alone means "stdin is the prompt". Otherwise stdin is read only when it is
    not a terminal, and appended after a blank line. Stdin is read as bytes and decoded
    as UTF-8; a byte that is not valid UTF-8 becomes U+FFFD, whatever the locale.

    Args:
        words: The prompt words from the command line.
        stdin: The standard input's byte stream, or ``None`` when there is none.

    Returns:
        The prompt text.

    Raises:
        UsageError: No prompt at all.
    """
    from gemmatui.core.errors import UsageError

    def piped() -> str:
        return stdin.read().decode("utf-8", errors="replace") if stdin is not None else ""

    if words == ["-"]:
        prompt = piped()
    else:
        prompt = " ".join(words)
        if stdin is not None and not stdin.isatty():
            text = piped()
            if text.strip():
                prompt = f"{prompt}\n\n{text}" if prompt else text
    if not prompt.strip():
        raise UsageError(
            'no prompt: give one, e.g. gemmatui ask "why is the sky blue?", or pipe text in'
        )
    return prompt


def run(args: argparse.Namespace) -> int:
    """Ask, stream, and map failures to the documented exit codes."""
    import asyncio

    from gemmatui.commands._common import load_target, name_the_host, parse_ctx_option
    from gemmatui.core.catalog import model_tag

    ctx = parse_ctx_option(args.ctx)
    prompt = read_prompt(args.prompt, sys.stdin.buffer if sys.stdin is not None else None)
    target = load_target(args)
    name = args.model or target.settings.model
    model = model_tag(name) if name else None
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    output = _Output(sys.stdout, as_json=args.json)
    try:
        with name_the_host(target):
            asyncio.run(_ask(args, target, model, prompt, ctx, output))
    except KeyboardInterrupt:
        output.end_line()
        output.print_json(None, "interrupted")
        raise
    return 0


class _Output:
    """Writes the reply: streamed (filtered on a terminal) or collected for ``--json``.

    ``model`` and ``num_ctx`` are set once the request is under way; from then on
    ``--json`` prints one object however the reply ends (done, failed or interrupted).
    """

    def __init__(self, stream: TextIO, *, as_json: bool) -> None:
        self.stream = stream
        self.as_json = as_json
        self.filter = ControlFilter() if stream.isatty() else None
        self.text: list[str] = []
        self.model: str | None = None
        self.num_ctx: int | None = None
        self._open_line = False
        self._json_printed = False

    def write(self, text: str) -> None:
        self.text.append(text)
        if self.as_json or not text:
            return
        shown = self.filter.feed(text) if self.filter else text
        if shown:
            self.stream.write(shown)
            self.stream.flush()
            self._open_line = not shown.endswith("\n")

    def end_line(self) -> None:
        """Finish the reply with a newline unless it already ends with one."""
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False

    def print_json(self, stats: ChatStats | None, error: str | None) -> None:
        """With ``--json``, print the one object: the reply so far, its stats, any error.

        Does nothing without ``--json``, before the request is under way, or once the
        object is printed (a Ctrl-C after the reply must not print a second one).
        """
        if not self.as_json or self._json_printed or self.model is None or self.num_ctx is None:
            return
        self._json_printed = True
        import json

        obj: dict[str, Any] = {
            "model": self.model,
            "num_ctx": self.num_ctx,
            "response": "".join(self.text),
            "stats": None if stats is None else _stats_dict(stats),
        }
        if error is not None:
            obj["error"] = error
        self.stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.stream.flush()


async def _ask(
    args: argparse.Namespace,
    target: Target,
    model: str | None,
    prompt: str,
    ctx: int | None,
    output: _Output,
) -> None:
    """Resolve what is still open (model, context) with Ollama and the fit, then stream."""
    from gemmatui.commands._common import choose_installed, fit_report
    from gemmatui.core.errors import EXIT_GENERATION, ModelNotFound, OllamaError, OllamaHTTPError
    from gemmatui.core.ollama import gemma_installed

    num_ctx = ctx or target.settings.num_ctx
    async with target.client() as client:
        if model is None or num_ctx is None:
            installed = gemma_installed(await client.list_models()) if model is None else {}
            report = fit_report(target, ctx=ctx, installed=installed)
            num_ctx = num_ctx or report.settings.num_ctx
            if model is None:
                model = choose_installed(report, installed).variant.tag
        assert num_ctx is not None  # the fit always resolves a context
        system = args.system if args.system is not None else target.settings.system_prompt
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
        options: dict[str, Any] = {}
        if args.temperature is not None:
            options["temperature"] = args.temperature
        if args.seed is not None:
            options["seed"] = args.seed
        stats: ChatStats | None = None
        output.model, output.num_ctx = model, num_ctx
        try:
            async for chunk in client.chat(
                model,
                messages,
                num_ctx=num_ctx,
                keep_alive=target.settings.keep_alive,
                options=options,
            ):
                output.write(chunk.content)
                if chunk.stats is not None:
                    stats = chunk.stats
        except OllamaError as err:
            output.end_line()
            if isinstance(err, OllamaHTTPError) and not isinstance(err, ModelNotFound):
                err.exit_code = EXIT_GENERATION  # the model failed to load or run: no reply
            output.print_json(None, str(err))
            raise
    output.end_line()
    output.print_json(stats, None)
    if args.stats and stats is not None:
        print(stats_line(model, num_ctx, stats), file=sys.stderr)


def _stats_dict(stats: ChatStats) -> dict[str, Any]:
    """The stats of a reply as ``--json`` prints them."""
    return {
        "eval_count": stats.eval_count,
        "eval_duration_s": stats.eval_duration_s,
        "eval_rate": stats.eval_rate,
        "prompt_eval_count": stats.prompt_eval_count,
        "prompt_eval_duration_s": stats.prompt_eval_duration_s,
        "prompt_rate": stats.prompt_rate,
        "load_duration_s": stats.load_duration_s,
        "total_duration_s": stats.total_duration_s,
        "time_to_first_token_s": stats.time_to_first_token_s,
        "done_reason": stats.done_reason,
    }


def stats_line(model: str, num_ctx: int, stats: ChatStats) -> str:
    """One line for people: speed, first-token wait, load time, why it stopped.

    >>> from gemmatui.core.types import ChatStats
    >>> line = stats_line("gemma3:4b-it-qat", 8192, ChatStats(
    ...     eval_count=120, eval_duration_s=2.0, prompt_eval_count=30, prompt_eval_duration_s=0.1,
    ...     load_duration_s=1.5, done_reason="stop", time_to_first_token_s=1.7))
    >>> for part in line.split("; "):
    ...     print(part)
    gemma3:4b-it-qat at 8k: 120 tokens, 60.0 tok/s
    prompt 30 tokens, 300.0 tok/s
    first token 1.70 s
    loaded in 1.50 s
    done: stop
    """
    from gemmatui.core.units import format_ctx

    parts = [f"{model} at {format_ctx(num_ctx)}: {stats.eval_count} tokens"]
    if stats.eval_rate is not None:
        parts[0] += f", {stats.eval_rate:.1f} tok/s"
    prompt = f"prompt {stats.prompt_eval_count} tokens"
    if stats.prompt_rate is not None:
        prompt += f", {stats.prompt_rate:.1f} tok/s"
    parts.append(prompt)
    if stats.time_to_first_token_s is not None:
        parts.append(f"first token {stats.time_to_first_token_s:.2f} s")
    if stats.reloaded:
        parts.append(f"loaded in {stats.load_duration_s:.2f} s")
    parts.append(f"done: {stats.done_reason or 'unknown'}")
    return "; ".join(parts)
