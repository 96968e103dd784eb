"""``gemmatui pull``: download a Gemma 3 QAT variant through Ollama, with progress."""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from gemmatui.commands._common import Target
    from gemmatui.core.catalog import Variant
    from gemmatui.core.errors import OllamaError
    from gemmatui.core.types import PullProgress

HELP = "download a Gemma 3 QAT model (default: the one recommended for this machine)"

DESCRIPTION = """\
Download a Gemma 3 QAT variant with Ollama: 1b, 4b, 12b or 27b (or its full tag,
e.g. gemma3:27b-it-qat). Without a name, pull the variant `gemmatui fit`
recommends for this machine.

When Ollama runs on this machine, the free space in its models directory is
checked first. Ctrl-C stops the download; run the same command again to resume.

Pulling needs Ollama: a llama-server serves the GGUF it was started with (see
`gemmatui serve`), so --host pointing at one is refused (exit 3).

exit codes: 0 ok, 1 the pull failed (e.g. disk full), 2 usage error,
3 Ollama unreachable (or the host is another engine), 130 Ctrl-C."""

# Redraw the progress line at most this often (seconds).
_REDRAW = 0.1
# Window for the download rate (seconds).
_RATE_WINDOW = 5.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``pull`` subcommand (standard library only)."""
    from gemmatui.cli import add_engine_argument, add_host_argument

    p = sub.add_parser(
        "pull",
        help=HELP,
        description=DESCRIPTION,
    )
    p.add_argument("variant", nargs="?", metavar="VARIANT", help="1b, 4b, 12b, 27b or a full tag")
    p.add_argument(
        "--ctx", metavar="N", help="context to plan for when choosing the default variant"
    )
    add_host_argument(p)
    add_engine_argument(p)


def run(args: argparse.Namespace) -> int:
    """Pick the variant, check the disk, pull; Ctrl-C exits 130 with a resume hint."""
    import asyncio

    from gemmatui.commands._common import (
        fit_report,
        load_target,
        name_the_host,
        parse_ctx_option,
        suggested,
    )
    from gemmatui.core.catalog import get_variant
    from gemmatui.core.errors import EXIT_INTERRUPTED, UsageError

    ctx = parse_ctx_option(args.ctx)
    target = load_target(args)
    if args.variant:
        variant = get_variant(args.variant)
    else:
        report = fit_report(target, ctx=ctx)
        pick = suggested(report)
        if pick is None:
            raise UsageError(
                f"no Gemma 3 QAT variant can run here ({report.reason}); name one: gemmatui pull 1b"
            )
        variant = pick.variant
        print(f"gemmatui: pulling {variant.key}: {report.reason}", file=sys.stderr)
    view = progress_view(sys.stderr)
    try:
        try:
            with name_the_host(target):
                asyncio.run(_pull(target, variant, view))
        finally:
            view.close()  # end a redrawn progress line before any message
    except KeyboardInterrupt:
        print(
            f"gemmatui: pull of {variant.tag} interrupted; "
            f"run `gemmatui pull {variant.key}` again to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(f'{variant.tag} is ready: gemmatui ask --model {variant.key} "hello"')
    return 0


async def _pull(target: Target, variant: Variant, view: _LineView | _BarView) -> None:
    from gemmatui.core.errors import OllamaError, OllamaPullError, OllamaUnavailable
    from gemmatui.core.hosts import is_local

    # Through the port, so that a llama-server at the host gets "cannot download
    # models" rather than "not Ollama"; only Ollama pulls (can_pull).
    async with await target.connect(look_elsewhere=False) as client:
        if not client.can_pull:
            async for _ in client.pull(variant.tag):  # raises CannotPull (exit 3)
                pass
        installed = {m.name for m in await client.list_models()}
        if variant.tag not in installed and is_local(target.host):
            from gemmatui.core.server_settings import models_dir

            check_disk_space(variant, models_dir(target.server_env()))
        status = ""
        try:
            async for progress in client.pull(variant.tag):
                view.update(progress)
                status = progress.status
            if status != "success":
                raise OllamaPullError(
                    variant.tag,
                    f"the pull of {variant.tag} ended before Ollama reported success",
                )
        except OllamaUnavailable:
            raise
        except OllamaError as err:
            explained = await explain_broken_pull(target.host, variant, err)
            if explained is err:
                raise
            raise explained from err


async def explain_broken_pull(host: str, variant: Variant, err: OllamaError) -> OllamaError:
    """Say what to do about a pull that stopped mid-way.

    A dropped connection, a stall or a stream that ended early can mean the server went
    away, or only that this one pull broke off while the server runs on. One quick
    ``GET /`` on a new connection (a pooled one may outlive a stopping server) tells
    them apart: a server that is down must be started again (exit 3); one that is up
    only needs the same pull again, which resumes. An error the server sent itself
    (disk full, unknown tag) is returned as it is.

    Args:
        host: The server's base URL.
        variant: What was being pulled.
        err: What the pull raised.

    Returns:
        The error to raise: :class:`~gemmatui.core.errors.OllamaUnavailable` naming
        ``ollama serve`` when the server no longer answers, else an error naming
        ``gemmatui pull <key>``.
    """
    from gemmatui.core.errors import OllamaPullError, OllamaTimeout, OllamaUnavailable
    from gemmatui.core.ollama import OllamaClient

    broke_off = isinstance(err, OllamaTimeout) or _connection_dropped(err)
    ended_early = isinstance(err, OllamaPullError) and err.__cause__ is None
    if not (broke_off or ended_early):
        return err
    resume = f"run `gemmatui pull {variant.key}` again to resume"
    async with OllamaClient(host) as probe:
        running = await probe.is_running()
    if not running:
        return OllamaUnavailable(
            f"Ollama at {host} stopped answering during the pull of {variant.tag}: "
            f"start it again with `ollama serve`, then run `gemmatui pull {variant.key}` "
            "to resume"
        )
    if isinstance(err, OllamaTimeout):
        what = "stalled (no progress for too long)"
    elif ended_early:
        what = "ended before Ollama reported success"
    else:
        what = "broke off (the connection dropped)"
    return OllamaPullError(
        variant.tag,
        f"the pull of {variant.tag} {what}; Ollama still answers at {host}: {resume}",
    )


def _connection_dropped(err: OllamaError) -> bool:
    """Whether ``err`` was a connection that broke during the stream (not the server's
    own error line)."""
    cause = err.__cause__
    if cause is None:
        return False
    import httpx  # loaded already: the client made the request with it

    return isinstance(cause, (httpx.NetworkError, httpx.RemoteProtocolError, ConnectionError))


# --------------------------------------------------------------------------- disk space


def check_disk_space(variant: Variant, models: Path) -> None:
    """Refuse to start when the blob cannot fit in the models directory's file system.

    Bytes already downloaded by an interrupted pull (Ollama's ``*-partial`` files, which
    are sparse: counted by allocated blocks) are not needed again.

    Raises:
        GemmaTuiError: Not enough free space; the message names the directory.
    """
    import shutil

    from gemmatui.core.errors import GemmaTuiError
    from gemmatui.core.units import format_decimal_bytes

    existing = models
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return  # cannot tell: let Ollama try
    need = max(0, variant.blob_bytes - _partial_bytes(models / "blobs"))
    if free < need:
        raise GemmaTuiError(
            f"not enough disk space for {variant.tag}: it needs {format_decimal_bytes(need)}, "
            f"{models} has {format_decimal_bytes(free)} free (free some space, or start "
            "`ollama serve` with OLLAMA_MODELS on a larger disk)"
        )


def _partial_bytes(blobs: Path) -> int:
    total = 0
    try:
        for path in blobs.glob("sha256-*-partial*"):
            st = path.stat()
            blocks = getattr(st, "st_blocks", None)
            total += blocks * 512 if blocks is not None else st.st_size
    except OSError:
        return 0
    return total


# --------------------------------------------------------------------------- progress


def progress_view(stream: TextIO) -> _LineView | _BarView:
    """A redrawn bar on a terminal, one line per stage otherwise."""
    return _BarView(stream) if stream.isatty() else _LineView(stream)


class _LineView:
    """One plain line per stage, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._status = ""

    def update(self, p: PullProgress) -> None:
        if p.status == self._status:
            return
        self._status = p.status
        line = p.status
        if p.digest and p.total:
            from gemmatui.core.units import format_decimal_bytes

            size = format_decimal_bytes(p.total)
            if p.completed and p.completed >= p.total:
                line += f" ({size}, already downloaded)"
            elif p.completed:
                line += f" ({size}, resuming at {p.completed / p.total:.0%})"
            else:
                line += f" ({size})"
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Nothing is left open on a line-per-stage log."""


class _Rate:
    """Bytes per second over the last few seconds."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, done: int) -> None:
        now = self.clock()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > _RATE_WINDOW:
            self.samples.popleft()

    def per_second(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 and d1 > d0 else None


class _BarView:
    """One line redrawn in place: layer bar, bytes, rate and ETA, then the overall share."""

    def __init__(
        self,
        stream: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        width: Callable[[], int] | None = None,
    ) -> None:
        import shutil

        self.stream = stream
        self.clock = clock
        self.width = width or (lambda: shutil.get_terminal_size().columns)
        self._digest: str | None = None
        self._layer = _Rate(clock)
        self._overall = _Rate(clock)
        self._drawn = 0.0
        self._open = False

    def update(self, p: PullProgress) -> None:
        if not p.digest or not p.total:
            self.close()
            self.stream.write(p.status + "\n")
            self.stream.flush()
            return
        if p.digest != self._digest:
            self.close()
            self._digest = p.digest
            self._layer = _Rate(self.clock)
        done = p.completed or 0
        self._layer.add(done)
        self._overall.add(p.overall_completed)
        now = self.clock()
        if now - self._drawn < _REDRAW and done < p.total:
            return
        self._drawn = now
        self.stream.write("\r" + self.render(p) + "\x1b[K")
        self.stream.flush()
        self._open = True

    def render(self, p: PullProgress) -> str:
        """The progress line for ``p`` (without the carriage return)."""
        from gemmatui.core.units import format_decimal_bytes, format_duration

        total = p.total or 0
        done = min(p.completed or 0, total)
        share = done / total if total else 1.0
        parts = [f"{share:4.0%}", f"{format_decimal_bytes(done)}/{format_decimal_bytes(total)}"]
        rate = self._layer.per_second()
        if rate:
            parts.append(f"{format_decimal_bytes(rate)}/s")
            if done < total:
                parts.append(f"ETA {format_duration((total - done) / rate)}")
        if p.overall_total > total:
            overall = f"all {p.overall_completed / p.overall_total:.0%}"
            overall_rate = self._overall.per_second()
            left = p.overall_total - p.overall_completed
            if overall_rate and left > 0:
                overall += f" ETA {format_duration(left / overall_rate)}"
            parts.append(overall)
        tail = " ".join(parts)
        bar_width = max(10, min(30, self.width() - len(p.status) - len(tail) - 5))
        filled = int(bar_width * share)
        line = f"{p.status} [{'#' * filled}{'-' * (bar_width - filled)}] {tail}"
        return line[: max(20, self.width() - 1)]

    def close(self) -> None:
        """End the line being redrawn, if any."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
