"""The tokens panel: live speed while a reply streams, Ollama's final figures after it,
and how full the context is.

A reply that ends without final figures (stopped, cut off, failed) is still sent back
with the next request, so the gauge adds an estimate for it (about 4 characters a
token) and marks the count "≈" until Ollama's next figures replace it; the live line
says how it ended, with the tokens counted and the rate measured while it streamed.

Counting a token is an integer increment (:meth:`TokenPanel.token_arrived`); the
live rate is redrawn by a timer twice a second (as often as a person reads it), never
per token, and only what changed is drawn again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.timer import Timer
from textual.widgets import Sparkline, Static

from gemmatui.core.types import ChatStats
from gemmatui.core.units import format_ctx
from gemmatui.tui.widgets.meter import Meter
from gemmatui.tui.widgets.panel import Panel, show_content

#: Replies whose generation speed the sparkline shows.
RATE_HISTORY = 30
#: Seconds between redraws of the live rate (2 Hz).
REDRAW_INTERVAL = 0.5
#: Share of the context from which the gauge warns.
CONTEXT_WARN = 0.8
LABEL_WIDTH = 13
#: Characters per token for estimates (English prose with Gemma's tokenizer: ~4).
CHARS_PER_TOKEN = 4


def context_used(stats: ChatStats) -> int:
    """Tokens the conversation occupies after a reply: the prompt Ollama read plus the reply."""
    return stats.prompt_eval_count + stats.eval_count


def estimate_tokens(chars: int) -> int:
    """Tokens that ``chars`` characters of text take, roughly (rounded up).

    >>> estimate_tokens(0), estimate_tokens(1), estimate_tokens(400)
    (0, 1, 100)
    """
    return -(-max(chars, 0) // CHARS_PER_TOKEN)


def _line(label: str, value: str, note: str = "") -> Content:
    line = Content(label.ljust(LABEL_WIDTH) + value)
    if note:
        line += Content.styled(f"  {note}", "$text-muted")
    return line


class TokenPanel(Panel):
    """Tokens per second (live and per reply), first-token latency, load time, context.

    Args:
        num_ctx: The context every request asks for; the gauge's full scale.
        clock: Monotonic seconds, for the live rate (tests freeze it).
    """

    DEFAULT_CSS = """
    TokenPanel {
        &> #tok-live { height: 1; }
        &> #tok-history-row { height: 1; }
        &> #tok-history-row > Sparkline { width: 1fr; }
        &> #tok-history-row > Static { width: auto; color: $text-muted; }
        &> #tok-ctx-warning { color: $text-warning; }
    }
    """

    def __init__(
        self,
        num_ctx: int,
        *,
        clock: Callable[[], float],
        engine: str = "ollama",
        id: str | None = None,
    ) -> None:
        super().__init__("Tokens", id=id)
        self.num_ctx = num_ctx
        #: The engine's kind (``Session.kind``: "ollama", "llama-server", "openai"): only
        #: Ollama is known to drop the oldest messages when the context fills.
        self.engine = engine
        self.clock = clock
        self.rates: deque[float] = deque(maxlen=RATE_HISTORY)
        self.last: ChatStats | None = None
        self.streaming = False
        self.tokens = 0
        self.first_token_at: float | None = None
        self.context = 0
        #: ``True`` while :attr:`context` includes text Ollama gave no figures for.
        self.estimated = False
        #: How the last reply ended when Ollama sent no final figures for it (stopped,
        #: cut off): its status, the tokens counted and the rate measured; else ``None``.
        self.unfinished: tuple[str, int, float | None] | None = None
        self._redraw: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="tok-live", markup=False)
        with Horizontal(id="tok-history-row"):
            yield Sparkline([], summary_function=max)
            yield Static(" recent replies", markup=False)
        yield Static(id="tok-stats", markup=False)
        yield Meter(warn_at=CONTEXT_WARN, error_at=0.95, id="tok-ctx")
        yield Static(id="tok-ctx-warning", markup=False)

    def on_mount(self) -> None:
        self._redraw = self.set_interval(REDRAW_INTERVAL, self._paint_live, pause=True)
        self._paint()

    # ------------------------------------------------------------------ live

    @property
    def live_rate(self) -> float | None:
        """Tokens per second since the first token of the reply streaming now."""
        if self.first_token_at is None or self.tokens < 2:
            return None
        elapsed = self.clock() - self.first_token_at
        return (self.tokens - 1) / elapsed if elapsed > 0 else None

    def reply_started(self) -> None:
        """A request was sent: count from zero and redraw the live rate on a timer."""
        self.streaming = True
        self.tokens = 0
        self.first_token_at = None
        self.unfinished = None
        if self._redraw is not None:
            self._redraw.resume()
        self._paint_live()

    def token_arrived(self) -> None:
        """One streamed chunk arrived (Ollama sends one token per chunk). No redraw."""
        if self.first_token_at is None:
            self.first_token_at = self.clock()
        self.tokens += 1

    def reply_finished(
        self,
        stats: ChatStats | None,
        *,
        added_chars: int = 0,
        status: str = "complete",
        added_tokens: int = 0,
    ) -> None:
        """The reply ended; ``stats`` is Ollama's final chunk (``None`` when cut off).

        Without final figures (stopped, cut off, failed) the text still goes back to
        the model with the next request, so the gauge adds an estimate for
        ``added_chars``: the new user message and the part of the reply that arrived;
        the live line says how it ended (``status``: ``"partial"`` when stopped,
        ``"error"`` when cut off) with what was counted. ``added_tokens``: tokens known
        without the text, estimated the same way (the new message's images: Ollama's
        figures count them, 256 each, in ``prompt_eval_count``).
        """
        self.unfinished = None if stats is not None else (status, self.tokens, self.live_rate)
        self.streaming = False
        if self._redraw is not None:
            self._redraw.pause()
        if stats is not None:
            self._record(stats)
        elif added_chars > 0 or added_tokens > 0:
            self._estimate(added_chars, added_tokens)
        self._paint()

    def show_history(
        self, replies: Iterable[ChatStats], *, added_chars: int = 0, added_tokens: int = 0
    ) -> None:
        """Fill the panel from a restored conversation's replies (oldest first).

        ``added_chars``: text after the last reply with figures (stopped replies, unsent
        messages), counted as an estimate; ``added_tokens``: tokens of theirs known
        without the text (their images).
        """
        self.rates.clear()
        self.last = None
        self.context = 0
        self.estimated = False
        self.unfinished = None
        for stats in replies:
            self._record(stats)
        if added_chars > 0 or added_tokens > 0:
            self._estimate(added_chars, added_tokens)
        self._paint()

    def _record(self, stats: ChatStats) -> None:
        self.last = stats
        if stats.eval_rate is not None:
            self.rates.append(stats.eval_rate)
        self.context = context_used(stats)
        self.estimated = False

    def _estimate(self, chars: int, tokens: int = 0) -> None:
        self.context += estimate_tokens(chars) + tokens
        self.estimated = True

    # ------------------------------------------------------------------ drawing

    def _paint(self) -> None:
        self._paint_live()
        self.query_one(Sparkline).data = list(self.rates)
        show_content(self.query_one("#tok-stats", Static), self._stats_lines())
        about = "≈" if self.estimated else ""  # part of the count is an estimate
        self.query_one("#tok-ctx", Meter).show(
            self.context,
            self.num_ctx,
            f"{about}{self.context:,} / {format_ctx(self.num_ctx)} ctx",
        )
        warning = self.query_one("#tok-ctx-warning", Static)
        full = self.context / self.num_ctx if self.num_ctx else 0.0
        warning.display = full >= CONTEXT_WARN
        show_content(
            warning,
            Content(f"⚠ context {about}{full:.0%} full: {self._when_full()}"),
        )

    def _when_full(self) -> str:
        if self.engine == "ollama":
            return "Ollama drops the oldest messages when it fills"
        return "a longer conversation will not fit"

    def _paint_live(self) -> None:
        if self.streaming:
            rate = self.live_rate
            shown = f"{rate:6.1f} tok/s" if rate is not None else "   ... tok/s"
            line = Content.assemble((f"▶ {shown}", "bold $text-accent"), f"  {self.tokens} tokens")
        elif self.unfinished is not None:
            status, tokens, rate = self.unfinished
            word = {"partial": "■ Stopped", "error": "✕ Cut off"}.get(status, "Ended")
            about = f", ≈{rate:.1f} tok/s" if rate is not None else ""
            line = Content.assemble(
                (word, "bold $text-warning"), (f"  {tokens} tokens{about}", "$text-muted")
            )
        elif self.last is not None and self.last.eval_rate is not None:
            line = Content.assemble(
                (f"{self.last.eval_rate:.1f} tok/s", "bold"), ("  last reply", "$text-muted")
            )
        else:
            line = Content.styled("No reply yet", "$text-muted")
        # One line, redrawn twice a second: a repaint, never a new layout.
        self.query_one("#tok-live", Static).update(line, layout=False)

    def _stats_lines(self) -> Content:
        s = self.last
        if s is None:
            return Content.styled("Final figures appear after a reply", "$text-muted")
        lines = []
        if s.time_to_first_token_s is not None:
            lines.append(_line("first token", f"{s.time_to_first_token_s:.2f} s"))
        if s.prompt_rate is not None:
            lines.append(
                _line("prompt", f"{s.prompt_rate:.0f} tok/s", f"{s.prompt_eval_count} tok")
            )
        if s.eval_rate is not None:
            lines.append(_line("generation", f"{s.eval_rate:.1f} tok/s", f"{s.eval_count} tok"))
        if s.reloaded:
            lines.append(_line("model load", f"{s.load_duration_s:.2f} s", "(re)loaded"))
        else:
            lines.append(_line("model load", "-", "already loaded"))
        return Content("\n").join(lines)
