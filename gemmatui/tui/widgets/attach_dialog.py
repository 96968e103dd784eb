"""The attach dialog (Ctrl+A in the chat): a path prompt that completes file names."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input

from gemmatui.core.images import MAX_IMAGE_BYTES
from gemmatui.core.units import format_bytes
from gemmatui.tui.widgets.attachments import PathSuggester
from gemmatui.tui.widgets.edit_dialog import EditTextDialog


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


class AttachDialog(EditTextDialog):
    """Ask for an image file; dismisses with the path as typed, or ``None``.

    The edit dialog with a path field that completes file names. The path is checked by
    the chat screen (which says in one line what is wrong and keeps the prompt's text),
    not here.

    Args:
        cwd: Where relative paths start (default: the working directory).
    """

    DEFAULT_CSS = """
    AttachDialog > Vertical { width: 80; }
    """

    def __init__(self, cwd: Path | None = None) -> None:
        super().__init__(
            "Attach an image",
            "",
            hint=(
                f"PNG, JPEG, WebP or GIF, up to {format_bytes(MAX_IMAGE_BYTES)}. Tab or → "
                "completes the name; Enter attaches, Esc cancels. You can also paste or drop "
                "a file's path into the prompt."
            ),
            save_label="Attach",
        )
        self.cwd = cwd

    def editor(self) -> PathInput:
        return PathInput(
            id="edit-text", placeholder="path/to/picture.png", suggester=PathSuggester(self.cwd)
        )

    def action_save(self) -> None:
        """Close with the path typed (nothing typed: like Esc)."""
        self.dismiss(self.value.strip() or None)
