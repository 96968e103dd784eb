"""Untrusted text never drives the terminal (issue 9, item 1).

A model's reply (and a server's error, and what the user pasted) may carry escape
sequences: ``ESC ] 52`` writes the clipboard, ``ESC ] 0`` the window title,
``ESC [ 2 J`` wipes the screen, ``U+009B`` is an 8-bit CSI, ``U+202E`` reverses what
follows. These tests run the real app against the HTTP fake Ollama and look at the
*bytes* the app writes to its terminal: Textual's headless driver writes nothing, so
:class:`RecordingDriver` is put in its place, a headless driver that lets the app
render as it would on a real terminal and keeps what it writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.drivers import headless_driver

from gemmatui.core.config import Settings
from gemmatui.tui.app import GemmaApp
from gemmatui.tui.screens.chat import ChatScreen
from gemmatui.tui.widgets.message import AssistantMessage, ErrorMessage, UserMessage
from gemmatui.tui.widgets.reply_stream import ReplyStream
from tests.fake_ollama import FakeOllama
from tests.tui.chat_host import MODEL, NUM_CTX, shown_text, until
from tests.tui.conftest import SIZE, MakeApp

SETTINGS = Settings(model=MODEL, num_ctx=NUM_CTX)

CLIPBOARD = "\x1b]52;c;UFdORUQ=\x07"  # OSC 52: put "PWNED" on the clipboard
TITLE = "\x1b]0;PWNED title\x07"  # OSC 0: the window title (two words: two tokens)
TITLE_ST = "\x1b]2;PWNED title\x1b\\"  # the same, ended by ST
WIPE = "\x1b[2J\x1b[H"  # CSI: clear the screen, cursor home
CSI_8BIT = "\x9b2J"  # U+009B: an 8-bit CSI that clears the screen
BIDI = "\u202e"  # right-to-left override
#: The reply's words, one sequence in each (the fake sends a reply word by word).
REPLY = (
    f"Safe start. {CLIPBOARD}clip {TITLE} title {TITLE_ST} wipe{WIPE} c1{CSI_8BIT} "
    f"bidi:{BIDI}txt.gnp [b]markup[/b] Safe end."
)
#: The reply as shown and copied.
SHOWN = "Safe start. clip  title  wipe c1 bidi:\ufffdtxt.gnp [b]markup[/b] Safe end."
PROMPT = f"hello {TITLE}there"
ERROR = f"model crashed {TITLE}{WIPE}badly"

#: What must never reach the terminal, the clipboard or an export.
FORBIDDEN = ("\x1b]52", "UFdORUQ", "PWNED", "\x1b]0;", "\x1b]2;", "\x1b[2J", "\x9b", BIDI)


class RecordingDriver(headless_driver.HeadlessDriver):
    """A headless driver that the app renders to as to a terminal; it keeps every write.

    Textual skips rendering for a headless driver (``App._display``), so this one says
    it is not headless; it still never touches the real terminal.
    """

    written: list[str] = []  # every RecordingDriver's writes, in order (reset per test)

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        RecordingDriver.written.append(data)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """What the apps of the test write to their terminal (``run_test`` uses this driver)."""
    RecordingDriver.written = []
    monkeypatch.setattr(headless_driver, "HeadlessDriver", RecordingDriver)
    yield RecordingDriver.written


def assert_clean(text: str, where: str) -> None:
    """``text`` carries no part of a hostile sequence (nor any other ESC-less control)."""
    for bad in FORBIDDEN:
        assert bad not in text, f"{bad!r} reached {where}"


async def test_hostile_reply_never_reaches_terminal_clipboard_or_export(
    make_app: MakeApp, terminal: list[str], tmp_path: Path
) -> None:
    """A reply, a prompt and a server error carrying escape sequences are shown (and
    copied, exported, restored from the history) without them: the bytes the app
    writes contain none; the history keeps the raw text."""
    with FakeOllama(installed=["4b"], reply=REPLY, token_rate=200) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ChatScreen))
            screen = app.screen
            assert isinstance(screen, ChatScreen)
            # Sent in one go: the prompt's editor (a TextArea) is not drawn with it (what
            # the user types is theirs; what the app shows back of it is the point).
            screen.prompt.load_text(PROMPT)
            screen.action_send()
            await until(pilot, lambda: bool(screen.query(AssistantMessage)))
            await until(pilot, lambda: not screen.generating)
            fake.add_fault("/api/chat", "error_line", after=1, message=ERROR)
            screen.prompt.insert("again")
            await pilot.press("enter")
            await until(pilot, lambda: bool(screen.query(ErrorMessage)))
            await pilot.press("ctrl+b")  # the sidebar lists the (hostile) title
            await pilot.pause()
            await pilot.pause()

            [reply, _] = screen.query(AssistantMessage)
            assert reply.text == REPLY  # the raw reply, as the model reads it back
            written = "".join(terminal)
            assert "Safe start." in written and "[b]markup[/b]" in written  # it was drawn
            assert_clean(written, "the terminal")
            shown = shown_text(screen)
            assert_clean(shown, "the screen")
            assert "Safe start." in shown and "Safe end." in shown
            assert "[b]markup[/b]" in shown  # text, never Textual markup
            assert "bidi:\ufffdtxt.gnp" in shown  # the override shows as what it was

            reply.focus()
            await pilot.press("ctrl+y")
            assert app.clipboard == SHOWN
            assert_clean(app.clipboard, "the clipboard")
            await pilot.press("ctrl+e")
            [export] = (tmp_path / "data" / "exports").glob("*.md")
            exported = export.read_text(encoding="utf-8")
            assert "Safe start." in exported and "model crashed" in exported
            assert_clean(exported, "the export")
            assert "\x1b" not in exported

            conv = app.store.last_conversation()
            assert conv is not None and "\x1b]0;PWNED title\x07" in conv.title
            stored = [m.content for m in app.store.messages(conv.id)]
            assert stored[:2] == [PROMPT, REPLY]  # the history keeps the raw text
            assert any("model crashed" in text for text in stored[2:])
            # An error saved raw (by an older version, or quoting an exception's text).
            app.store.add_message(conv.id, "error", f"stored: {ERROR}")

        # The same conversation restored from the history at the next start.
        terminal.clear()
        again: GemmaApp = make_app(fake.url, settings=SETTINGS)
        async with again.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(again.screen, ChatScreen))
            screen = again.screen
            await until(pilot, lambda: len(screen.query(AssistantMessage)) == 2)
            await until(pilot, lambda: len(screen.query(ErrorMessage)) == 2)
            assert screen.query_one(UserMessage).text == PROMPT
            await pilot.press("ctrl+b")
            await pilot.pause()
            await pilot.pause()
            written = "".join(terminal)
            assert "Safe start." in written and "stored: model crashed" in written
            assert_clean(written, "the terminal (restored conversation)")


class _ReplyHost(App[None]):
    def compose(self) -> ComposeResult:
        yield AssistantMessage(model=MODEL, status="streaming")


async def test_a_sequence_split_between_writes_is_removed_whole(terminal: list[str]) -> None:
    """The stream's sanitiser carries a sequence over from one write to the next."""
    app = _ReplyHost()
    async with app.run_test(size=SIZE) as pilot:
        block = app.query_one(AssistantMessage)
        stream = ReplyStream(block)
        for piece in ("one \x1b]0;PWN", "ED title", "\x07two \x1b", "[2Jthree \x9b", "2Jfour"):
            await stream.write(piece)
        await stream.stop()
        await pilot.pause()
        assert block.text == "one \x1b]0;PWNED title\x07two \x1b[2Jthree \x9b2Jfour"
        assert block.markdown.source == "one two three four"
        written = "".join(terminal)
        assert "one two three four" in written
        assert_clean(written, "the terminal")


async def test_pasted_text_and_prefilled_dialogs_are_never_drawn_raw(
    make_app: MakeApp, terminal: list[str]
) -> None:
    """A pasted document with escape sequences lands in the prompt without them; the
    rename dialog, prefilled from a stored (hostile) title, draws it clean."""
    from textual import events

    from gemmatui.tui.widgets.edit_dialog import EditTextDialog

    with FakeOllama(installed=["4b"], reply="ok", token_rate=200) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ChatScreen))
            screen = app.screen
            assert isinstance(screen, ChatScreen)
            screen.prompt.focus()
            screen.prompt.post_message(events.Paste(f"pasted {CLIPBOARD}doc{WIPE} end"))
            await until(pilot, lambda: "doc" in screen.prompt.text)
            assert screen.prompt.text == "pasted doc end"
            await pilot.pause()
            app.push_screen(EditTextDialog("Rename", f"title {TITLE}{CSI_8BIT}x"))
            await pilot.pause()
            await pilot.pause()
            assert isinstance(app.screen, EditTextDialog)
            assert app.screen.value == "title x"
            assert_clean("".join(terminal), "the terminal")
