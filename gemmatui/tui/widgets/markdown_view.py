"""A reply's Markdown, drawn by one widget.

Textual's ``Markdown`` widget builds a widget for every block of the document (a list
item is four: the item, its bullet, its paragraph, and the list around them), and each
widget costs about 40 KB and a place in every layout of the screen: a 20,000-token
reply held ~300 MiB, and frames while streaming cost more the longer the conversation
grew (``bench/README.md``, issue #11). :class:`MarkdownView` draws the same document
with Rich's Markdown renderer into lines it keeps for the width it was drawn at, so a
piece of a reply is one widget however many blocks it has, and memory is what its lines
take (a few KB per screenful).

What it looks like follows the app's theme: headings take Textual's
``$markdown-h1-color`` ... ``$markdown-h6-text-style`` variables, inline code, links,
quotes and bullets the theme's colours, code blocks a Pygments theme for dark or light
(ANSI colours under the ANSI theme) on a background a shade off the reply's.

Model output is untrusted. The text given to this widget has been sanitised
(:mod:`gemmatui.core.text`) by its caller; on top of that, raw HTML is not a thing
here (``<b>`` is shown as typed, never interpreted or dropped) and links are shown as
their text followed by the address, never as a terminal hyperlink whose target the
text could disguise.

Text can be selected with the mouse like any other Textual text.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import ClassVar

from markdown_it import MarkdownIt
from rich.console import Console, ConsoleOptions, RenderResult
from rich.errors import StyleSyntaxError
from rich.markdown import CodeBlock, Heading, MarkdownElement, TableElement
from rich.markdown import Markdown as RichMarkdown
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from rich.theme import Theme
from textual.color import Color, ColorParseError
from textual.geometry import Size
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

#: CommonMark with tables and strikethrough, as Rich parses it, but with raw HTML off:
#: ``<T>`` or ``<script>`` in a reply is text to show, not markup to drop.
_PARSER = MarkdownIt("commonmark", {"html": False}).enable(["strikethrough", "table"])
#: Widths a view keeps its drawn lines for (see ``MarkdownView._drawn``).
WIDTHS_KEPT = 2


class _Heading(Heading):
    """A heading as Textual's Markdown lays it out: ``#`` centred, the others left."""

    LEVEL_ALIGN: ClassVar = {"h1": "center"}


class _Syntax(Syntax):
    """Syntax that highlights its code once: drawing it at another width re-wraps the
    highlighted text instead of running the lexer again."""

    _highlighted: Text | None = None

    def highlight(self, code: str, line_range: tuple[int | None, int | None] | None = None) -> Text:
        if line_range is not None:
            return super().highlight(code, line_range)
        if self._highlighted is None:
            self._highlighted = super().highlight(code)
        return self._highlighted.copy()


class _CodeBlock(CodeBlock):
    """A fenced or indented code block on its own background, with room around it;
    highlighted once per document (:attr:`ReplyDocument.code`)."""

    document: ReplyDocument

    @classmethod
    def create(cls, markdown: RichMarkdown, token: object) -> _CodeBlock:  # type: ignore[override]
        block = super().create(markdown, token)  # type: ignore[arg-type]
        assert isinstance(block, _CodeBlock) and isinstance(markdown, ReplyDocument)
        block.document = markdown
        return block

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        code = str(self.text).rstrip()
        key = (self.lexer_name, code)
        syntax = self.document.code.get(key)
        if syntax is None:
            syntax = self.document.code[key] = _Syntax(
                code,
                self.lexer_name,
                theme=self.theme,
                word_wrap=True,
                padding=(1, 2),
                background_color=self.document.code_background,
            )
        yield syntax


