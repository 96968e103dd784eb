"""A modal that edits one piece of text: a conversation's title or its system prompt."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static, TextArea

from gemmatui.core.text import sanitize


class EditTextDialog(ModalScreen[str | None]):
    """Edit ``text``; dismisses with the new text, or ``None`` when cancelled.

    One line (``multiline=False``): Enter saves. Several lines: Enter adds a line and
    Ctrl+S (or the Save button) saves. Esc cancels either way.

    Args:
        title: What is edited, shown in the frame.
        text: The current value.
        hint: One line under the editor saying what the value does.
        multiline: Edit in a TextArea instead of an Input.
        save_label: The confirming button's word.

    A subclass may give another one-line editor (:meth:`editor`); it must be an ``Input``
    with the id ``edit-text``.
    """

    DEFAULT_CSS = """
    EditTextDialog {
        align: center middle;
        background: $background 60%;
        &> Vertical {
            width: 72;
            max-width: 95%;
            height: auto;
            padding: 1 2;
            background: $surface;
            border: thick $primary;
            border-title-color: $text-primary;
            border-title-style: bold;
        }
        & TextArea { height: 10; }
        & .hint { color: $text-muted; margin: 1 0; }
        & Horizontal { height: auto; align-horizontal: right; }
        & Button { margin-left: 2; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save", priority=True),
    ]

    def __init__(
        self,
        title: str,
        text: str,
        *,
        hint: str = "",
        multiline: bool = False,
        save_label: str = "Save",
    ) -> None:
        super().__init__()
        self._title = title
        # Prefilled from the history (a title, a system prompt): never drawn raw.
        self._text = sanitize(text)
        self._hint = hint
        self._multiline = multiline
        self._save_label = save_label

    def editor(self) -> Input | TextArea:
        """The editing widget (id ``edit-text``), prefilled with the text."""
        if self._multiline:
            return TextArea(self._text, id="edit-text", soft_wrap=True, tab_behavior="focus")
        return Input(self._text, id="edit-text", select_on_focus=True)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = Content(self._title)
            yield self.editor()
            yield Static(self._hint, classes="hint", markup=False)
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button(self._save_label, id="save", variant="primary")

    def on_mount(self) -> None:
        editor = self.query_one("#edit-text")
        if isinstance(editor, TextArea):
            editor.move_cursor(editor.document.end)  # go on writing after what is there
        editor.focus()

    @property
    def value(self) -> str:
        """The text as edited so far."""
        editor = self.query_one("#edit-text")
        if isinstance(editor, TextArea):
            return editor.text
        return self.query_one("#edit-text", Input).value

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        """Close with the edited text."""
        self.dismiss(self.value)

    def action_cancel(self) -> None:
        """Close without a change."""
        self.dismiss(None)
