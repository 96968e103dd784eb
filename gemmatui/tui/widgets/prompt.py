"""The multi-line prompt: Enter sends, Shift+Enter or Ctrl+J inserts a newline."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from gemmatui.core.text import sanitize
from gemmatui.tui.messages import PromptSubmitted
from gemmatui.tui.widgets.attachments import pasted_paths

#: Keys that insert a newline. Many terminals send Shift+Enter as plain Enter; Ctrl+J
#: (a line feed) reaches the app in every terminal, so it is the one documented.
NEWLINE_KEYS = frozenset({"shift+enter", "ctrl+j"})


class PromptInput(TextArea):
    """A TextArea whose Enter posts :class:`~gemmatui.tui.messages.PromptSubmitted`.

    A paste is not a key press, so multi-line and very long pastes go straight into
    the text, sanitised (a pasted document may carry terminal control sequences,
    which the box would otherwise draw raw). The prompt keeps its text after Enter;
    the screen clears it once the message is on its way.

    A paste that is nothing but the paths of existing image files (what a terminal
    pastes when files are dropped on it: quoted, with escaped spaces, or ``file://``
    URIs) is not inserted: the prompt posts :class:`ImagesPasted` and the screen
    attaches them.
    """

    class ImagesPasted(Message):
        """Paths of image files were pasted (or dropped) into the prompt.

        Attributes:
            paths: The files, in the order pasted.
        """

        def __init__(self, paths: list[Path]) -> None:
            super().__init__()
            self.paths = paths

    DEFAULT_CSS = """
    PromptInput {
        height: auto;
        min-height: 3;
        max-height: 12;
        border: tall $border-blurred;
        &:focus { border: tall $border; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            placeholder="Message Gemma: Enter sends, Ctrl+J adds a new line",
        )

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(PromptSubmitted(self.text))
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self.replace("\n", start, end, maintain_selection_offset=False)
            return
        await super()._on_key(event)

    async def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()  # TextArea's own handler would insert the raw text
        if self.read_only:
            return
        paths = pasted_paths(event.text)
        if paths:
            self.post_message(PromptInput.ImagesPasted(paths))
            self.focus()
            return
        start, end = self.selection
        result = self.replace(sanitize(event.text), start, end, maintain_selection_offset=False)
        self.move_cursor(result.end_location)
        self.focus()
