"""The frame the live panels share: a rounded border with the panel's name in it."""

from __future__ import annotations

from rich.cells import cell_len
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static


def _shape(content: Content) -> list[int]:
    return [cell_len(line) for line in content.plain.split("\n")]


def show_content(static: Static, content: Content) -> None:
    """Show ``content`` in ``static``, at the least cost.

    The panels are redrawn once or twice a second, mostly with what they already show:
    an unchanged content is not drawn again, and one whose lines keep their widths is
    repainted without a new layout of the screen (``Static.update`` lays out by
    default, which costs a pass over every widget of the screen).

    >>> from textual.widgets import Static
    >>> static = Static(Content("12 GiB"))
    >>> show_content(static, Content("13 GiB")); static.content.plain
    '13 GiB'
    """
    old = static.content
    if isinstance(old, Content):
        if old.is_same(content):
            return
        static.update(content, layout=_shape(old) != _shape(content))
    else:
        static.update(content)


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
