"""The pull screen: download a model through Ollama with overall and per-layer progress.

The download runs in an async worker over ``client.pull(tag)``. Esc asks first, then
cancels the worker, which closes the connection (Ollama keeps what it has). A failed
or stopped pull can be retried with ``r``; Ollama resumes the partial blobs. On success
the screen dismisses itself with ``True``.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar, Literal

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, ProgressBar, Static
from textual.worker import Worker

from gemmatui.core.errors import OllamaError, OllamaTimeout, OllamaUnavailable
from gemmatui.core.types import PullProgress
from gemmatui.core.units import format_decimal_bytes, format_duration
from gemmatui.tui.screens.dialogs import ConfirmDialog
from gemmatui.tui.session import SessionAccess

#: Seconds of progress the download rate is averaged over.
RATE_WINDOW = 10.0

PullState = Literal["running", "done", "failed", "stopped"]


def short_digest(digest: str) -> str:
    """The 12 hex characters Ollama shows for a layer.

    >>> short_digest("sha256:7cd4618c1faf8b3c2d1e")
    '7cd4618c1faf'
    """
    return digest.split(":", 1)[-1][:12]


def describe_pull_error(
    error: OllamaError,
    tag: str,
    host: str,
    size_bytes: int | None = None,
    *,
    server_up: bool | None = None,
) -> str:
    """Say in words what went wrong with a pull and what to do about it.

    Args:
        error: What the client raised.
        tag: The model being pulled.
        host: The Ollama server.
        size_bytes: About how big the model is (for the disk-full advice).
        server_up: Whether Ollama still answered after the pull broke off (``None``:
            not asked). A pull can break off while the server runs on; then there
            is nothing to restart.
    """
    text = str(error)
    lowered = text.lower()
    resume = "press r to resume; what was downloaded is kept"
    if "no space left on device" in lowered:
        need = f" ({tag} needs about {format_decimal_bytes(size_bytes)})" if size_bytes else ""
        return (
            f"The disk Ollama stores models on is full{need}. Free some space, then {resume}.\n"
            f"Ollama said: {text}"
        )
    if "file does not exist" in lowered or "manifest unknown" in lowered:
        return (
            f"Ollama's registry has no model called {tag}. Check the name; gemmatui pulls "
            f"the gemma3:<size>-it-qat tags.\nOllama said: {text}"
        )
    dropped = "connection to ollama dropped" in lowered
    if dropped and server_up and not isinstance(error, OllamaUnavailable):
        return (
            f"The pull broke off, but Ollama still answers at {host}: {resume}.\n{text}"
        )
    if isinstance(error, OllamaUnavailable) or dropped:
        return (
            f"Ollama stopped answering at {host}. Start it again with `ollama serve`, "
            f"then {resume}.\n"
            f"{text}"
        )
    if isinstance(error, OllamaTimeout):
        return f"Ollama stopped sending progress. Press r to try again.\n{text}"
    return f"The pull failed. Press r to try again.\n{text}"


class LayerProgress(Horizontal):
    """One layer (blob) of a pull: its short digest, a bar and the bytes done (decimal GB)."""

    DEFAULT_CSS = """
    LayerProgress {
        height: 1;
        & > .layer--digest { width: 14; color: $text-muted; }
        & > ProgressBar { width: 44; }
        & > .layer--bytes { width: 1fr; color: $text-muted; }
    }
    """

    def __init__(self, digest: str) -> None:
        super().__init__()
        self.digest = digest
        self._bar = ProgressBar(total=None, show_eta=False)
        self._bytes = Static(classes="layer--bytes")

    def compose(self) -> ComposeResult:
        yield Label(short_digest(self.digest), classes="layer--digest")
        yield self._bar
        yield self._bytes

    def set_progress(self, total: int, completed: int) -> None:
        """Show ``completed`` of ``total`` bytes."""
        self._bar.update(total=total, progress=completed)
        self._bytes.update(f"{format_decimal_bytes(completed)} of {format_decimal_bytes(total)}")


class PullScreen(SessionAccess, Screen[bool]):
    """Pull ``tag`` through Ollama; dismisses with ``True`` once it is installed.

    Args:
        tag: The model to pull, e.g. ``"gemma3:27b-it-qat"``.
        size_bytes: Its approximate size, for the disk-full advice.
    """

    DEFAULT_CSS = """
    PullScreen #pull-box {
        padding: 1 2;
        height: 1fr;
    }
    PullScreen #pull-title {
        margin-bottom: 1;
    }
    PullScreen #pull-status {
        color: $text-muted;
    }
    PullScreen .pull-heading {
        margin-top: 1;
        text-style: bold;
        color: $primary;
    }
    PullScreen #overall {
        width: 100%;
    }
    PullScreen #overall Bar {
        width: 1fr;
    }
    PullScreen #layers {
        height: auto;
        max-height: 10;
    }
    PullScreen #pull-message {
        margin-top: 1;
        padding: 0 1;
        height: auto;
        display: none;
    }
    PullScreen #pull-message.-error {
        display: block;
        border-left: thick $error;
        background: $error-muted;
    }
    PullScreen #pull-message.-info {
        display: block;
        border-left: thick $warning;
        background: $warning-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop"),
        Binding("escape", "back", "Back"),
        Binding("r", "retry", "Retry / resume"),
    ]

    state: var[PullState] = var("running")

    def __init__(self, tag: str, *, size_bytes: int | None = None) -> None:
        super().__init__(name="pull")
        self.tag = tag
        self.size_bytes = size_bytes
        self._layers: dict[str, LayerProgress] = {}
        self._samples: deque[tuple[float, int]] = deque()
        self._worker: Worker[None] | None = None
        self._bytes: tuple[int, int] | None = None  # (total, done) last shown
        # Held, not queried: the worker may still run while the app tears the screen down.
        self._status = Static(id="pull-status")
        self._overall = ProgressBar(total=None, show_eta=False, id="overall")
        self._overall_label = Static(id="overall-text")
        self._layer_box = VerticalScroll(id="layers")
        self._message = Static(id="pull-message")

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="pull-box"):
            yield Static(id="pull-title")
            yield self._status
            yield Label("Overall", classes="pull-heading")
            yield self._overall
            yield self._overall_label
            yield Label("Layers", classes="pull-heading")
            yield self._layer_box
            yield self._message
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"Pulling {self.tag}"
        size = f" (about {format_decimal_bytes(self.size_bytes)})" if self.size_bytes else ""
        self.query_one("#pull-title", Static).update(
            Content.from_markup(
                "Pulling [b $accent]$tag[/]$size from the Ollama library",
                tag=self.tag,
                size=size,
            )
        )
        self.retry()

    # ------------------------------------------------------------------ the download

    def retry(self) -> None:
        """Start (or restart) the download; Ollama resumes any partial blobs."""
        self._samples.clear()
        self.state = "running"
        self._set_message("")
        self._worker = self._pull()

    @work(exclusive=True, group="pull")
    async def _pull(self) -> None:
        app, host, session = self.app, self.host, self.session
        try:
            async for progress in session.engine.pull(self.tag):
                await self._show(progress)
        except OllamaError as err:
            self.state = "failed"
            server_up = None
            if "connection to ollama dropped" in str(err).lower():
                # A pull can break off while the server runs on: ask before saying
                # to restart it.
                server_up = await session.engine.is_running()
            self._set_message(
                describe_pull_error(
                    err, self.tag, session.host, self.size_bytes, server_up=server_up
                )
            )
            host.check_engine()  # if Ollama went away, the banner and auto-retry follow
            return
        self.state = "done"
        app.notify(f"{self.tag} is installed.", title="Pull complete", markup=False)
        if self.is_active:
            self.dismiss(True)

    async def _show(self, progress: PullProgress) -> None:
        self._status.update(Content(progress.status))
        if progress.digest and progress.total:
            layer = self._layers.get(progress.digest)
            if layer is None:
                if not self._layer_box.is_attached:
                    return  # the app is closing
                layer = self._layers[progress.digest] = LayerProgress(progress.digest)
                await self._layer_box.mount(layer)
            layer.set_progress(progress.total, progress.completed or 0)
        if progress.overall_total:
            total, done = progress.overall_total, progress.overall_completed
            self._bytes = (total, done)
            self._overall.update(total=total, progress=done)
            self._overall_label.update(self._overall_text(total, done, live=True))

    def _overall_text(self, total: int, done: int, *, live: bool) -> str:
        """ "2.0 GB of 4.0 GB", and while downloading the rate and the time left.

        Decimal units throughout, as Ollama and ``ollama list`` give model sizes.
        """
        parts = [f"{format_decimal_bytes(done)} of {format_decimal_bytes(total)}"]
        if not live:
            return parts[0]
        now = self.session.clock()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > RATE_WINDOW:
            self._samples.popleft()
        (first_time, first_done), (last_time, last_done) = self._samples[0], self._samples[-1]
        if last_time > first_time and last_done > first_done:
            rate = (last_done - first_done) / (last_time - first_time)
            parts.append(f"{format_decimal_bytes(rate)}/s")
            left = (total - done) / rate
            if left >= 1:
                parts.append(f"about {format_duration(left)} left")
        return " · ".join(parts)

    def _set_message(self, text: str, *, error: bool = True) -> None:
        if text and self._bytes is not None:  # stopped or failed: no rate, no time left
            self._overall_label.update(self._overall_text(*self._bytes, live=False))
        elif text:  # stopped or failed before any size was known: stop the pulsing bar
            self._overall.update(total=100, progress=0)
        self._message.update(Content(text))
        self._message.set_class(bool(text) and error, "-error")
        self._message.set_class(bool(text) and not error, "-info")

    def watch_state(self, state: PullState) -> None:
        self.refresh_bindings()

    # ------------------------------------------------------------------ keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.state == "running"
        if action == "back":
            return self.state != "running"
        if action == "retry":
            return self.state in ("failed", "stopped")
        return True

    def action_stop(self) -> None:
        """Ask, then stop the download (what was downloaded is kept)."""

        def answered(stop: bool | None) -> None:
            if self.state == "done":
                self.dismiss(True)
            elif stop and self.state == "running" and self._worker is not None:
                self._worker.cancel()
                self.state = "stopped"
                self._set_message(
                    "Stopped. What was downloaded is kept: press r to resume, Esc to go back.",
                    error=False,
                )

        self.app.push_screen(
            ConfirmDialog(
                "Stop the download?",
                f"What has been downloaded of {self.tag} stays on disk; pulling it again "
                "resumes from there.",
                yes="Stop",
                no="Keep pulling",
                default_yes=True,
            ),
            answered,
        )

    def action_back(self) -> None:
        """Leave the pull screen (after a failure or a stop)."""
        self.dismiss(False)

    def action_retry(self) -> None:
        """Retry a failed or stopped download."""
        self.retry()
