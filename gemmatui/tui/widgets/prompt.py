"""The multi-line prompt: Enter sends, Shift+Enter or Ctrl+J inserts a newline."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.message import Message
from textual.timer import Timer
from textual.widgets import TextArea

from gemmatui.core.text import sanitize
from gemmatui.tui.messages import PromptSubmitted
from gemmatui.tui.widgets.attachments import pasted_paths

#: Keys that insert a newline. Many terminals send Shift+Enter as plain Enter; Ctrl+J
#: (a line feed) reaches the app in every terminal, so it is the one documented.
NEWLINE_KEYS = frozenset({"shift+enter", "ctrl+j"})
#: Seconds without input after which the cursor stops blinking and stays shown, as GTK
#: and GNOME Terminal do (``gtk-cursor-blink-timeout``, 10 s): a blink is two frames a
#: second, half of what an idle chat may cost (issue #11). A key, a paste, a click or
#: the focus coming back starts it again.
BLINK_TIMEOUT = 10.0


class PromptInput(TextArea):
    """A TextArea whose Enter posts :class:`~gemmatui.tui.messages.PromptSubmitted`.

    A paste is not a key press, so multi-line and very long pastes go straight into
    the text, sanitised (a pasted document may carry terminal control sequences,
    which the box would otherwise draw raw). The prompt keeps its text after Enter;
    the screen clears it once the message is on its way.

    The cursor blinks for :data:`BLINK_TIMEOUT` seconds after the last input, then
    stays shown without blinking.

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
        self._blink_timeout: Timer | None = None

    def _restart_blink(self) -> None:
        # TextArea calls this on every key, paste, click, focus, and when
        # ``cursor_blink`` is set again: the one place that knows of input.
        super()._restart_blink()
        if self._blink_timeout is not None:
            self._blink_timeout.stop()
            self._blink_timeout = None
        if self.cursor_blink and self.is_attached:  # focus may come before Mount ends
            # A new one-shot timer: Timer.reset() would count from the end of the
            # pending wait, not from now.
            self._blink_timeout = self.set_timer(BLINK_TIMEOUT, self._stop_blinking)

    def _stop_blinking(self) -> None:
        """No input for BLINK_TIMEOUT seconds: the cursor stays shown, steady."""
        self._blink_timeout = None
        if self.cursor_blink and self.has_focus:
            self._pause_blink(visible=True)

    async def _on_key(self, event: events.Key) -> None:
        self._restart_blink()  # TextArea's handler does too; Enter and Ctrl+J skip it
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
        self._restart_blink()
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