class _Table(TableElement):
    """A table without the blank rows Rich puts above and below it."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for table in super().__rich_console__(console, options):
            if isinstance(table, Table):
                table.show_edge = False
            yield table


class ReplyDocument(RichMarkdown):
    """A Markdown document drawn the way :class:`MarkdownView` draws it.

    Args:
        source: The Markdown text (already sanitised).
        code_theme: Pygments theme for code blocks.
        code_background: Background of code blocks (a colour Rich parses), or ``None``
            for the Pygments theme's own.
    """

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {
        **RichMarkdown.elements,
        "heading_open": _Heading,
        "fence": _CodeBlock,
        "code_block": _CodeBlock,
        "table_open": _Table,
    }

    def __init__(
        self,
        source: str,
        *,
        code_theme: str = "monokai",
        code_background: str | None = None,
        code: dict[tuple[str, str], _Syntax] | None = None,
    ) -> None:
        super().__init__("", code_theme=code_theme, hyperlinks=False)
        self.markup = source
        self.parsed = _PARSER.parse(source)
        self.code_background = code_background
        #: Code blocks highlighted once, by (lexer, code): this document's, and those of
        #: an earlier version of it that ``code`` brought (same theme).
        self.code: dict[tuple[str, str], _Syntax] = {} if code is None else code


def _color(value: str | None, under: Color) -> Color | None:
    """A theme variable's colour, any transparency blended onto ``under``."""
    if not value or value in ("transparent", "initial", "inherit"):
        return None
    try:
        color = Color.parse(value)
    except ColorParseError:  # "auto 87%" and other forms that need a widget to resolve
        return None
    return under + color if color.a < 1 else color


def _style(
    variables: Mapping[str, str],
    under: Color,
    *,
    color: str | None = None,
    background: str | None = None,
    text_style: str | None = None,
) -> Style:
    """A Rich style from theme variable names (a missing or unparsable one is left out)."""
    fg = _color(variables.get(color), under) if color else None
    bg = _color(variables.get(background), under) if background else None
    style = Style(color=fg.rich_color if fg else None, bgcolor=bg.rich_color if bg else None)
    words = variables.get(text_style, "") if text_style else ""
    if words and words != "none":
        try:
            style += Style.parse(words)
        except StyleSyntaxError:  # a text style Rich does not know: leave it plain
            return style
    return style


@lru_cache(maxsize=8)
def markdown_styles(
    variables: tuple[tuple[str, str], ...], dark: bool, ansi: bool
) -> tuple[Theme, str, str | None]:
    """Rich's Markdown styles, a Pygments theme and a code background for a Textual theme.

    Args:
        variables: The app's ``theme_variables``, as sorted items (to be cacheable).
        dark: Whether the theme is dark.
        ansi: Whether it is the ANSI theme (terminal's own colours).

    Returns:
        The Rich theme, the code theme, the code blocks' background.
    """
    values = dict(variables)
    under = _color(values.get("surface"), Color(0, 0, 0)) or Color(0, 0, 0)
    # Inline code as Textual's Markdown draws it: warning colours when dark, error
    # colours when light, on a faint tint of that colour (no tint in ANSI colours).
    accent = "warning" if dark else "error"
    code_color = _style(values, under, color=f"text-{accent}").color
    tint = Color.parse(values.get(accent, "#808080")).with_alpha(0.1 if dark else 0.05)
    styles: dict[str, Style] = {
        "markdown.code": Style(
            color=code_color, bgcolor=None if ansi else (under + tint).rich_color
        ),
        "markdown.link": _style(values, under, color="text-primary"),
        "markdown.link_url": _style(values, under, color="foreground-muted")
        + Style(underline=True),
        "markdown.block_quote": _style(values, under, color="foreground-muted"),
        "markdown.item.bullet": _style(values, under, color="text-primary"),
        "markdown.item.number": _style(values, under, color="text-primary"),
        "markdown.hr": _style(values, under, color="secondary"),
        "markdown.table.border": _style(values, under, color="primary"),
        "markdown.table.header": _style(values, under, color="text-primary") + Style(bold=True),
        "markdown.list": Style(),
    }
    for level in range(1, 7):
        name = f"markdown-h{level}"
        styles[f"markdown.h{level}"] = _style(
            values,
            under,
            color=f"{name}-color",
            background=f"{name}-background",
            text_style=f"{name}-text-style",
        )
    if ansi:
        return Theme(styles), "ansi_dark" if dark else "ansi_light", None
    shade = Color(0, 0, 0, 0.25) if dark else Color(0, 0, 0, 0.06)
    return Theme(styles), "monokai" if dark else "default", (under + shade).hex


