"""``gemmatui ask``: one prompt, the reply streamed to stdout. Scriptable; no Textual."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

if TYPE_CHECKING:
    from gemmatui.commands._common import Target
    from gemmatui.core.images import Attachment
    from gemmatui.core.types import ChatStats, InstalledModel

HELP = "ask a Gemma 3 model one question and stream the reply to stdout"

DESCRIPTION = """\
Send one prompt to Ollama (or llama-server) and stream the reply to stdout as it
arrives.

The prompt is the words after `ask`. Text piped on stdin is added after a blank
line (like `ollama run`); with `-` as the prompt, stdin is the whole prompt:

  gemmatui ask "why is the sky blue?"
  git diff | gemmatui ask "review this change"
  gemmatui ask - < question.txt

Every request carries the planned context (--ctx, else config num_ctx, else the
context the fit expects Ollama to use here), capped at what the model reads, and
the config's keep_alive.

--image PATH (repeatable) attaches a PNG, JPEG, WebP or GIF of up to 20 MiB to the
prompt; Gemma 3 4B, 12B and 27B read images (1B does not), each one taking 256
tokens of context. Files are checked (by their bytes) before anything is sent:

  gemmatui ask --model 4b --image chart.png "what does this chart show?"

The engine (--engine, $GEMMATUI_ENGINE, config engine, else auto: ask the host)
may be a llama-server: it answers with the model and context it was started with
(a note on stderr says so when --model or --ctx asks otherwise). When nothing
answers at Ollama's default address and no host was chosen, an engine at
llama-server's (:8080) or LM Studio's (:1234) default address is used, with a note.
See docs/engines.md.

On a terminal, control sequences in the reply are removed; through a pipe or into
a file the reply is written as the model sent it (it is data for a program).

