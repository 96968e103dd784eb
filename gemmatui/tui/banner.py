"""The "Ollama is not running" banner, shown at the top of any screen that yields it.

It follows the app's connection state by itself (``app.ollama_ok`` and
``app.ollama_error``), so a screen only has to compose it::

    def compose(self) -> ComposeResult:
        yield OllamaBanner()
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.content import Content
from textual.widgets import Static

if TYPE_CHECKING:
    from gemmatui.tui.app import GemmaApp

INSTALL_URL = "https://ollama.com/download"


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
        self.update(
            Content.from_markup(
                "[b]Ollama is not running at $host.[/b] Start it with [b]ollama serve[/b] "
                "(not installed? $url), then press [b]r[/b] or [b]F5[/b] to retry; gemmatui "
                "also retries every $every s. The model planner (ctrl+o) works meanwhile.\n"
                "[dim]$error[/dim]",
                host=app.client.host,
                url=INSTALL_URL,
                every=f"{app.retry_seconds:g}",
                error=error,
            )
        )