class MarkdownView(Widget):
    """A Markdown document in one widget, drawn into lines once per width and theme.

    Args:
        source: The Markdown text; sanitise model output before it gets here.
        classes: CSS classes.
    """

    DEFAULT_CSS = """
    MarkdownView {
        height: auto;
    }
    """

    def __init__(self, source: str = "", *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.source = source
        #: The document drawn, by (width, theme): the last :data:`WIDTHS_KEPT` of them,
        #: since a layout of a scrolling view measures each widget at two widths (with
        #: and without the scrollbar) and keeping one would draw it twice every time.
        self._drawn: dict[tuple[int, str], list[Strip]] = {}
        #: The parsed document and the theme it was made for: a new width draws it
        #: again without parsing or highlighting again.
        self._document: tuple[str, ReplyDocument] | None = None
        #: Highlighted code blocks, kept while text is appended (a streamed reply's
        #: piece is drawn again at every settle; its earlier code does not change).
        self._code: dict[tuple[str, str], _Syntax] = {}
        self.display = bool(source.strip())  # an empty document takes no room

    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._theme_changed, init=False)

    def _theme_changed(self) -> None:
        self._drawn, self._document = {}, None
        self._code = {}
        self.refresh(layout=True)

    def append(self, text: str) -> None:
        """Add ``text`` to the end of the document and draw it again (code blocks
        already highlighted are not highlighted again)."""
        if text:
            self._set_source(self.source + text)

    def update(self, source: str) -> None:
        """Replace the document."""
        self._code = {}
        self._set_source(source)

    def _set_source(self, source: str) -> None:
        self.source = source
        self._drawn, self._document = {}, None
        self.display = bool(source.strip())
        self.refresh(layout=True)

    def lines(self, width: int) -> list[Strip]:
        """The document drawn ``width`` cells wide (kept for the last widths and theme)."""
        key = (width, self.app.theme)
        lines = self._drawn.pop(key, None)
        if lines is None:
            lines = self._draw(width)
            while len(self._drawn) >= WIDTHS_KEPT:
                del self._drawn[next(iter(self._drawn))]  # the least recently used
        self._drawn[key] = lines  # the most recent last
        return lines

    @property
    def rendered_text(self) -> str:
        """What the view shows at its current width, as plain lines (trailing spaces cut)."""
        return "\n".join(strip.text.rstrip() for strip in self.lines(self.size.width))

    def _draw(self, width: int) -> list[Strip]:
        if width <= 0 or not self.source.strip():
            return []
        console = self.app.console
        try:
            return self._draw_markdown(width)
        except Exception as err:  # noqa: BLE001 (a reply must never take the app down)
            # The text is untrusted and the renderer third-party: should it ever fail on
            # some input, the reply is still shown, as the plain text it is.
            self.log.error("could not draw a reply as Markdown; shown as text", err)
            self._document = None
            options = console.options.update_width(width).update(height=None)
            lines = console.render_lines(Text(self.source), options, pad=True)
            return [Strip(line, width) for line in lines]

    def _draw_markdown(self, width: int) -> list[Strip]:
        app = self.app
        theme = app.current_theme
        rich_theme, code_theme, code_background = markdown_styles(
            tuple(sorted(app.theme_variables.items())), theme.dark, theme.name == "textual-ansi"
        )
        if self._document is None or self._document[0] != app.theme:
            document = ReplyDocument(
                self.source,
                code_theme=code_theme,
                code_background=code_background,
                code=self._code,
            )
            self._document = (app.theme, document)
        console = app.console
        options = console.options.update_width(width).update(
            height=None, highlight=False, markup=False
        )
        with console.use_theme(rich_theme, inherit=True):
            lines = console.render_lines(self._document[1], options, pad=True)
        return [Strip(line, width) for line in lines]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines(width))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        lines = self.lines(width)
        if y >= len(lines):
            return Strip.blank(width, base)
        strip = lines[y].apply_style(base)
        selection = self.text_selection
        if selection is not None and (span := selection.get_span(y)) is not None:
            start, end = span
            end = strip.cell_length if end == -1 else end
            selected = self.screen.get_component_rich_style("screen--selection")
            middle = Segment.apply_style(strip.crop(start, end), post_style=selected)
            strip = Strip.join([strip.crop(0, start), Strip(middle), strip.crop(end)])
        return strip.apply_offsets(0, y)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        text = "\n".join(strip.text.rstrip() for strip in self.lines(self.size.width))
        return selection.extract(text), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()
