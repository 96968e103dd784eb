"""The banners at the top of a screen: "Ollama is not running", and what went wrong
with the chat history.

:class:`OllamaBanner` follows the app's connection state by itself (``app.ollama_ok``
and ``app.ollama_error``); :class:`HistoryBanner` shows ``app.history_notice`` (a
damaged history moved aside, or history off). A screen only has to compose them::

    def compose(self) -> ComposeResult:
        yield OllamaBanner()
        yield HistoryBanner()
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

from textual.content import Content
from textual.widgets import Static

if TYPE_CHECKING:
    from gemmatui.core.storage import HistoryNotice
    from gemmatui.tui.app import GemmaApp

INSTALL_URL = "https://ollama.com/download"

#: The screens whose banner reads differently: the chat (F5 only) and the model screen.
ScreenKind = Literal["chat", "models", "other"]


class OllamaBanner(Static):
    """A warning strip saying which host was tried and how to start Ollama.

    Hidden while Ollama answers, and before the first check has finished.
    """

    DEFAULT_CSS = """
    OllamaBanner {
        display: none;
        height: auto;
        padding: 0 1;
        background: $error-muted;
        color: $text;
        border-left: thick $error;
        margin-bottom: 1;
    }
    OllamaBanner.-down {
        display: block;
    }
    """

    def on_mount(self) -> None:
        app = cast("GemmaApp", self.app)
        self.watch(app, "ollama_error", self._show, init=True)

    def _show(self, error: str | None) -> None:
        app = cast("GemmaApp", self.app)
        self.set_class(error is not None, "-down")
        if error is None:
            return
        kind = screen_kind(self.screen)
        self.update(banner_text(app.client.host, error, kind, app.retry_seconds))


def screen_kind(screen: object) -> ScreenKind:
    """Which screen a banner sits on, for the key it names and what it offers."""
    # Imported here: both screens import this module.
    from gemmatui.tui.screens.models import ModelsScreen

    if isinstance(screen, ModelsScreen):
        return "models"
    try:
        from gemmatui.tui.screens.chat import ChatScreen
    except ImportError:  # pragma: no cover - the chat screen is optional in some builds
        return "other"
    return "chat" if isinstance(screen, ChatScreen) else "other"


def is_plain_unreachable(error: str, host: str) -> bool:
    """Whether ``error`` only says that nothing answers at ``host`` (the banner says that).

    >>> is_plain_unreachable("cannot reach Ollama at http://h:1: is it running?", "http://h:1")
    True
    >>> is_plain_unreachable("Ollama answered 500: out of memory", "http://h:1")
    False
    """
    return error.startswith(f"cannot reach Ollama at {host}")


def banner_text(host: str, error: str, kind: ScreenKind, retry_seconds: float) -> Content:
    """The banner's one message: the host, how to start Ollama, the retry key that works
    on this screen, and the raw error only when it says more than "nothing answers".

    The chat's prompt takes letters, so only F5 retries there; elsewhere ``r`` does too.
    The model screen does not point at itself.
    """
    keys = "[b]F5[/b]" if kind == "chat" else "[b]r[/b] or [b]F5[/b]"
    planner = " The model planner (ctrl+o) works meanwhile." if kind == "chat" else ""
    text = Content.from_markup(
        "[b]Ollama is not running at $host.[/b] Start it with [b]ollama serve[/b] "
        "(not installed? $url), then press $keys to retry; gemmatui also retries every "
        "$every s.$planner".replace("$keys", keys),
        host=host,
        url=INSTALL_URL,
        every=f"{retry_seconds:g}",
        planner=planner,
    )
    if not is_plain_unreachable(error, host):
        text = Content("\n").join(
            [text, Content.from_markup("[dim]Ollama said: $error[/dim]", error=error)]
        )
    return text


class HistoryBanner(Static):
    """A warning strip when the chat history did not open as it should: a damaged file
    was moved aside and a new one started, or nothing is saved this session.

    Hidden when the history opened normally (``app.history_notice`` is ``None``).
    """

    DEFAULT_CSS = """
    HistoryBanner {
        display: none;
        height: auto;
        padding: 0 1;
        background: $warning-muted;
        color: $text;
        border-left: thick $warning;
        margin-bottom: 1;
    }
    HistoryBanner.-shown {
        display: block;
    }
    """

    def on_mount(self) -> None:
        notice = cast("GemmaApp", self.app).history_notice
        self.set_class(notice is not None, "-shown")
        if notice is not None:
            self.update(history_text(notice))


def history_text(notice: HistoryNotice) -> Content:
    """The history banner's message: what happened, where the old file is, and whether
    conversations are saved this session; SQLite's own words last, dimmed."""
    if notice.saved:
        text = Content.from_markup(
            "[b]The chat history was damaged[/b], so a new one was started. The old file "
            "was moved aside, not deleted: [b]$moved[/b].",
            moved=str(notice.moved_to),
        )
    elif notice.moved_to is not None:
        text = Content.from_markup(
            "[b]Chat history is off:[/b] conversations are not saved this session. The "
            "damaged file was moved aside, not deleted: [b]$moved[/b].",
            moved=str(notice.moved_to),
        )
    else:
        text = Content.from_markup(
            "[b]Chat history is off:[/b] conversations are not saved this session; the "
            "chat and the model screen work as usual."
        )
    return Content("\n").join(
        [text, Content.from_markup("[dim]$reason[/dim]", reason=notice.reason)]
    )
