"""MarkdownView: a reply's Markdown drawn by one widget (issue #11).

It replaces Textual's Markdown widget tree (about 40 KB and a place in every layout
per block) with lines drawn once per width and theme; these tests check that it
draws what Markdown means, stays one widget, keeps model output as text, follows the
width and the theme, and can be selected with the mouse.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from rich.syntax import Syntax
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll

from gemmatui.tui.widgets import markdown_view
from gemmatui.tui.widgets.markdown_view import MarkdownView

DOCUMENT = """# Title

A paragraph with **bold**, *italic* and `code`.

## Section

- first item
- second item

```python
def f(x):
    return x * 2
```

| model | size |
|---|---:|
| 1B | 1.0 GB |

> quoted words

1. one
2. two
"""


class _Host(App[None]):
    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield MarkdownView(self.source)


def _lines(view: MarkdownView) -> list[str]:
    return view.rendered_text.splitlines()


async def test_draws_the_document_in_one_widget() -> None:
    """Headings, emphasis, lists, code, a table, a quote and an ordered list are drawn
    as such (no Markdown syntax left on screen), all by one widget with no children."""
    app = _Host(DOCUMENT)
    async with app.run_test(size=(60, 50)) as pilot:
        await pilot.pause()
        view = app.query_one(MarkdownView)
        lines = _lines(view)
        assert "Title" in lines[0] and "#" not in lines[0]
        assert "A paragraph with bold, italic and code." in lines
        assert "Section" in lines
        assert any(line.strip() == "• first item" for line in lines)
        assert any("def f(x):" in line for line in lines)
        assert not any("```" in line or "**" in line for line in lines)
        assert any("1B" in line and "1.0 GB" in line for line in lines)
        assert any("quoted words" in line and ">" not in line for line in lines)
        assert any(line.strip().startswith("1") and "one" in line for line in lines)
        assert not view.children
        assert view.size.height == len(lines)


async def test_model_output_stays_text() -> None:
    """Raw HTML and console markup are shown as typed; a link shows its address and
    is never a terminal hyperlink (whose target the text could hide)."""
    source = (
        "Use Vec<T> and <script>alert(1)</script>, [bold]x[/bold], [click](https://evil.example/p)."
    )
    app = _Host(source)
    async with app.run_test(size=(100, 10)) as pilot:
        await pilot.pause()
        view = app.query_one(MarkdownView)
        text = view.rendered_text
        assert "Vec<T>" in text and "<script>alert(1)</script>" in text
        assert "[bold]x[/bold]" in text
        assert "click (https://evil.example/p)" in text
        for strip in view.lines(view.size.width):
            assert all(segment.style is None or not segment.style.link for segment in strip)


async def test_follows_the_width_and_draws_once_per_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """A narrower view wraps into more lines; the same width is not drawn again, and
    a new width draws the document again without parsing or highlighting it again."""
    parsed: list[str] = []
    highlighted: list[str] = []
    parser = markdown_view._PARSER
    monkeypatch.setattr(
        markdown_view,
        "_PARSER",
        SimpleNamespace(parse=lambda text: parsed.append(text) or parser.parse(text)),
    )
    highlight = Syntax.highlight

    def counting(self: Syntax, code: str, line_range: object = None) -> object:
        highlighted.append(code)
        return highlight(self, code, line_range)  # type: ignore[arg-type]

    monkeypatch.setattr(Syntax, "highlight", counting)
    app = _Host("word " * 60 + "\n\n```python\nx = 1\n```\n")
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        view = app.query_one(MarkdownView)
        wide = view.size.height
        drawn = view.lines(view.size.width)
        assert view.lines(view.size.width) is drawn  # kept, not drawn again
        await pilot.resize_terminal(40, 20)
        await pilot.pause()
        assert view.size.height > wide
        assert all(len(line) <= view.size.width for line in _lines(view))
        assert len(parsed) == 1 and len(highlighted) == 1


async def test_a_theme_change_draws_it_again_in_the_new_colours() -> None:
    app = _Host("# Heading\n\ntext")
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        view = app.query_one(MarkdownView)

        def heading_colour() -> object:
            strip = view.lines(view.size.width)[0]
            return next(s.style.color for s in strip if s.text.strip() and s.style)

        dark = heading_colour()
        app.theme = "textual-light"
        await pilot.pause()
        assert heading_colour() != dark


async def test_append_and_update_redraw_and_an_empty_view_takes_no_room() -> None:
    app = _Host("")
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        view = app.query_one(MarkdownView)
        assert not view.display and view.rendered_text == ""
        view.append("first paragraph\n\n")
        view.append("second")
        await pilot.pause()
        assert view.display
        assert _lines(view) == ["first paragraph", "", "second"]
        view.update("")
        await pilot.pause()
        assert not view.display


async def test_text_can_be_selected_with_the_mouse() -> None:
    app = _Host("alpha beta gamma\n\ndelta epsilon")
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        view = app.query_one(MarkdownView)
        await pilot.mouse_down(view, offset=(6, 0))
        await pilot.hover(view, offset=(4, 2))
        await pilot.mouse_up(view, offset=(4, 2))
        await pilot.pause()
        assert app.screen.get_selected_text() == "beta gamma\n\ndelta"


async def test_measured_with_and_without_a_scrollbar_it_is_drawn_once_per_width() -> None:
    """A layout of a scrolling view asks for two widths in turn (with and without the
    scrollbar): each is drawn once, not once per request."""
    app = _Host("word " * 60)
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        view = app.query_one(MarkdownView)
        drawn: list[int] = []
        draw = view._draw

        def counting(width: int) -> list[object]:
            drawn.append(width)
            return draw(width)  # type: ignore[return-value]

        view._draw = counting  # type: ignore[method-assign,assignment]
        view.update(view.source + " more")
        for _ in range(5):
            view.lines(71)
            view.lines(73)
        assert sorted(drawn) == [71, 73]


async def test_a_renderer_failure_shows_the_reply_as_plain_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should the Markdown renderer ever fail on some reply, the app goes on and the
    reply is shown as its plain text."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RecursionError("a document the renderer chokes on")

    monkeypatch.setattr(markdown_view, "ReplyDocument", broken)
    app = _Host("**still** readable")
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        view = app.query_one(MarkdownView)
        assert view.rendered_text == "**still** readable"
        assert app.is_running
