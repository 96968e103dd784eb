"""The "Ollama is not running" banner, shown at the top of any screen that yields it.

It follows the app's connection state by itself (``app.ollama_ok`` and
``app.ollama_error``), so a screen only has to compose it::

    def compose(self) -> ComposeResult:
        yield OllamaBanner()
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

from textual.content import Content
from textual.widgets import Static

if TYPE_CHECKING:
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
