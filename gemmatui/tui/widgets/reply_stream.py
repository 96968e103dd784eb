"""Streaming a reply into its block at a cost that does not grow with the token rate
or the reply's length.

Textual's ``Markdown.get_stream`` parses the last top-level block again on every write
and replaces its widget, so each write is followed by a layout of the whole screen and
a repaint of the whole conversation view: measured at 30 tokens/s in a 140x40
terminal, a bare ``Markdown`` streaming app spends 45 % of a core, gemmatui spent 36 %
(``bench/bench_tui_rate.py``). A streamed reply is drawn here in two parts instead:

* **Settled blocks.** Text up to the last top-level block boundary (a line that starts
  a new paragraph or heading after a blank line, outside a code fence and not as part
  of a list, indented block or quote: :class:`BlockCutter`) no longer changes its
  rendering, so it is appended to a
  :class:`~gemmatui.tui.widgets.markdown_view.MarkdownView` (one widget, however many
  blocks) about once every :data:`SETTLE_INTERVAL` seconds, not once per write.
* **The tail.** The block still being written is shown as plain text in one
  :class:`~gemmatui.tui.widgets.message.StreamTail`. A write to it repaints that one
  widget; only when its wrapped height changes (a new line) is the screen laid out
  again. Its Markdown appears when the block is complete.

A long reply is written into a *series* of Markdown views: once the one being written
holds :data:`CUT_AFTER_CHARS` characters, the next settled block opens a new one, so
a settle draws at most that much text again. The finished ones no longer change and
keep their drawn lines. Such a cut point is a block boundary in CommonMark, so the
pieces render as the whole document would.

The reply is untrusted: each write goes through the reply's own
:class:`~gemmatui.core.text.Sanitizer` before the cutter, the tail and Markdown see
it, so an escape sequence split between two writes is still removed whole; the
block's ``text`` keeps the raw reply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gemmatui.core.text import Sanitizer
from gemmatui.tui.widgets.markdown_view import MarkdownView
from gemmatui.tui.widgets.message import AssistantMessage, StreamTail

#: Characters a Markdown view takes before the reply moves on to a new one.
CUT_AFTER_CHARS = 1500
#: Seconds between moves of complete blocks from the tail to Markdown: each one parses
#: and draws the piece being written again and lays the screen out, so it is done at
#: most this often, not at every block.
SETTLE_INTERVAL = 1.0
#: First characters of a line after a blank line that may continue the block before
#: it: indentation, list markers, ordered-list digits, block quotes.
_CONTINUES = frozenset(" \t-*+>0123456789")
_FENCES = ("```", "~~~")


class BlockCutter:
    """Finds where a Markdown text arriving in pieces may be cut into separate documents.

    Args:
        cut_after: Characters a piece must have before it may be cut.

    Example:
        >>> cutter = BlockCutter(cut_after=10)
        >>> cutter.feed("Intro line.\\n\\n") is None
        True
        >>> cutter.feed("Next paragraph.")
        0
        >>> cutter = BlockCutter(cut_after=10)
        >>> cutter.feed("```\\nlong code line\\n\\nstill code\\n```\\n\\n- item") is None
        True
    """

    def __init__(self, cut_after: int = CUT_AFTER_CHARS) -> None:
        self.cut_after = cut_after
        self.size = 0  # characters in the current piece
        self.lead = ""  # the current line's first non-blank characters (three at most)
        self.at_line_start = True
        self.blank_before = False  # the last complete line was blank
        self.in_fence = False

    def feed(self, text: str) -> int | None:
        """Consume ``text``; return the offset where a new piece should start, if any.

        When an offset is returned, the text before it has been consumed and a new
        piece has begun; pass the rest (``text[offset:]``) to :meth:`feed` again.
        """
        for offset, char in enumerate(text):
            if self.at_line_start and char != "\n":
                if self._may_cut(char):
                    self.size = 0
                    self.blank_before = False
                    return offset
                self.at_line_start = False
            self.size += 1
            if char == "\n":
                self._end_line()
            elif len(self.lead) < 3 and (self.lead or not char.isspace()):
                self.lead += char
        return None

    def _may_cut(self, first: str) -> bool:
        return (
            self.blank_before
            and not self.in_fence
            and self.size >= self.cut_after
            and first not in _CONTINUES
        )

    def _end_line(self) -> None:
        if self.lead.startswith(_FENCES):
            self.in_fence = not self.in_fence
        self.blank_before = not self.lead
        self.lead = ""
        self.at_line_start = True


class ReplyStream:
    """Writes a streamed reply into an :class:`AssistantMessage`: settled blocks as
    Markdown, the block being written as plain text (see the module's documentation).

    Writes may come from a timer and from the worker that ends the reply; a lock keeps
    them in order. Use one instance per reply: its sanitiser carries an escape
    sequence left open from one write to the next.

    Args:
        block: The reply's block (composed with ``status="streaming"``, so it has a
            :class:`StreamTail`); its (empty) Markdown view is written to first.
        cut_after: Characters per Markdown view before the next one is opened.
        settle_interval: Seconds between moves of complete blocks to Markdown.
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        block: AssistantMessage,
        *,
        cut_after: int = CUT_AFTER_CHARS,
        settle_interval: float = SETTLE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.block = block
        self.cut_after = cut_after
        self.settle_interval = settle_interval
        self.clock = clock
        self._settled_at = clock()
        #: Finds where each top-level block ends (every boundary, however short).
        self.boundaries = BlockCutter(cut_after=0)
        self.sanitizer = Sanitizer()
        #: Finds where the Markdown view being written is full (see the module).
        self.pieces = BlockCutter(cut_after)
        self.markdown: MarkdownView = block.markdown
        #: Sanitised complete blocks not yet moved to Markdown (shown in the tail).
        self.ready = ""
        #: Sanitised text of the block being written (shown in the tail, after ``ready``).
        self.tail_text = ""
        self._lock = asyncio.Lock()

    @property
    def tail(self) -> StreamTail | None:
        """The block's plain-text tail (``None`` once the reply is settled)."""
        return self.block.tail

    async def write(self, text: str) -> None:
        """Append ``text`` to the reply.

        The block's ``text`` gets ``text`` as it is; the view only its sanitised part
        (a sequence still open at its end goes on being removed in the next write).
        Complete blocks go to Markdown in one append, at most once every
        ``settle_interval`` seconds; until then, and for the rest, the tail shows them.
        """
        async with self._lock:
            self.block.set_reactive(AssistantMessage.text, self.block.text + text)
            text = self.sanitizer.feed(text)
            while text:
                cut = self.boundaries.feed(text)
                if cut is None:
                    self.tail_text += text
                    break
                self.ready += self.tail_text + text[:cut]
                self.tail_text, text = "", text[cut:]
            with self.block.app.batch_update():  # the tail and the Markdown in one frame
                now = self.clock()
                if self.ready and now - self._settled_at >= self.settle_interval:
                    self._settled_at = now
                    ready, self.ready = self.ready, ""
                    await self._settle(ready)
                tail = self.tail
                if tail is not None:
                    tail.show(self.ready + self.tail_text)

    async def _settle(self, text: str) -> None:
        """Append complete blocks to the Markdown, opening a new piece where one is full."""
        while text:
            cut = self.pieces.feed(text)
            head, text = (text, "") if cut is None else (text[:cut], text[cut:])
            if head:
                self.markdown.append(head)
            if cut is not None:
                self.markdown = await self.block.add_markdown()

    async def stop(self) -> None:
        """Render the block still being written as Markdown and remove the tail."""
        async with self._lock:
            text, self.ready, self.tail_text = self.ready + self.tail_text, "", ""
            with self.block.app.batch_update():
                if text:
                    await self._settle(text)
                await self.block.remove_tail()
