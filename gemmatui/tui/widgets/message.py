"""The blocks of a conversation: the user's prompt, a reply, an error, the system prompt.

Whatever the user or the model wrote is content, never markup: prompts and errors
are shown with ``markup=False``, replies through
:class:`~gemmatui.tui.widgets.markdown_view.MarkdownView` (which shows ``[bold]``,
``<b>`` or ``[link=...]`` as text), and headers are built as ``Content`` objects.

Nor does it ever drive the terminal: everything shown here (prompts, replies, errors
quoting a server, the system prompt, a model's name from the history) goes through
:mod:`gemmatui.core.text` first, which removes escape sequences and control
characters. The blocks keep the raw text in their ``text`` attribute (it is what the
model reads back and what the history holds); only what is displayed is sanitised.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.geometry import Size
from textual.reactive import reactive, var
from textual.widget import Widget
from textual.widgets import Static

from gemmatui.core.images import Attachment
from gemmatui.core.storage import StoredImage
from gemmatui.core.text import sanitize, sanitize_line
from gemmatui.core.types import ChatStats
from gemmatui.tui.widgets.attachments import ImageBlock
from gemmatui.tui.widgets.markdown_view import MarkdownView

ReplyStatus = Literal["streaming", "complete", "partial", "error"]

#: What an unfinished reply is marked with in the view.
STATUS_MARKS: dict[str, str] = {
    "partial": "(stopped)",
    "error": "(interrupted: the reply is incomplete)",
}


#: Blank lines a streaming tail keeps below its text, at least and at most, so that it
#: grows (and the screen is laid out again) about once a second rather than on every
#: new line: the step doubles when it grew less than a second ago, halves after two.
TAIL_SLACK = 3
TAIL_SLACK_MAX = 12


class StreamTail(Widget):
    """The block of a streaming reply still being written, as plain text.

    Drawing new text costs a repaint of this widget's own lines. The screen is laid out
    again only when its height changes, and its height moves in steps: it keeps a few
    blank lines below the text (:data:`TAIL_SLACK` to :data:`TAIL_SLACK_MAX`, more the
    faster lines arrive), grows by that much when the text needs more, and shrinks when
    blocks move on to Markdown (see :mod:`~gemmatui.tui.widgets.reply_stream`). Its text
    is sanitised by the stream before it gets here.

    Args:
        clock: Monotonic seconds, to time the steps.
    """

    DEFAULT_CSS = """
    StreamTail {
        height: auto;
        margin: 0 0 1 0;
    }
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, classes: str | None = None
    ) -> None:
        super().__init__(classes=classes)
        self.clock = clock
        self._content = Content("")
        self._width = 0  # the width the height was chosen for
        self._height = 0
        self._slack = TAIL_SLACK
        self._grown_at = -1e9

    @property
    def text(self) -> str:
        """The text shown."""
        return self._content.plain

    def _lines(self, width: int) -> int:
        return self._content.get_height(self.styles, width) if self._content.plain else 0

    def _fits(self, lines: int, height: int) -> bool:
        return lines <= height <= lines + self._slack if lines else height == 0

    def show(self, text: str) -> None:
        """Show ``text`` (trailing blank lines dropped); lay out only if the height must change."""
        content = Content(text.rstrip())
        if content.plain == self._content.plain:
            return
        self._content = content
        width = self.content_size.width
        fits = bool(width) and width == self._width and self._fits(self._lines(width), self._height)
        self.refresh(layout=not fits)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        lines = self._lines(width)
        if width != self._width or not self._fits(lines, self._height):
            if lines > self._height:  # growing: in bigger steps while lines come fast
                now = self.clock()
                since = now - self._grown_at
                if since < 1.0:
                    self._slack = min(TAIL_SLACK_MAX, self._slack * 2)
                elif since > 2.0:
                    self._slack = max(TAIL_SLACK, self._slack // 2)
                self._grown_at = now
            self._width, self._height = width, lines + self._slack if lines else 0
        return self._height

    def render(self) -> Content:
        return self._content


class MessageBlock(Vertical):
    """One message: a one-line header over the body, with a coloured left edge.

    Args:
        message_id: The message's id in the store (``None`` until saved).
    """

    DEFAULT_CSS = """
    MessageBlock {
        height: auto;
        margin: 1 1 0 0;
        padding: 0 1;
        border-left: outer $primary;
        background: $surface;
        &> .header {
            color: $text-muted;
            text-style: bold;
            height: 1;
        }
        &> .body { height: auto; }
    }
    """

    def __init__(self, *, message_id: int | None = None, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.message_id = message_id


class UserMessage(MessageBlock):
    """What the user sent, shown as typed (less any escape sequences or controls).

    Args:
        text: The prompt, raw (kept in :attr:`text`).
        message_id: Its id in the store.
        images: The images sent with it, each drawn under the text (inline or as a
            card: :class:`~gemmatui.tui.widgets.attachments.ImageBlock`).
    """

    DEFAULT_CSS = """
    UserMessage {
        border-left: outer $accent;
        background: $boost;
    }
    """

    def __init__(
        self,
        text: str,
        *,
        message_id: int | None = None,
        images: Sequence[Attachment | StoredImage] = (),
    ) -> None:
        super().__init__(message_id=message_id)
        self.text = text
        #: The images sent with it, in order: bytes (:class:`Attachment`), or only their
        #: description (:class:`StoredImage`) when the file is missing from the data dir.
        self.images = tuple(images)

    @property
    def attachments(self) -> list[Attachment]:
        """The images that can be sent again with the history (the ones not missing)."""
        return [image for image in self.images if isinstance(image, Attachment)]

    def compose(self) -> ComposeResult:
        yield Static("You", classes="header", markup=False)
        yield Static(sanitize(self.text), classes="body", markup=False)
        for image in self.images:
            yield ImageBlock(image)


def header_variants(model: str, stats: ChatStats | None) -> list[Content]:
    """A reply's header, longest first: what a narrower column shows drops the model
    name first, then the token count, and keeps the rate.

    >>> s = ChatStats(eval_count=412, eval_duration_s=412 / 48.5)
    >>> [v.plain for v in header_variants("gemma3:4b-it-qat", s)]
    ['gemma3:4b-it-qat  412 tokens · 48.5 tok/s', '412 tokens · 48.5 tok/s', '48.5 tok/s']
    >>> [v.plain for v in header_variants("gemma3:4b-it-qat", None)]
    ['gemma3:4b-it-qat']
    """
    model = sanitize_line(model)  # a model name read back from the history
    rate = stats.eval_rate if stats else None
    if stats is None or not rate:
        return [Content(model)]
    figures = f"{stats.eval_count} tokens · {rate:.1f} tok/s"
    return [Content(f"{model}  {figures}"), Content(figures), Content(f"{rate:.1f} tok/s")]


class ReplyHeader(Widget):
    """A reply's one-line header (model, tokens, tok/s), shortened to fit its width.

    Args:
        model: The model that wrote the reply.
        stats: Ollama's final metrics, when known.
    """

    DEFAULT_CSS = """
    ReplyHeader { width: 1fr; height: 1; }
    """

    def __init__(self, model: str, stats: ChatStats | None, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.variants = header_variants(model, stats)

    def show(self, model: str, stats: ChatStats | None) -> None:
        """Show another model or final metrics."""
        self.variants = header_variants(model, stats)
        self.refresh()

    def render(self) -> Content:
        width = self.content_size.width
        return next((v for v in self.variants if v.cell_length <= width), self.variants[-1])


class AssistantMessage(MessageBlock, can_focus=True):
    """A reply from the model, rendered as Markdown (also while it streams in).

    A :class:`~gemmatui.tui.widgets.reply_stream.ReplyStream` writes a streaming
    reply into its Markdown view(s) and keeps :attr:`text` up to date with
    ``set_reactive``, so no watcher runs per token. :attr:`text` is the raw reply;
    the Markdown views get it sanitised. Focus a reply (click or Tab) to
    make it the one Ctrl+Y copies.

    Args:
        text: The reply so far (a saved reply when a conversation is restored).
        model: The model that wrote it (shown in the header).
        status: ``streaming`` while it arrives; ``partial`` (stopped by the user) and
            ``error`` (cut off by a failure) are marked in the view.
        stats: Ollama's final metrics, shown in the header when known.
        message_id: Its id in the store.
    """

    DEFAULT_CSS = """
    AssistantMessage {
        border-left: outer $secondary;
        &:focus { background: $boost; border-left: outer $primary; }
        &> MarkdownView { margin: 0 0 1 0; }
        &> .mark { color: $text-warning; text-style: italic; }
    }
    """

    text: var[str] = var("")
    status: reactive[ReplyStatus] = reactive("complete", init=False)

    def __init__(
        self,
        text: str = "",
        *,
        model: str,
        status: ReplyStatus = "complete",
        stats: ChatStats | None = None,
        message_id: int | None = None,
    ) -> None:
        super().__init__(message_id=message_id)
        self.model = model
        self.stats = stats
        self.set_reactive(AssistantMessage.text, text)
        self.set_reactive(AssistantMessage.status, status)

    def compose(self) -> ComposeResult:
        yield ReplyHeader(self.model, self.stats, classes="header")
        yield MarkdownView(sanitize(self.text), classes="body")
        if self.status == "streaming":
            yield StreamTail(classes="body")
        mark = Static(STATUS_MARKS.get(self.status, ""), classes="mark", markup=False)
        mark.display = self.status in STATUS_MARKS
        yield mark

    @property
    def markdown(self) -> MarkdownView:
        """The Markdown view the reply is rendered into (the last one, while streaming)."""
        return self.query_children(MarkdownView).last()

    @property
    def pieces(self) -> list[MarkdownView]:
        """The Markdown views of the reply, in order (a long streamed reply has several)."""
        return list(self.query_children(MarkdownView))

    @property
    def tail(self) -> StreamTail | None:
        """The plain-text tail of a streaming reply (``None`` when there is none)."""
        tails = self.query_children(StreamTail)
        return tails.first() if tails else None

    async def add_markdown(self) -> MarkdownView:
        """Add an empty Markdown view after the others (a long reply streams into several)."""
        markdown = MarkdownView(classes="body")
        await self.mount(markdown, after=self.markdown)
        return markdown

    async def remove_tail(self) -> None:
        """Remove the streaming tail (its text is in the Markdown by now)."""
        tail = self.tail
        if tail is not None:
            await tail.remove()

    def finish(self, status: ReplyStatus, stats: ChatStats | None, message_id: int | None) -> None:
        """The reply has ended: record how, and show its stats in the header."""
        self.stats = stats
        self.message_id = message_id
        self.status = status

    def watch_status(self, status: ReplyStatus) -> None:
        mark = self.query_one(".mark", Static)
        mark.update(STATUS_MARKS.get(status, ""))
        mark.display = status in STATUS_MARKS
        self.query_one(ReplyHeader).show(self.model, self.stats)


class ErrorMessage(MessageBlock):
    """A failure, in words (never a traceback), where it happened in the conversation.

    Args:
        text: What went wrong and, where possible, what to do (it may quote a
            server's words: shown sanitised).
        message_id: Its id in the store.
    """

    DEFAULT_CSS = """
    ErrorMessage {
        border-left: outer $error;
        &> .body { color: $text-error; }
    }
    """

    def __init__(self, text: str, *, message_id: int | None = None) -> None:
        super().__init__(message_id=message_id)
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static("Error", classes="header", markup=False)
        yield Static(sanitize(self.text), classes="body", markup=False)


class SystemPromptMessage(MessageBlock):
    """The conversation's system prompt, shown at the top (Ctrl+S edits it).

    Args:
        text: The system prompt.
    """

    DEFAULT_CSS = """
    SystemPromptMessage {
        border-left: outer $warning;
        &> .body { color: $text-muted; }
    }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static("System prompt", classes="header", markup=False)
        yield Static(sanitize(self.text), classes="body", markup=False)

    def set_text(self, text: str) -> None:
        """Show a changed system prompt."""
        self.text = text
        self.query_one(".body", Static).update(Content(sanitize(text)))
