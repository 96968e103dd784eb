"""The key-binding help screen (``?`` or F1), and the one table of keys it shows.

:data:`KEYMAP` is the single list of every key the app answers to, by screen. The help
screen renders it, ``docs/tui.md`` shows the same table, and the tests check that every
binding of the app and its screens appears in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Static


@dataclass(frozen=True)
class KeyRow:
    """Keys (Textual key names, e.g. ``"question_mark"``, ``"ctrl+p"``) and what they do."""

    keys: tuple[str, ...]
    action: str


@dataclass(frozen=True)
class KeySection:
    """The keys of one screen (or of every screen)."""

    title: str
    rows: tuple[KeyRow, ...]


KEYMAP: tuple[KeySection, ...] = (
    KeySection(
        "Everywhere",
        (
            KeyRow(("m", "ctrl+o"), "Choose a model: hardware, fit and context planner"),
            KeyRow(("question_mark", "f1"), "This help"),
            KeyRow(("ctrl+p",), "Command palette: every action by name"),
            KeyRow(("ctrl+t",), "Change the colour theme (saved)"),
            KeyRow(("r", "f5"), "Retry the Ollama connection (while the banner shows)"),
            KeyRow(("ctrl+q", "q"), "Quit (asks while a reply or pull runs; q types in the chat)"),
        ),
    ),
    KeySection(
        "Model screen",
        (
            KeyRow(("up", "down"), "Move between the variants"),
            KeyRow(("enter",), "Use the variant; pull it first if it is not installed"),
            KeyRow(("left_square_bracket", "right_square_bracket"), "Shorter / longer context"),
            KeyRow(("k",), "Next KV cache type (f16, q8_0, q4_0)"),
            KeyRow(("tab",), "Move between the selectors and the table"),
            KeyRow(("escape",), "Back to the chat (when one is open)"),
        ),
    ),
    KeySection(
        "Pull",
        (
            KeyRow(("escape",), "Stop the download (asks first); back once stopped"),
            KeyRow(("r",), "Retry a failed or stopped download (it resumes)"),
        ),
    ),
    KeySection(
        "Chat",
        (
            KeyRow(("enter",), "Send"),
            KeyRow(("shift+enter", "ctrl+j"), "New line in the prompt"),
            KeyRow(("escape",), "Stop the reply (the partial reply is kept)"),
            KeyRow(("ctrl+r",), "Regenerate the last reply"),
            KeyRow(("ctrl+y",), "Copy the last reply"),
            KeyRow(("ctrl+b",), "Show or hide the conversation list"),
            KeyRow(("f3",), "Show or hide the live panels (hidden below 100 columns)"),
            KeyRow(("ctrl+n",), "New conversation"),
            KeyRow(("ctrl+e",), "Export the conversation"),
            KeyRow(("ctrl+s",), "Edit the system prompt"),
            KeyRow(("ctrl+a",), "Attach an image (or paste or drop its path into the prompt)"),
        ),
    ),
    KeySection(
        "Conversation list",
        (
            KeyRow(("enter",), "Open the conversation"),
            KeyRow(("f2",), "Rename the conversation"),
            KeyRow(("delete",), "Delete the conversation (asks first)"),
        ),
    ),
    KeySection(
        "Dialogs",
        (
            KeyRow(("y",), "Yes"),
            KeyRow(("n", "escape"), "No"),
        ),
    ),
)

_NAMES = {
    "enter": "Enter",
    "escape": "Esc",
    "tab": "Tab",
    "up": "↑",
    "down": "↓",
    "delete": "Delete",
}


def key_label(key: str) -> str:
    """How a key is written for people: ``ctrl+p``, ``?``, ``F1``, ``Enter``, ``[``.

    >>> keys = ("question_mark", "f1", "ctrl+p", "shift+enter", "left_square_bracket")
    >>> [key_label(k) for k in keys]
    ['?', 'F1', 'ctrl+p', 'shift+Enter', '[']
    """
    *modifiers, name = key.split("+")
    if name in _NAMES:
        shown = _NAMES[name]
    elif len(name) >= 2 and name[0] == "f" and name[1:].isdigit():
        shown = name.upper()
    else:
        shown = format_key(name)
    return "+".join([*modifiers, shown])


def keys_label(keys: tuple[str, ...]) -> str:
    """Several keys for one action: ``? / F1``."""
    return " / ".join(key_label(key) for key in keys)


class HelpScreen(ModalScreen[None]):
    """Every key binding, by screen; Esc, ``q``, ``?`` or F1 closes it.

    The keys are a grid of plain text cells, not a table: an action wraps onto more
    lines rather than being cut off, however narrow the terminal.
    """

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        background: $background 60%;
    }
    HelpScreen > Vertical {
        width: 96;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        background: $surface;
        border: thick $primary;
        border-title-color: $primary;
        border-title-style: bold;
        padding: 0 1;
    }
    HelpScreen VerticalScroll {
        height: auto;
        max-height: 1fr;
        scrollbar-size-vertical: 1;
    }
    HelpScreen .help--section {
        text-style: bold;
        color: $text-primary;
        margin-top: 1;
    }
    HelpScreen .help--rows {
        layout: grid;
        grid-size: 2;
        grid-columns: 22 1fr;
        grid-rows: auto;
        grid-gutter: 0 1;
        height: auto;
    }
    HelpScreen .help--keys {
        color: $text-accent;
        text-style: bold;
    }
    HelpScreen .help--footer {
        dock: bottom;
        height: auto;
        color: $text-muted;
        padding-top: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Keys"
            with VerticalScroll(id="help-keys"):
                for section in KEYMAP:
                    yield Static(section.title, classes="help--section", markup=False)
                    with Container(classes="help--rows"):
                        for row in section.rows:
                            # markup=False: "[" is a key here.
                            yield Static(keys_label(row.keys), classes="help--keys", markup=False)
                            yield Static(row.action, classes="help--action", markup=False)
            yield Static(
                "Every action is also in the command palette (ctrl+p). While you type in the "
                "chat's prompt, letters go to the prompt: use ctrl+o, F1, F5 and ctrl+q there. "
                "Esc closes this help.",
                classes="help--footer",
            )

    def on_mount(self) -> None:
        self.query_one("#help-keys", VerticalScroll).focus()

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
