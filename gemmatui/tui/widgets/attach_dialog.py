"""The attach dialog (Ctrl+A in the chat): a path prompt that completes file names."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from gemmatui.core.images import MAX_IMAGE_BYTES
from gemmatui.core.units import format_bytes
from gemmatui.tui.widgets.attachments import PathSuggester


class PathInput(Input):
    """An Input whose Tab takes the completion shown (and moves focus when there is none)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "Complete", show=False),
    ]

    def action_complete(self) -> None:
        """Take the suggested completion; without one, Tab moves the focus on."""
        suggestion = self._suggestion
        if suggestion and len(suggestion) > len(self.value):
            self.value = suggestion
            self.cursor_position = len(self.value)
        else:
            self.screen.focus_next()


class AttachDialog(ModalScreen[str | None]):
    """Ask for an image file; dismisses with the path as typed, or ``None``.

    The path is checked by the chat screen (which says in one line what is wrong and
    keeps the prompt's text), not here.

    Args:
        cwd: Where relative paths start (default: the working directory).
    """

    DEFAULT_CSS = """
    AttachDialog {
        align: center middle;
        background: $background 60%;
        &> Vertical {
            width: 80;
            max-width: 95%;
            height: auto;
            padding: 1 2;
            background: $surface;
            border: thick $primary;
            border-title-color: $text-primary;
            border-title-style: bold;
        }
        & .hint { color: $text-muted; margin: 1 0; }
        & Horizontal { height: auto; align-horizontal: right; }
        & Button { margin-left: 2; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, cwd: Path | None = None) -> None:
        super().__init__()
        self.cwd = cwd

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Content("Attach an image")
            yield PathInput(
                id="attach-path",
                placeholder="path/to/picture.png",
                suggester=PathSuggester(self.cwd),
            )
            yield Static(
                f"PNG, JPEG, WebP or GIF, up to {format_bytes(MAX_IMAGE_BYTES)}. Tab or → "
                "completes the name; Enter attaches, Esc cancels. You can also paste or drop "
                "a file's path into the prompt.",
                classes="hint",
                markup=False,
            )
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Attach", id="attach", variant="primary")

    def on_mount(self) -> None:
        self.query_one(PathInput).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_attach()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "attach":
            self.action_attach()
        else:
            self.action_cancel()

    def action_attach(self) -> None:
        """Close with the path typed (nothing typed: like Esc)."""
        value = self.query_one(PathInput).value.strip()
        self.dismiss(value or None)

    def action_cancel(self) -> None:
        """Close without attaching."""
        self.dismiss(None)
