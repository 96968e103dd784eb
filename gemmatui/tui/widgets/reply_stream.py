"""Streaming a reply into its block with Textual's ``Markdown.get_stream``, keeping the
cost of a frame from growing with the reply.

``MarkdownStream`` makes each append cheap (only the last top-level block is parsed
again), but every frame that follows still lays the Markdown widget out again, and
with it every block of the reply so far. So a long reply is written into a *series*
of Markdown widgets (:class:`~gemmatui.tui.widgets.message.ReplyMarkdown`). Once the
one being written holds :data:`CUT_AFTER_CHARS` characters, the next paragraph that
starts after a blank line, outside a code fence and not as part of a list, indented
block or quote, opens a new one. The finished ones no longer change, so Textual keeps
their layout cached and a frame lays out only the piece being written. Such a cut
point is a block boundary in CommonMark, so the pieces render as the whole document
would.

The reply is untrusted: each write goes through the reply's own
:class:`~gemmatui.core.text.Sanitizer` before the cutter and Markdown see it, so an
escape sequence split between two writes is still removed whole; the block's
``text`` keeps the raw reply.

Measured headless (4,000 tokens of Markdown at 200 tokens/s, 120x36): a frame's
layout took 160 ms in one Markdown widget and 106 ms in pieces of 3,000 characters.
"""

from __future__ import annotations

import asyncio

from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownStream

from gemmatui.core.text import Sanitizer
from gemmatui.tui.widgets.message import AssistantMessage

#: Characters a Markdown widget takes before the reply moves on to a new one.
CUT_AFTER_CHARS = 3000
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
    """Writes a streamed reply into an :class:`AssistantMessage` through ``Markdown.get_stream``.

    Writes may come from a timer and from the worker that ends the reply; a lock keeps
    them in order (a cut swaps the stream in the middle of a write). Use one instance
    per reply: its sanitiser carries an escape sequence left open from one write to
    the next.

    Args:
        block: The reply's block; its (empty) Markdown widget is written to first.
        cut_after: Characters per Markdown widget before a cut is looked for.
    """

    def __init__(self, block: AssistantMessage, *, cut_after: int = CUT_AFTER_CHARS) -> None:
        self.block = block
        self.cutter = BlockCutter(cut_after)
        self.sanitizer = Sanitizer()
        self.stream: MarkdownStream = Markdown.get_stream(block.markdown)
        self._lock = asyncio.Lock()

    async def write(self, text: str) -> None:
        """Append ``text`` to the reply, moving on to a new Markdown widget where it may.

        The block's ``text`` gets ``text`` as it is; the Markdown only its sanitised
        part (a sequence still open at its end goes on being removed in the next write).
        """
        async with self._lock:
            self.block.set_reactive(AssistantMessage.text, self.block.text + text)
            text = self.sanitizer.feed(text)
            while text:
                cut = self.cutter.feed(text)
                head, text = (text, "") if cut is None else (text[:cut], text[cut:])
                await self.stream.write(head)
                if cut is not None:
                    following = await self.block.add_markdown()
                    await self.stream.stop()
                    self.stream = Markdown.get_stream(following)

    async def stop(self) -> None:
        """Render whatever is still pending, then stop."""
        async with self._lock:
            await self.stream.stop()
