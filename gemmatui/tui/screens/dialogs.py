"""Small modal dialogs shared by every screen."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmDialog(ModalScreen[bool]):
    """Ask a yes/no question; dismisses with ``True`` for yes.

    ``y`` answers yes, ``n`` and Esc answer no, Enter presses the focused button.

    Args:
        title: The question, one short line ("Stop the download?").
        message: What happens either way; shown as plain text, never as markup.
        yes: Label of the yes button.
        no: Label of the no button.
        default_yes: Focus the yes button first (so Enter confirms).

    Example:
        ```python
        def stop(self) -> None:
            def answered(yes: bool | None) -> None:
                if yes:
                    self.worker.cancel()

            self.app.push_screen(ConfirmDialog("Stop?", "It can be resumed."), answered)
        ```
    """

    DEFAULT_CSS = """
    ConfirmDialog {
        align: center middle;
        background: $background 60%;
    }
    ConfirmDialog > Vertical {
        width: 64;
        max-width: 90%;
        height: auto;
        padding: 1 2;
        background: $surface;
        border: thick $warning;
        border-title-color: $warning;
        border-title-style: bold;
    }
    ConfirmDialog .confirm--message {
        margin-bottom: 1;
    }
    ConfirmDialog Horizontal {
        height: auto;
        align-horizontal: right;
    }
    ConfirmDialog Button {
        margin-left: 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(
        self,
        title: str,
        message: str,
        *,
        yes: str = "Yes",
        no: str = "No",
        default_yes: bool = False,
    ) -> None:
        super().__init__()
        self._title = title
        self._message = message
        self._yes = yes
        self._no = no
        self._default_yes = default_yes

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self._title
            yield Static(self._message, markup=False, classes="confirm--message")
            with Horizontal():
                yield Button(self._no, id="no")
                yield Button(self._yes, id="yes", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#yes" if self._default_yes else "#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Close the dialog with the given answer."""
        self.dismiss(yes)
