"""The banners at the top of a screen: "Ollama is not running" (or whichever engine
the app talks to), which engine serves the chat, and what went wrong with the chat
history.

:class:`OllamaBanner` follows the app's connection state by itself (``app.ollama_ok``
and ``app.ollama_error``, see :class:`~gemmatui.tui.session.SessionApp`);
:class:`EngineBanner` names a fixed-model engine (llama-server) once it answers;
:class:`HistoryBanner` shows the session's ``history_notice`` (a damaged history moved
aside, or history off). A screen only has to compose them::

    def compose(self) -> ComposeResult:
        yield OllamaBanner()
        yield HistoryBanner()
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from textual.content import Content
from textual.widgets import Static

from gemmatui.tui.session import host_of, session_of

if TYPE_CHECKING:
    from gemmatui.core.storage import HistoryNotice

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
        self.watch(self.app, "ollama_error", self._show, init=True)

    def _show(self, error: str | None) -> None:
        session = session_of(self)
        self.set_class(error is not None, "-down")
        if error is None:
            return
        kind = screen_kind(self.screen)
        self.update(
            banner_text(
                session.host,
                error,
                kind,
                session.retry_seconds,
                engine=session.engine_name,
                gguf=session.gguf.path.name if session.gguf is not None else None,
            )
        )


class EngineBanner(Static):
    """A quiet strip naming a fixed-model engine while it answers: ``llama-server b6500
    at URL serves MODEL (4k context per slot); pulling and switching models need
    Ollama``. Hidden for Ollama, and while the engine is down."""

    DEFAULT_CSS = """
    EngineBanner {
        display: none;
        height: auto;
        padding: 0 1;
        background: $primary-muted;
        color: $text;
        border-left: thick $primary;
        margin-bottom: 1;
    }
    EngineBanner.-shown {
        display: block;
    }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "ollama_ok", self._show, init=True)
        self.watch(self.app, "installed", lambda _: self._show(host_of(self).ollama_ok))

    def _show(self, ok: bool) -> None:
        session = session_of(self)
        served = session.served
        self.set_class(ok and served is not None, "-shown")
        if not ok or served is None:
            return
        self.update(engine_text(session.describe_engine(), served.model, served.n_ctx))


def engine_text(engine: str, model: str, n_ctx: int) -> Content:
    """What :class:`EngineBanner` says.

    >>> print(engine_text("llama-server b6500 at http://127.0.0.1:8080", "gemma3-270m", 4096))
    llama-server b6500 at http://127.0.0.1:8080 serves gemma3-270m (4k context per slot): it serves one model, so pulling and switching models need Ollama.
    """
    from gemmatui.core.units import format_ctx

    per_slot = f" ({format_ctx(n_ctx)} context per slot)" if n_ctx else ""
    return Content.from_markup(
        "[b]$engine[/b] serves [b]$model[/b]$ctx: it serves one model, so pulling and "
        "switching models need Ollama.",
        engine=engine,
        model=model,
        ctx=per_slot,
    )


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


def is_plain_unreachable(error: str, host: str, engine: str = "Ollama") -> bool:
    """Whether ``error`` only says that nothing answers at ``host`` (the banner says that).

    >>> is_plain_unreachable("cannot reach Ollama at http://h:1: is it running?", "http://h:1")
    True
    >>> is_plain_unreachable("Ollama answered 500: out of memory", "http://h:1")
    False
    >>> is_plain_unreachable("cannot reach llama-server at http://h:1: is it running?",
    ...                      "http://h:1", "llama-server")
    True
    """
    return error.startswith(f"cannot reach {engine} at {host}")


def banner_text(
    host: str,
    error: str,
    kind: ScreenKind,
    retry_seconds: float,
    *,
    engine: str = "Ollama",
    gguf: str | None = None,
) -> Content:
    """The banner's one message: the engine and host, how to start it, the retry key
    that works on this screen, and the raw error only when it says more than "nothing
    answers".

    The chat's prompt takes letters, so only F5 retries there; elsewhere ``r`` does too.
    The model screen does not point at itself. With ``--gguf`` (``gguf``: the file's
    name) the model screen also says that Enter on the file's row starts llama-server.
    """
    keys = "[b]F5[/b]" if kind == "chat" else "[b]r[/b] or [b]F5[/b]"
    planner = " The model planner (ctrl+o) works meanwhile." if kind == "chat" else ""
    if engine == "Ollama":
        start = "Start it with [b]ollama serve[/b] (not installed? $url)"
    else:
        start = (
            "Start it again (for example [b]gemmatui serve MODEL.gguf[/b], or "
            "[b]gemmatui --gguf MODEL.gguf[/b] and Enter on its row)"
        )
    own = (
        " Or press Enter on the [b]$gguf[/b] row to start llama-server on it."
        if gguf is not None and kind == "models"
        else ""
    )
    text = Content.from_markup(
        f"[b]$engine is not running at $host.[/b] {start}, then press $keys to retry; "
        "gemmatui also retries every $every s.$planner$own".replace("$keys", keys).replace(
            "$own", own
        ),
        engine=engine,
        host=host,
        url=INSTALL_URL,
        every=f"{retry_seconds:g}",
        planner=planner,
        gguf=gguf or "",
    )
    if not is_plain_unreachable(error, host, engine):
        text = Content("\n").join(
            [text, Content.from_markup("[dim]$engine said: $error[/dim]", engine=engine, error=error)]
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
        notice = session_of(self).history_notice
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
