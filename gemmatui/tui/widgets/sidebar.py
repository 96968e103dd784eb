"""The conversation sidebar (Ctrl+B): saved chats, newest first, with New/Rename/Delete.

It only lists and asks; the screen does the work on the store when it hears the
messages this posts. Titles come from what the user wrote (or a rename), models from
the history file: both are shown as one sanitised line, never markup.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from gemmatui.core.storage import Conversation
from gemmatui.core.text import sanitize_line
from gemmatui.tui.messages import (
    ConversationSelected,
    DeleteConversationRequested,
    NewConversationRequested,
    RenameConversationRequested,
)

TITLE_WIDTH = 27


def _option(conv: Conversation, current: bool) -> Option:
    when = time.strftime("%m-%d %H:%M", time.localtime(conv.updated_at))
    title = sanitize_line(conv.display_title, TITLE_WIDTH)
    model = sanitize_line(conv.model.removeprefix("gemma3:"))
    prompt = Content.assemble(
        ("● " if current else "  ", "$text-accent"),
        title,
        (f"\n  {when} · {model}", "$text-muted"),
    )
    return Option(prompt, id=str(conv.id))


class ConversationSidebar(Vertical):
    """Saved conversations. Enter/click resumes one; F2 renames, Delete deletes."""

    DEFAULT_CSS = """
    ConversationSidebar {
        width: 32;
        height: 1fr;
        background: $panel;
        padding: 0 1;
        &> .title { text-style: bold; color: $text-accent; height: 1; }
        &> OptionList {
            height: 1fr;
            background: $panel;
            border: none;
            padding: 0;
            &:focus { border: none; }
        }
        &> Horizontal { height: auto; }
        &> Horizontal > Button { min-width: 6; width: 1fr; margin: 0; }
    }
    """

    BINDINGS = [
        Binding("f2", "rename", "Rename"),
        Binding("delete", "delete", "Delete"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.conversations: list[Conversation] = []

    def compose(self) -> ComposeResult:
        yield Static("Conversations", classes="title", markup=False)
        yield OptionList(id="conv-list", markup=False)
        with Horizontal():
            yield Button("New", id="conv-new", compact=True)
            yield Button("Rename", id="conv-rename", compact=True)
            yield Button("Delete", id="conv-delete", variant="error", compact=True)

    @property
    def option_list(self) -> OptionList:
        return self.query_one(OptionList)

    def show(self, conversations: Sequence[Conversation], current_id: int | None) -> None:
        """List ``conversations`` (already ordered) and mark and highlight the current one."""
        self.conversations = list(conversations)
        options = self.option_list
        options.set_options(_option(c, c.id == current_id) for c in self.conversations)
        ids = [c.id for c in self.conversations]
        if current_id in ids:
            options.highlighted = ids.index(current_id)

    @property
    def highlighted_id(self) -> int | None:
        """The conversation under the cursor, if any."""
        index = self.option_list.highlighted
        if index is None or not 0 <= index < len(self.conversations):
            return None
        return self.conversations[index].id

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(ConversationSelected(int(event.option.id)))

    @on(Button.Pressed, "#conv-new")
    def _new(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(NewConversationRequested())

    @on(Button.Pressed, "#conv-rename")
    def _rename_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_rename()

    @on(Button.Pressed, "#conv-delete")
    def _delete_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_delete()

    def action_rename(self) -> None:
        """Ask the screen to rename the highlighted conversation."""
        if (conv_id := self.highlighted_id) is not None:
            self.post_message(RenameConversationRequested(conv_id))

    def action_delete(self) -> None:
        """Ask the screen to delete the highlighted conversation (it confirms first)."""
        if (conv_id := self.highlighted_id) is not None:
            self.post_message(DeleteConversationRequested(conv_id))
