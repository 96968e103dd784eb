"""The frame the live panels share: a rounded border with the panel's name in it."""

from __future__ import annotations

from textual.containers import Vertical
from textual.content import Content


class Panel(Vertical):
    """A titled, bordered box that sizes to its content.

    Args:
        title: Shown in the top border.
        id: The widget id.
    """

    DEFAULT_CSS = """
    Panel {
        height: auto;
        border: round $border-blurred;
        border-title-color: $text-accent;
        border-title-style: bold;
        padding: 0 1;
        &> Static { height: auto; }
    }
    """

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = Content(title)
