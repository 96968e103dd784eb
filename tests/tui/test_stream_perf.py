"""A streamed reply drawn cheaply stays correct (issue #11).

A reply streams into settled Markdown blocks and a plain-text tail
(:mod:`gemmatui.tui.widgets.reply_stream`): these tests check that nothing is lost,
doubled or reordered on the way, that the tail lays the screen out only when its
height must change, that blocks move to Markdown no more often than the settle
interval, and that keys (typing, Esc) are handled while a reply streams fast.
"""

from __future__ import annotations

from textual.app import App, ComposeResult

from gemmatui.core.config import Settings
from gemmatui.tui.widgets.message import TAIL_SLACK, AssistantMessage, StreamTail
from gemmatui.tui.widgets.reply_stream import ReplyStream
from tests.fake_ollama import FakeOllama
from tests.tui.chat_host import MODEL, NUM_CTX, shown_text, until
from tests.tui.conftest import SIZE, MakeApp
from tests.tui.test_chat import finished, open_chat, send

SETTINGS = Settings(model=MODEL, num_ctx=NUM_CTX)
#: Headings, paragraphs, a list, a code fence with a blank line inside, an ordered
#: list; it starts with a blank line so that each cycle starts a new block.
DOCUMENT = """

## Part

Zephyrus keeps **most of the quality** at `Q4_0`, so the big model fits.

- one item
- another item

```python
def f(x):

    return x * 2
```

1. pull
2. chat

"""


async def test_a_fast_long_reply_is_shown_exactly_as_sent(make_app: MakeApp) -> None:
    """1,500 tokens as fast as the fake can send them: the Markdown pieces hold
    exactly the text sent, in order; every heading and fence is rendered as one; the
    tail is gone and the last words are on screen."""
    with FakeOllama(installed=["4b"], reply=DOCUMENT, tokens=1500) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            block = await send(pilot, "a long one")
            await finished(pilot, screen)
            sent = "".join(fake._tokens(None))
            assert block.text == sent
            pieces = block.pieces
            assert len(pieces) >= 2
            assert "".join(piece.source for piece in pieces) == sent
            assert block.tail is None and not block.query(StreamTail)
            drawn = "\n".join(piece.rendered_text for piece in pieces).splitlines()
            assert drawn.count("Part") == sent.count("## Part")  # headings, drawn as such
            assert not any(line.startswith(("##", "```")) for line in drawn)
            assert sum("def f(x):" in line for line in drawn) == sent.count("```python")
            screen.messages_view.scroll_end(animate=False)
            await pilot.pause()
            last_words = sent.split()[-2:]
            shown = shown_text(screen.messages_view)
            assert all(word.strip("`*") in shown for word in last_words)


async def test_keys_are_handled_while_a_reply_streams_fast(make_app: MakeApp) -> None:
    """At 200 tokens/s, letters typed go into the prompt while the reply is still
    streaming, and Esc then stops it at once: what arrived is shown and saved."""
    with FakeOllama(installed=["4b"], reply=DOCUMENT, tokens=4000, token_rate=200) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            block = await send(pilot, "talk fast")
            await until(pilot, lambda: len(block.text) > 200)
            await pilot.press("x", "y")
            await pilot.pause()
            assert screen.prompt.text == "xy"
            assert screen.generating and block.status == "streaming"
            assert not screen.prompt.cursor_blink  # steady while it streams
            await pilot.press("escape")
            await until(pilot, lambda: not screen.generating, timeout=2.0)
            await finished(pilot, screen)
            assert block.status == "partial"
            assert len(block.text) < len("".join(fake._tokens(None)))
            assert "".join(p.source for p in block.pieces) == block.text
            assert screen.prompt.cursor_blink
            conv = app.store.last_conversation()
            assert conv is not None
            assert app.store.messages(conv.id)[-1].content == block.text


class _TailHost(App[None]):
    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self.clock = clock

    def compose(self) -> ComposeResult:
        yield StreamTail(clock=lambda: self.clock[0])


async def test_the_tail_lays_out_only_when_its_height_must_change() -> None:
    """New text in the tail repaints it; the screen is laid out again only when the
    text outgrows the blank lines kept below it, and the step grows while lines come
    fast."""
    clock = [100.0]
    app = _TailHost(clock)
    async with app.run_test(size=(40, 30)) as pilot:
        tail = app.query_one(StreamTail)
        requests: list[bool] = []
        refresh = tail.refresh

        def spy(*regions: object, **kwargs: bool) -> object:
            requests.append(bool(kwargs.get("layout")))
            return refresh(*regions, **kwargs)  # type: ignore[arg-type]

        tail.refresh = spy  # type: ignore[method-assign]
        layouts: list[bool] = []  # per show(): whether it asked for a layout

        async def show(text: str) -> None:
            requests.clear()
            tail.show(text)
            layouts.append(any(requests))
            await pilot.pause()

        await show("one")
        assert layouts == [True] and tail.size.height == 1 + TAIL_SLACK
        lines = ["one"]
        for n in range(2, 2 + TAIL_SLACK):  # fills the blank lines: repaints only
            lines.append(f"line {n}")
            await show("\n".join(lines))
        assert layouts == [True] + [False] * TAIL_SLACK
        assert tail.size.height == 1 + TAIL_SLACK
        clock[0] += 0.5  # outgrown half a second after the last step: a bigger step
        lines.append("one more")
        await show("\n".join(lines))
        assert layouts[-1] is True
        assert tail.size.height == len(lines) + 2 * TAIL_SLACK
        assert tail.text == "\n".join(lines)
        requests.clear()
        tail.show("\n".join(lines) + "\n\n")  # trailing blank lines: nothing to draw
        assert requests == []


class _ReplyHost(App[None]):
    def compose(self) -> ComposeResult:
        yield AssistantMessage(model=MODEL, status="streaming")


async def test_complete_blocks_move_to_markdown_at_most_once_per_interval() -> None:
    """Complete blocks wait in the tail until the settle interval has passed; the
    block being written stays in the tail; stop() moves the rest and removes it."""
    clock = [0.0]
    app = _ReplyHost()
    async with app.run_test(size=SIZE) as pilot:
        block = app.query_one(AssistantMessage)
        stream = ReplyStream(block, settle_interval=1.0, clock=lambda: clock[0])
        markdown = block.markdown
        await stream.write("First paragraph.\n\nSecond")
        assert markdown.source == ""  # complete, but too soon
        assert block.tail is not None and block.tail.text == "First paragraph.\n\nSecond"
        clock[0] = 1.5
        await stream.write(" paragraph.\n\nThird")
        assert markdown.source == "First paragraph.\n\nSecond paragraph.\n\n"
        assert block.tail.text == "Third"
        clock[0] = 1.8
        await stream.write(" one.\n\nFourth")
        assert markdown.source.endswith("Second paragraph.\n\n")  # not yet: 0.3 s later
        await stream.stop()
        await pilot.pause()
        assert markdown.source == block.text
        assert block.tail is None
        assert "Fourth" in shown_text(block)