exit codes: 0 ok, 2 usage error, 3 engine unreachable (or the server is not
Ollama or llama-server), 4 model not installed, 5 the reply failed (the model
did not load, the reply broke off, or nothing came for --timeout seconds: the
text received so far is still printed), 130 Ctrl-C. With --json, every outcome is one JSON object on
stdout with "error" and "exit_code"."""

#: The smallest context ``ask`` sends: llama.cpp sizes its KV cache in steps of 256
#: cells, so a smaller context saves nothing and leaves no room for a reply.
MIN_CTX = 256
#: The largest: what the Gemma 3 models with the longest context (4B, 12B, 27B) read.
MAX_CTX = 131072
#: Ollama's ``seed`` option is a Go ``int`` (64 bits).
SEED_RANGE = (-(2**63), 2**63 - 1)
#: ``--timeout``'s default: long enough for a 27B load from a slow disk.
DEFAULT_TIMEOUT = 300.0


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


def seed(text: str) -> int:
    """``--seed``'s type: a whole number that fits Ollama's ``seed`` (a Go ``int64``).

    Raises:
        argparse.ArgumentTypeError: Not such a number.

    >>> seed("42"), seed("-1")
    (42, -1)
    >>> seed("99999999999999999999999")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a whole number from -9223372036854775808 to ..., not '9...'
    """
    low, high = SEED_RANGE
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from {low} to {high}, not {text!r}"
        )
    return value


def timeout(text: str) -> float:
    """``--timeout``'s type: a finite number of seconds above 0.

    Raises:
        argparse.ArgumentTypeError: Not such a number.

    >>> timeout("2.5")
    2.5
    >>> timeout("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a number of seconds above 0, not '0'
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``ask`` subcommand (standard library only)."""
    from gemmatui.cli import add_engine_argument, add_host_argument

    p = sub.add_parser(
        "ask",
        help=HELP,
        description=DESCRIPTION,
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
        help="context length from 256 to 128k, e.g. 8k or 32768, capped at the model's "
        "maximum (default: config, else the fit's)",
    )
    p.add_argument("--system", metavar="TEXT", help="system prompt (default: config system_prompt)")
    p.add_argument(
        "--temperature",
        type=temperature,
        metavar="T",
        help="sampling temperature, 0 or more (model default: 1.0)",
    )
    p.add_argument(
        "--seed",
        type=seed,
        metavar="N",
        help="random seed (a 64-bit integer), for repeatable replies",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (model, response, stats, error, exit_code) at the end, "
        "whatever the outcome",
    )
    p.add_argument(
        "--stats", action="store_true", help="print a speed line on stderr after the reply"
    )
    p.add_argument(
        "--timeout",
        type=timeout,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="give up (exit 5, keeping the text so far) when the engine sends nothing for "
        f"this long, the model load before the first token included (default: "
        f"{DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--image",
        dest="images",
        action="append",
        metavar="PATH",
        help="attach a PNG, JPEG, WebP or GIF image (up to 20 MiB; repeatable). Gemma 3 "
        "4B, 12B and 27B read images, each costing 256 tokens of context",
    )
    add_host_argument(p)
    add_engine_argument(p)


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
    """Ask, stream, and map failures to the documented exit codes.

    With ``--json`` every outcome that gets this far (argparse's own errors do not)
    prints exactly one JSON object: the reply, or as much of it as came, and the error
    and exit code (see :meth:`_Output.print_json`). The error is raised on for the CLI
    to print on stderr and exit with.
    """
    import asyncio

    from gemmatui.commands._common import load_target, name_the_host, parse_ctx_option
    from gemmatui.core.catalog import model_tag
    from gemmatui.core.errors import EXIT_INTERRUPTED, GemmaTuiError

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")
    output = _Output(sys.stdout, as_json=args.json)
    try:
        ctx = _checked_ctx(parse_ctx_option(args.ctx), "--ctx")
        prompt = read_prompt(args.prompt, sys.stdin.buffer if sys.stdin is not None else None)
        images = _read_images(getattr(args, "images", None) or [], output)
        target = load_target(args)
        name = args.model or target.settings.model
        model = model_tag(name) if name else None
        output.model = model
        if images and model is not None:
            _refuse_text_only(model)  # known from the catalogue: no server is asked
        with name_the_host(target):
            asyncio.run(_ask(args, target, model, prompt, ctx, output))
    except GemmaTuiError as err:
        output.end_line()
        output.print_json(None, str(err), err.exit_code)
        raise
    except KeyboardInterrupt:
        output.end_line()
        output.print_json(None, "interrupted", EXIT_INTERRUPTED)
        raise
    return 0


def _read_images(paths: list[str], output: _Output) -> list[Attachment]:
    """Read every ``--image`` before anything is sent; the first bad one is refused.

    Raises:
        ImageError: Missing, unreadable, too large, cut short or not an image (exit 2).
    """
    if not paths:
        return []
    from gemmatui.core.images import read_images

    images = read_images(paths)
    output.images = images
    return images


def _refuse_text_only(model: str) -> None:
    """Refuse images for a catalogue model that reads text only (1B)."""
    from gemmatui.core.images import text_only_refusal

    refusal = text_only_refusal(model)
    if refusal is not None:
        raise refusal


def _checked_ctx(value: int | None, source: str) -> int | None:
    """A context from ``--ctx`` or the config, refused outside ``MIN_CTX``..``MAX_CTX``.

    Raises:
        UsageError: Out of range (``source`` names where the value came from).

    >>> _checked_ctx(8192, "--ctx"), _checked_ctx(None, "--ctx")
    (8192, None)
    >>> _checked_ctx(3, "--ctx")
    Traceback (most recent call last):
    gemmatui.core.errors.UsageError: --ctx 3 is out of range: a context is from 256 to 128k tokens
    """
    if value is None or MIN_CTX <= value <= MAX_CTX:
        return value
    from gemmatui.core.errors import UsageError
    from gemmatui.core.units import format_ctx

    raise UsageError(
        f"{source} {format_ctx(value)} is out of range: a context is from {MIN_CTX} "
        f"to {format_ctx(MAX_CTX)} tokens"
    )


class _Output:
    """Writes the reply: streamed (sanitised on a terminal) or collected for ``--json``.

    A reply streamed to a terminal goes through :class:`gemmatui.core.text.Sanitizer`
    (a model's text must never drive the terminal); through a pipe or into a file it
    is written as received, because it is data for a program. ``--json`` escapes it.
    """

    def __init__(self, stream: TextIO, *, as_json: bool) -> None:
        from gemmatui.core.text import Sanitizer

        self.stream = stream
        self.as_json = as_json
        self.sanitizer = Sanitizer() if not as_json and stream.isatty() else None
        self.text: list[str] = []
        self.model: str | None = None
        self.num_ctx: int | None = None
        self.engine: str | None = None  # the engine's kind, once connected
        self.images: list[Attachment] = []  # the --image attachments, once read
        self._open_line = False
        self._json_printed = False

    def write(self, text: str) -> None:
        self.text.append(text)
        if self.as_json or not text:
            return
        shown = self.sanitizer.feed(text) if self.sanitizer else text
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

    def print_json(self, stats: ChatStats | None, error: str | None, exit_code: int) -> None:
        """With ``--json``, print the one object: the reply so far, its stats, the outcome.

        Keys: ``model``, ``num_ctx`` and ``engine`` (``ollama``, ``llama-server`` or
        ``openai``; ``null`` when the failure came before they were known),
        ``response`` (the text received, complete or not), ``stats`` (``null``
        unless the reply finished), ``error`` (``null`` on success) and ``exit_code``.
        Does nothing without ``--json`` or once the object is printed (a Ctrl-C after
        the reply must not print a second one).
        """
        if not self.as_json or self._json_printed:
            return
        self._json_printed = True
        import json

        obj: dict[str, Any] = {
            "model": self.model,
            "num_ctx": self.num_ctx,
            "engine": self.engine,
            "response": "".join(self.text),
            "stats": None if stats is None else _stats_dict(stats),
            "images": [image.to_json() for image in self.images],
            "image_tokens": _image_tokens(self.images),
            "error": error,
            "exit_code": exit_code,
        }
        # ASCII only: non-ASCII text, C1 controls and bidi marks travel as \u escapes, so
        # the object is safe on a terminal and survives any output encoding.
        self.stream.write(json.dumps(obj) + "\n")
        self.stream.flush()


async def _ask(
    args: argparse.Namespace,
    target: Target,
    model: str | None,
    prompt: str,
    ctx: int | None,
    output: _Output,
) -> None:
    """Connect to the engine, resolve the model and context, then stream."""
    from gemmatui.commands._common import choose_installed, fit_report, served_model
    from gemmatui.core.errors import (
        EXIT_GENERATION,
        EXIT_OK,
        ModelNotFound,
        OllamaError,
        OllamaHTTPError,
        OllamaTimeout,
    )
    from gemmatui.core.ollama import gemma_installed

    explicit = "--ctx" if ctx else "config num_ctx" if target.settings.num_ctx else None
    num_ctx = ctx or _checked_ctx(target.settings.num_ctx, "config num_ctx")
    async with await target.connect(read_timeout=args.timeout) as client:
        output.engine = client.kind
        await client.version()  # is it that engine at all? (NotOllama: exit 3)
        if client.kind != "ollama":
            # A llama-server serves one model at the context it was started with.
            model, served_ctx = await served_model(client, model if args.model else None, ctx)
            num_ctx = served_ctx or num_ctx or 0
        else:
            models = await client.list_models()
            if model is None or num_ctx is None:
                installed = gemma_installed(models)
                report = fit_report(target, ctx=ctx, installed=installed)
                num_ctx = num_ctx or report.settings.num_ctx
                if model is None:
                    model = choose_installed(report, installed).variant.tag
            assert num_ctx is not None  # the fit always resolves a context
            num_ctx = _fitted_ctx(model, num_ctx, models, say=explicit is not None)
        images = output.images
        if images:
            from gemmatui.core.images import check_vision

            await check_vision(client, model)  # before any chat request
        system = args.system if args.system is not None else target.settings.system_prompt
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
        if images:  # Ollama's form; the llama-server adapter turns it into content parts
            messages[-1]["images"] = [image.base64() for image in images]
        _warn_if_too_long(messages, images, num_ctx)
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
        except OllamaTimeout as err:
            raise OllamaTimeout(f"{err} (or give it longer: --timeout SECONDS)") from err
        except OllamaError as err:
            if isinstance(err, OllamaHTTPError) and not isinstance(err, ModelNotFound):
                err.exit_code = EXIT_GENERATION  # the model failed to load or run: no reply
            raise
    output.end_line()
    output.print_json(stats, None, EXIT_OK)
    if args.stats and stats is not None:
        print(stats_line(model, num_ctx, stats, images=len(output.images)), file=sys.stderr)


def _fitted_ctx(
    model: str, num_ctx: int, installed: list[InstalledModel], *, say: bool
) -> int:
    """``num_ctx`` as the model will really run it: at most what it reads, and at least
    ``VISION_MIN_CTX`` for a model that reads images (Ollama applies both limits itself;
    sending the real value keeps the request, ``--json`` and ``--stats`` truthful).

    The model's maximum is the installed blob's ``context_length`` (``/api/tags``), else
    the catalogue's; unknown for other tags, which are sent as they are.

    Args:
        model: The full tag.
        num_ctx: The planned context.
        installed: What ``/api/tags`` lists.
        say: The user asked for this context (``--ctx`` or the config): say on stderr,
            once, when it is changed. The fit's default is adjusted silently.
    """
    from gemmatui.core.catalog import VISION_MIN_CTX, find_variant
    from gemmatui.core.units import format_ctx

    variant = find_variant(model)
    row = next((m for m in installed if m.name == model), None)
    most = (row.context_length if row else None) or (
        variant.arch.context_length if variant else None
    )
    vision = (variant.arch.vision if variant else False) or (
        row is not None and "vision" in row.capabilities
    )
    name = variant.key if variant else model
    fitted, note = num_ctx, ""
    if most is not None and num_ctx > most:
        fitted = most
        note = f"{name} reads at most {format_ctx(most)} tokens; using {format_ctx(most)}"
    elif vision and num_ctx < VISION_MIN_CTX:
        fitted = VISION_MIN_CTX
        note = (
            f"Ollama runs {name}, which reads images, with at least "
            f"{format_ctx(VISION_MIN_CTX)} tokens; using {format_ctx(VISION_MIN_CTX)}"
        )
    if say and fitted != num_ctx:
        print(f"gemmatui: {note}", file=sys.stderr)
    return fitted


def _image_tokens(images: list[Attachment]) -> int:
    """Context tokens the images take (256 each in Gemma 3)."""
    from gemmatui.core.images import image_tokens

    return image_tokens(len(images))


def _warn_if_too_long(
    messages: list[dict[str, Any]], images: list[Attachment], num_ctx: int | None
) -> None:
    """Say on stderr, before sending, when the prompt and its images will not fit.

    The text is estimated at four characters a token (see
    :func:`gemmatui.core.images.estimate_text_tokens`); each image is exactly 256.
    Nothing is said without images: a text-only prompt is the engine's to cut.
    """
    if not images or not num_ctx:
        return
    from gemmatui.core.images import estimate_text_tokens
    from gemmatui.core.units import format_ctx

    text = sum(estimate_text_tokens(str(m.get("content") or "")) for m in messages)
    pictures = _image_tokens(images)
    if text + pictures <= num_ctx:
        return
    count = f"{len(images)} image" + ("s" if len(images) != 1 else "")
    print(
        f"gemmatui: warning: the prompt (about {text} tokens, estimated at 4 characters a "
        f"token) and {count} ({pictures} tokens) exceed the {format_ctx(num_ctx)} context; "
        "the model will not see all of it (raise --ctx)",
        file=sys.stderr,
    )


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


def stats_line(model: str, num_ctx: int, stats: ChatStats, *, images: int = 0) -> str:
    """One line for people: speed, first-token wait, load time, images, why it stopped.

    ``images`` is how many images the prompt carried (each 256 tokens of context, part
    of the prompt count the engine reports).

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
    if images:
        from gemmatui.core.images import image_tokens

        parts.append(f"images {images} ({image_tokens(images)} tokens)")
    parts.append(f"done: {stats.done_reason or 'unknown'}")
    return "; ".join(parts)
