"""The chat screen, driven with Pilot against the HTTP fake Ollama.

Every test runs the real :class:`GemmaApp` (saved model: the chat opens at start) with
its own config and data dir (``tests/tui/conftest.py``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from gemmatui.core.config import Settings
from gemmatui.core.storage import ConversationStore
from gemmatui.tui.app import GemmaApp
from gemmatui.tui.screens.chat import ChatScreen
from gemmatui.tui.screens.dialogs import ConfirmDialog
from gemmatui.tui.screens.models import ModelsScreen
from gemmatui.tui.widgets.edit_dialog import EditTextDialog
from gemmatui.tui.widgets.message import (
    AssistantMessage,
    ErrorMessage,
    SystemPromptMessage,
    UserMessage,
)
from gemmatui.tui.widgets.reply_stream import CUT_AFTER_CHARS, BlockCutter
from gemmatui.tui.widgets.token_panel import TokenPanel
from tests.fake_ollama import FakeOllama, closed_port_url
from tests.tui.chat_host import MODEL, NUM_CTX, shown_text, until
from tests.tui.conftest import SIZE, MakeApp

SETTINGS = Settings(model=MODEL, num_ctx=NUM_CTX, keep_alive="25m")
MARKDOWN_REPLY = (
    "## Quantisation\n\nQAT keeps **quality** at `Q4_0`:\n\n- smaller\n- faster\n\nDone."
)


def chat(app: GemmaApp) -> ChatScreen:
    screen = app.screen
    assert isinstance(screen, ChatScreen), f"expected the chat, got {screen!r}"
    return screen


async def open_chat(pilot: Pilot[int]) -> ChatScreen:
    """Wait for the chat the app opens at start (a model is saved)."""
    await until(pilot, lambda: isinstance(pilot.app.screen, ChatScreen))
    return chat(pilot.app)


async def send(pilot: Pilot[int], text: str) -> AssistantMessage:
    """Put ``text`` in the prompt and press Enter; returns the reply's block once it
    exists (the reply may still be streaming)."""
    screen = chat(pilot.app)
    screen.prompt.focus()
    screen.prompt.insert(text)
    await pilot.press("enter")
    worker = screen.reply_worker
    assert worker is not None
    await until(pilot, lambda: screen.reply is not None or worker.is_finished)
    return screen.reply or screen.query(AssistantMessage).last()


async def finished(pilot: Pilot[int], screen: ChatScreen) -> None:
    """Wait until the reply has ended (complete, stopped or failed) and is settled."""
    await until(pilot, lambda: screen.reply_worker is not None and screen.reply_worker.is_finished)
    await pilot.pause()


async def test_reply_streams_as_markdown_with_planned_context(make_app: MakeApp) -> None:
    """A reply streams into a Markdown block; the request carried num_ctx and keep_alive;
    the tokens panel shows Ollama's final eval rate; both messages are saved."""
    with FakeOllama(installed=["4b"], reply=MARKDOWN_REPLY, token_rate=400) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await send(pilot, "what is QAT?")
            await finished(pilot, screen)
            [block] = screen.messages_view.query(AssistantMessage)
            assert block.text == "".join(fake._tokens(None))
            assert block.markdown.source == block.text
            assert block.status == "complete"
            md = shown_text(block)
            assert "Quantisation" in md and "## " not in md  # rendered, not shown as source
            assert "•" in md and "smaller" in md and "**" not in md

            [request] = fake.chat_requests()
            assert request["options"]["num_ctx"] == NUM_CTX
            assert request["keep_alive"] == "25m"
            assert request["messages"] == [{"role": "user", "content": "what is QAT?"}]

            tokens = screen.query_one(TokenPanel)
            assert tokens.last is not None and tokens.last.eval_rate == pytest.approx(400.0)
            assert "400.0 tok/s" in shown_text(tokens)
            assert f"/ {NUM_CTX // 1024}k ctx" in shown_text(tokens)

            conv = app.store.last_conversation()
            assert conv is not None and conv.title == "what is QAT?"
            saved = [(m.role, m.content, m.status) for m in app.store.messages(conv.id)]
            assert saved == [
                ("user", "what is QAT?", "complete"),
                ("assistant", block.text, "complete"),
            ]
            assert app.store.messages(conv.id)[1].stats == tokens.last


async def test_a_long_reply_streams_into_several_markdown_pieces(make_app: MakeApp) -> None:
    """A reply longer than one piece is cut at paragraph boundaries: the pieces hold
    exactly the reply, each later one starts a new paragraph or heading (never inside a
    list or code), and every heading is rendered as one."""
    with FakeOllama(installed=["4b"], reply="\n\n" + MARKDOWN_REPLY, tokens=700) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            block = await send(pilot, "a long one")
            await finished(pilot, screen)
            expected = "".join(fake._tokens(None))
            assert block.text == expected and len(expected) > CUT_AFTER_CHARS
            pieces = block.pieces
            assert len(pieces) >= 2
            assert "".join(piece.source for piece in pieces) == expected
            for before, piece in zip(pieces, pieces[1:], strict=False):
                assert before.source.endswith("\n\n")
                assert piece.source[0] in "#QD"  # a heading or a paragraph, as in the reply
            drawn = "\n".join(piece.rendered_text for piece in pieces).splitlines()
            assert drawn.count("Quantisation") == expected.count("## Quantisation")
            assert not any(line.startswith("#") for line in drawn)


@pytest.mark.parametrize(
    ("parts", "cuts"),
    [
        (["aaaa\n\n", "bbbb"], [None, 0]),  # a new paragraph after a blank line
        (["aaaa\n", "\nbbbb"], [None, 1]),  # the blank line split across writes
        (["aaaa\n\n- item"], [None]),  # a list may continue the block before
        (["aaaa\n\n  indented"], [None]),
        (["aaaa\n\n2. item"], [None]),
        (["aaaa\n\n> quote"], [None]),
        (["```\naaaa\n\nbbbb\n"], [None]),  # a blank line inside code
        (["```\naaaa\n```\n\n# Next"], [14]),  # after the fence closes
        (["a\n\nb"], [None]),  # too short to cut yet
    ],
)
def test_block_cutter_cuts_only_between_independent_blocks(
    parts: list[str], cuts: list[int | None]
) -> None:
    """Cut points: the start of a line after a blank line, outside code fences, not a
    list item, indented line or quote, once the piece is long enough."""
    cutter = BlockCutter(cut_after=4)
    assert [cutter.feed(part) for part in parts] == cuts


async def test_markup_in_a_reply_is_shown_literally(make_app: MakeApp) -> None:
    """Console markup in the model's reply and in the user's prompt shows as typed."""
    reply = "Use [bold]x[/bold] and [link=https://example.com]y[/link] and [red]z"
    with FakeOllama(installed=["4b"], reply=reply) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await send(pilot, "say [b]hi[/b]")
            await finished(pilot, screen)
            text = shown_text(screen.messages_view)
            assert "[bold]x[/bold]" in text
            assert "[link=https://example.com]y[/link]" in text
            assert "[red]z" in text
            assert "say [b]hi[/b]" in text


async def test_escape_stops_and_keeps_the_partial_reply(make_app: MakeApp) -> None:
    """Esc mid-stream: the words that arrived stay in the view marked "(stopped)", are
    saved with status 'partial', and the connection to Ollama is closed."""
    with FakeOllama(installed=["4b"], tokens=400, token_rate=40) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            block = await send(pilot, "talk for a while")
            await until(pilot, lambda: len(block.text.split()) >= 5)
            await pilot.press("escape")
            await finished(pilot, screen)
            assert block.status == "partial"
            assert 5 <= len(block.text.split()) < 400
            assert block.markdown.source == block.text
            assert "(stopped)" in shown_text(block)
            assert fake.wait_for_disconnect(timeout=5)
            conv = app.store.last_conversation()
            assert conv is not None
            last = app.store.messages(conv.id)[-1]
            assert (last.role, last.status, last.content) == ("assistant", "partial", block.text)
            assert not screen.query(ErrorMessage)


async def test_quitting_mid_reply_saves_what_arrived(make_app: MakeApp) -> None:
    """Ctrl+Q while a reply streams asks first; "y": the app closes and the words that
    arrived are in the history, marked 'partial'."""
    with FakeOllama(installed=["4b"], tokens=400, token_rate=40) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            await open_chat(pilot)
            block = await send(pilot, "talk")
            await until(pilot, lambda: len(block.text.split()) >= 3)
            await pilot.press("ctrl+q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("y")
        conv = app.store.last_conversation()
        assert conv is not None
        last = app.store.messages(conv.id)[-1]
        assert (last.role, last.status) == ("assistant", "partial")
        assert len(last.content.split()) >= 3


async def test_restart_restores_the_last_conversation(make_app: MakeApp) -> None:
    """A new app on the same data dir shows the last conversation and continues it:
    the next request carries the earlier turns."""
    with FakeOllama(installed=["4b"], reply="First answer.") as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await send(pilot, "first")
            await finished(pilot, screen)

        again = make_app(fake.url, settings=SETTINGS)
        async with again.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await until(pilot, lambda: bool(screen.query(AssistantMessage)))
            assert [b.text for b in screen.query(UserMessage)] == ["first"]
            assert [b.text for b in screen.query(AssistantMessage)] == ["First answer."]
            assert screen.sub_title.endswith("· first")
            assert screen.query_one(TokenPanel).context > 0
            await send(pilot, "second")
            await finished(pilot, screen)
            assert [m["content"] for m in fake.chat_requests()[-1]["messages"]] == [
                "first",
                "First answer.",
                "second",
            ]
            conv = again.store.last_conversation()
            assert conv is not None and len(again.store.messages(conv.id)) == 4
            assert len(again.store.list_conversations()) == 1


async def test_ollama_dies_mid_reply_and_the_chat_works_when_it_is_back(make_app: MakeApp) -> None:
    """The server stops mid-reply: the partial reply stays, marked interrupted, the error
    is shown in words and saved; once a server answers again the next message works."""
    fake = FakeOllama(installed=["4b"], tokens=400, token_rate=40).start()
    port = fake.port
    app = make_app(fake.url, settings=SETTINGS)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            block = await send(pilot, "go on")
            await until(pilot, lambda: len(block.text.split()) >= 3)
            fake.stop()
            await finished(pilot, screen)
            assert block.status == "error"
            assert "(interrupted" in shown_text(block)
            [error] = screen.query(ErrorMessage)
            assert "connection to Ollama dropped" in error.text
            assert "Traceback" not in shown_text(screen)
            conv = app.store.last_conversation()
            assert conv is not None
            roles = [(m.role, m.status) for m in app.store.messages(conv.id)]
            assert roles == [("user", "complete"), ("assistant", "error"), ("error", "complete")]

            screen.prompt.insert("anyone?")  # nothing listens now
            await pilot.press("enter")
            await finished(pilot, screen)
            assert "cannot reach Ollama" in screen.query(ErrorMessage).last().text

            fake = FakeOllama(installed=["4b"], reply="Back again.", port=port).start()
            reply = await send(pilot, "hello again")
            await finished(pilot, screen)
            assert (reply.text, reply.status) == ("Back again.", "complete")
            history = fake.chat_requests()[-1]["messages"]
            assert [m["role"] for m in history] == ["user", "assistant", "user", "user"]
    finally:
        fake.stop()


async def test_sending_while_ollama_is_down_keeps_the_message(make_app: MakeApp) -> None:
    """Nothing listens: the user's message is saved and shown, the error says what to do."""
    app = make_app(closed_port_url(), settings=SETTINGS)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_chat(pilot)
        await pilot.press(*"hello?", "enter")
        await finished(pilot, screen)
        assert not screen.query(AssistantMessage)
        [error] = screen.query(ErrorMessage)
        assert "is Ollama running?" in error.text
        conv = app.store.last_conversation()
        assert conv is not None
        assert [m.role for m in app.store.messages(conv.id)] == ["user", "error"]


async def test_regenerate_replaces_the_last_reply(make_app: MakeApp) -> None:
    """Ctrl+R drops the last reply and asks again with the same history."""
    with FakeOllama(installed=["4b"], reply="An answer.") as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await send(pilot, "question")
            await finished(pilot, screen)
            first = screen.query_one(AssistantMessage)
            await pilot.press("ctrl+r")
            await until(
                pilot,
                lambda: screen.reply is not None or first not in screen.query(AssistantMessage),
            )
            await finished(pilot, screen)
            [block] = screen.query(AssistantMessage)
            assert block is not first and block.text == "An answer."
            requests = fake.chat_requests()
            assert len(requests) == 2 and requests[0]["messages"] == requests[1]["messages"]
            conv = app.store.last_conversation()
            assert conv is not None
            assert [m.role for m in app.store.messages(conv.id)] == ["user", "assistant"]


async def test_copy_reply_copies_the_focused_or_last_reply(make_app: MakeApp) -> None:
    """Ctrl+Y copies the last reply; with an earlier reply focused, that one."""
    with FakeOllama(installed=["4b"], reply="Reply text.") as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await send(pilot, "one")
            await finished(pilot, screen)
            fake.config.reply = "Second reply."
            await send(pilot, "two")
            await finished(pilot, screen)
            await pilot.press("ctrl+y")
            assert app.clipboard == "Second reply."
            screen.query(AssistantMessage).first().focus()
            await pilot.press("ctrl+y")
            assert app.clipboard == "Reply text."


async def test_prompt_keys_enter_sends_ctrl_j_newline_and_app_keys_type(make_app: MakeApp) -> None:
    """In the prompt q, r, m and ? type (the app's keys do not fire), Ctrl+J adds a
    line, Enter sends both lines."""
    with FakeOllama(installed=["4b"]) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await pilot.press(*"qrm?", "ctrl+j", *"second")
            assert screen.prompt.text == "qrm?\nsecond"
            assert app.screen is screen and app.is_running
            await pilot.press("enter")
            await finished(pilot, screen)
            assert screen.prompt.text == ""
            assert fake.chat_requests()[-1]["messages"][-1]["content"] == "qrm?\nsecond"


async def test_a_100_kb_paste_is_accepted_and_sent(make_app: MakeApp) -> None:
    """A 100 KB multi-line paste lands in the prompt whole and is sent whole."""
    text = "\n".join(f"line {i:05d} " + "x" * 90 for i in range(1000))
    assert len(text) >= 100_000
    with FakeOllama(installed=["4b"], reply="Got it.") as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            app.post_message(events.Paste(text))  # as the terminal driver delivers it
            await until(pilot, lambda: screen.prompt.text == text)
            await pilot.press("enter")
            await finished(pilot, screen)
            assert fake.chat_requests()[-1]["messages"][-1]["content"] == text
            conv = app.store.last_conversation()
            assert conv is not None and app.store.messages(conv.id)[0].content == text


async def test_system_prompt_belongs_to_the_conversation(make_app: MakeApp) -> None:
    """Ctrl+S sets this conversation's system prompt: it is shown, sent first and saved;
    a new conversation (Ctrl+N) starts without it."""
    with FakeOllama(installed=["4b"], reply="Ok.") as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await pilot.press("ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, EditTextDialog))
            app.screen.query_one(TextArea).text = "Answer in French."
            await pilot.press("ctrl+s")
            await until(pilot, lambda: app.screen is screen)
            assert screen.query_one(SystemPromptMessage).text == "Answer in French."
            await send(pilot, "hello")
            await finished(pilot, screen)
            assert fake.chat_requests()[-1]["messages"][0] == {
                "role": "system",
                "content": "Answer in French.",
            }
            conv = app.store.last_conversation()
            assert conv is not None and conv.system_prompt == "Answer in French."

            await pilot.press("ctrl+n")
            await until(pilot, lambda: not screen.query(UserMessage))
            assert not screen.query(SystemPromptMessage)
            await send(pilot, "hi")
            await finished(pilot, screen)
            assert fake.chat_requests()[-1]["messages"] == [{"role": "user", "content": "hi"}]
            assert len(app.store.list_conversations()) == 2


async def test_sidebar_resume_rename_and_delete(make_app: MakeApp) -> None:
    """Ctrl+B lists the conversations newest first; selecting one shows it; F2 renames;
    Delete asks first and then removes it."""
    with FakeOllama(installed=["4b"], reply="Ok.") as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await send(pilot, "older chat")
            await finished(pilot, screen)
            await pilot.press("ctrl+n")
            await send(pilot, "newer chat")
            await finished(pilot, screen)

            await pilot.press("ctrl+b")
            sidebar = screen.sidebar
            assert sidebar.display and sidebar.option_list.has_focus
            assert [c.title for c in sidebar.conversations] == ["newer chat", "older chat"]
            assert "older chat" in shown_text(sidebar)

            await pilot.press("down", "enter")  # resume the older one
            await until(
                pilot, lambda: [b.text for b in screen.query(UserMessage)] == ["older chat"]
            )
            assert screen.prompt.has_focus

            sidebar.option_list.focus()
            sidebar.option_list.highlighted = 1
            await pilot.press("f2")
            await until(pilot, lambda: isinstance(app.screen, EditTextDialog))
            app.screen.query_one(Input).value = "Renamed [b]chat[/b]"
            await pilot.press("enter")
            await until(pilot, lambda: app.screen is screen and screen.prompt.has_focus)
            older = screen.conversation
            assert older is not None and older.title == "Renamed [b]chat[/b]"
            assert "Renamed [b]chat[/b]" in shown_text(sidebar)
            assert screen.sub_title.endswith("Renamed [b]chat[/b]")

            sidebar.option_list.focus()
            await pilot.press("delete")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("n")  # changed my mind
            await until(pilot, lambda: app.screen is screen and screen.prompt.has_focus)
            assert len(app.store.list_conversations()) == 2
            sidebar.option_list.focus()
            await pilot.press("delete")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("y")
            await until(pilot, lambda: len(app.store.list_conversations()) == 1)
            assert app.store.get(older.id) is None
            assert screen.conversation is None and not screen.query(UserMessage)
            assert [c.title for c in sidebar.conversations] == ["newer chat"]

            await pilot.press("ctrl+b")
            assert not sidebar.display and screen.prompt.has_focus


async def test_export_writes_markdown_under_the_data_dir(make_app: MakeApp, tmp_path: Path) -> None:
    """Ctrl+E writes the conversation as Markdown to <data dir>/exports and says where."""
    with FakeOllama(installed=["4b"], reply=MARKDOWN_REPLY) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await pilot.press("ctrl+e")
            assert not (tmp_path / "data" / "exports").exists()  # nothing to export yet
            await send(pilot, "explain QAT")
            await finished(pilot, screen)
            await pilot.press("ctrl+e")
            [path] = (tmp_path / "data" / "exports").glob("*.md")
            assert path.name.endswith("-explain-qat.md")
            text = path.read_text(encoding="utf-8")
            assert text.startswith("# explain QAT\n")
            assert "## You\n\nexplain QAT\n" in text
            assert MARKDOWN_REPLY.replace(" ", "") in text.replace(" ", "")
            assert any(str(path) in n.message for n in app._notifications)


async def test_two_copies_of_the_app_share_the_history(make_app: MakeApp, tmp_path: Path) -> None:
    """Two apps open on the same data dir at once both save; nothing is lost."""
    with FakeOllama(installed=["4b"], reply="Ok.") as fake:
        first = make_app(fake.url, settings=SETTINGS)
        second = make_app(fake.url, settings=SETTINGS)
        async with first.run_test(size=SIZE) as p1, second.run_test(size=SIZE) as p2:
            s1, s2 = await open_chat(p1), await open_chat(p2)
            await send(p1, "from one")
            await send(p2, "from two")
            await finished(p1, s1)
            await finished(p2, s2)
        store = ConversationStore(tmp_path / "data")
        titles = sorted(c.title for c in store.list_conversations())
        assert titles == ["from one", "from two"]
        assert all(len(store.messages(c.id)) == 2 for c in store.list_conversations())
        store.close()


async def test_switching_model_mid_reply_saves_the_partial_reply(make_app: MakeApp) -> None:
    """Opening a chat with another model while a reply streams (Ctrl+O, Enter) pops the
    chat: the app keeps running, the words that arrived are saved as 'partial', and the
    new chat opens."""
    with FakeOllama(installed=["4b", "12b"], tokens=400, token_rate=40) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            block = await send(pilot, "talk for a while")
            await until(pilot, lambda: len(block.text.split()) >= 5)
            worker = screen.reply_worker
            assert worker is not None
            await pilot.press("ctrl+o")
            await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
            await pilot.press("down", "enter")  # 12B, the other installed model
            await until(pilot, lambda: worker.is_finished and isinstance(app.screen, ChatScreen))
            await pilot.pause()
            assert app.is_running and app.return_code is None
            new = chat(app)
            assert new is not screen and new.model == "gemma3:12b-it-qat"
            conv = screen.conversation
            assert conv is not None
            last = app.store.messages(conv.id)[-1]
            assert (last.role, last.status) == ("assistant", "partial")
            assert len(last.content.split()) >= 5
            assert fake.wait_for_disconnect(timeout=5)
        assert app.return_code in (None, 0)


async def test_an_unexpected_error_mid_reply_is_shown_and_the_text_saved(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (not an OllamaError) mid-stream does not crash the app: what arrived is
    saved, marked interrupted, and the error is shown inline."""
    from gemmatui.core.types import ChatChunk

    async def broken_chat(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        for word in ("Half ", "a ", "reply"):
            yield ChatChunk(content=word)
        raise ValueError("something unexpected")

    with FakeOllama(installed=["4b"]) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            monkeypatch.setattr(app.client, "chat", broken_chat)
            await send(pilot, "go")
            await finished(pilot, screen)
            assert app.is_running
            [block] = screen.query(AssistantMessage)
            assert (block.text, block.status) == ("Half a reply", "error")
            [error] = screen.query(ErrorMessage)
            assert "something unexpected" in error.text
            conv = app.store.last_conversation()
            assert conv is not None
            saved = [(m.role, m.status, m.content) for m in app.store.messages(conv.id)]
            assert saved[1] == ("assistant", "error", "Half a reply")
            assert saved[2][0] == "error"
        assert app.return_code in (None, 0)


async def test_regenerate_keeps_messages_another_copy_added(
    make_app: MakeApp, tmp_path: Path
) -> None:
    """Another copy of the app adds to the same conversation after this screen showed
    its reply: Ctrl+R here deletes only the reply this screen shows, and asks again with
    the history this screen shows, not the other copy's turns."""
    with FakeOllama(installed=["4b"], reply="An answer.") as fake:
        app = make_app(fake.url, settings=SETTINGS)
        other = ConversationStore(tmp_path / "data")
        try:
            async with app.run_test(size=SIZE) as pilot:
                screen = await open_chat(pilot)
                await send(pilot, "question")
                await finished(pilot, screen)
                conv = screen.conversation
                assert conv is not None
                theirs = [
                    other.add_message(conv.id, "user", "from the other copy"),
                    other.add_message(conv.id, "assistant", "their answer", model=MODEL),
                ]
                await pilot.press("ctrl+r")
                await until(pilot, lambda: len(fake.chat_requests()) == 2)
                await finished(pilot, screen)
                first, second = fake.chat_requests()
                assert second["messages"] == first["messages"]
                saved = [(m.id, m.role, m.content) for m in app.store.messages(conv.id)]
                assert [s[1:] for s in saved] == [
                    ("user", "question"),
                    ("user", "from the other copy"),
                    ("assistant", "their answer"),
                    ("assistant", "An answer."),
                ]
                assert [s[0] for s in saved[1:3]] == theirs
                [block] = screen.query(AssistantMessage)
                assert block.message_id == saved[-1][0]
        finally:
            other.close()


async def test_a_stopped_reply_still_counts_in_the_context_gauge(make_app: MakeApp) -> None:
    """A reply stopped with Esc has no final figures from Ollama, but it is sent back
    with the next request: the gauge adds an estimate (~4 characters a token) and says
    it is one."""
    with FakeOllama(installed=["4b"], tokens=400, token_rate=40) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            tokens = screen.query_one(TokenPanel)
            prompt = "x" * 400
            block = await send(pilot, prompt)
            await until(pilot, lambda: len(block.text) >= 40)
            await pilot.press("escape")
            await finished(pilot, screen)
            assert block.status == "partial"
            expected = (len(prompt) + len(block.text)) // 4
            assert tokens.context == pytest.approx(expected, abs=2)
            assert tokens.estimated
            assert f"≈{tokens.context:,} / 8k ctx" in shown_text(tokens)


# ---------------------------------------------------------------------- issue 9


async def test_the_context_is_lowered_to_the_models_maximum(make_app: MakeApp) -> None:
    """1B reads at most 32k: asked for 128k, the chat's title says "32k (model max)",
    the gauge's scale is 32k, requests carry num_ctx 32768, and a notification says so."""
    one_b = "gemma3:1b-it-qat"
    with FakeOllama(installed=["1b"], reply="Short.") as fake:
        app = make_app(fake.url, settings=Settings(model=one_b, num_ctx=131072))
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            assert screen.num_ctx == 32768 and screen.requested_ctx == 131072
            assert f"{one_b} · 32k (model max) context" in screen.sub_title
            await send(pilot, "hi")
            await finished(pilot, screen)
            [request] = fake.chat_requests()
            assert request["options"]["num_ctx"] == 32768
            tokens = screen.query_one(TokenPanel)
            assert tokens.num_ctx == 32768 and "/ 32k ctx" in shown_text(tokens)
            lowered = [n for n in app._notifications if n.title == "Context lowered"]
            assert len(lowered) == 1 and "128k" in lowered[0].message


async def test_a_model_within_its_maximum_keeps_the_context(make_app: MakeApp) -> None:
    """4B reads 128k: 128k is kept as asked, and nothing is said about it."""
    with FakeOllama(installed=["4b"]) as fake:
        app = make_app(fake.url, settings=Settings(model=MODEL, num_ctx=131072))
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            assert screen.num_ctx == 131072 and "128k context" in screen.sub_title
            assert "(model max)" not in screen.sub_title
            assert not [n for n in app._notifications if n.title == "Context lowered"]


async def test_ctrl_q_mid_reply_asks_and_no_keeps_streaming(make_app: MakeApp) -> None:
    """Ctrl+Q while a reply streams opens a confirmation; "n" closes it, the reply goes on
    and the prompt has the focus again."""
    with FakeOllama(installed=["4b"], tokens=400, token_rate=40) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            block = await send(pilot, "talk")
            await until(pilot, lambda: len(block.text.split()) >= 2)
            await pilot.press("ctrl+q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            assert "still streaming" in shown_text(app.screen)
            await pilot.press("n")
            await until(pilot, lambda: app.screen is screen and screen.prompt.has_focus)
            words = len(block.text.split())
            await until(pilot, lambda: len(block.text.split()) > words)
            assert app.is_running and screen.generating
            await pilot.press("escape")
            await finished(pilot, screen)
            await pilot.press("ctrl+q")  # nothing streams now: no question
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmDialog)
        assert app.return_code in (None, 0)


async def test_typing_q_in_the_conversation_list_never_quits(make_app: MakeApp) -> None:
    """A bare `q` is a letter on the chat screen: typed in the conversation list (Ctrl+B)
    mid-reply, "quick" neither quits nor asks; on the model screen `q` still quits."""
    with FakeOllama(installed=["4b"], tokens=400, token_rate=40) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            block = await send(pilot, "talk")
            await until(pilot, lambda: len(block.text.split()) >= 2)
            await pilot.press("ctrl+b")
            assert screen.sidebar.option_list.has_focus
            await pilot.press(*"quick")
            await pilot.pause()
            assert app.is_running and app.screen is screen and screen.generating
            await pilot.press("escape")
            await finished(pilot, screen)
            await pilot.press("ctrl+o")
            await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running)


async def test_focus_returns_to_the_prompt_after_a_dialog(make_app: MakeApp) -> None:
    """Esc on the rename dialog (opened from the conversation list) or the system prompt
    dialog: the prompt has the focus, so the next letters are typed there."""
    with FakeOllama(installed=["4b"], reply="Ok.") as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await send(pilot, "first")
            await finished(pilot, screen)
            await pilot.press("ctrl+b")
            await pilot.press("f2")
            await until(pilot, lambda: isinstance(app.screen, EditTextDialog))
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is screen and screen.prompt.has_focus)
            await pilot.press(*"quit")
            assert app.is_running and screen.prompt.text == "quit"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, EditTextDialog))
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is screen and screen.prompt.has_focus)


async def test_switching_model_mid_reply_keeps_the_partial_reply_in_view_and_history(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl+O, another model, mid-reply: the new chat shows the stopped reply, and the
    next request sends it as the assistant's turn (never [user, user]). The stream takes
    a moment to close when stopped (as a real connection may), so the old chat saves its
    reply only after the new chat has mounted."""
    from gemmatui.core.types import ChatChunk

    requests: list[tuple[str, list[dict[str, str]]]] = []

    async def slow_to_close_chat(  # type: ignore[no-untyped-def]
        model: str, messages: list[dict[str, str]], **kwargs: object
    ):
        requests.append((model, [dict(m) for m in messages]))
        if len(requests) > 1:
            yield ChatChunk(content="Going on.", done=True)
            return
        try:
            for i in range(10_000):
                yield ChatChunk(content=f"word{i} ")
                await asyncio.sleep(0.02)
        finally:
            await asyncio.sleep(0.3)  # closing the connection

    with FakeOllama(installed=["4b", "12b"]) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            monkeypatch.setattr(app.client, "chat", slow_to_close_chat)
            block = await send(pilot, "talk for a while")
            await until(pilot, lambda: len(block.text.split()) >= 5)
            await pilot.press("ctrl+o")
            await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
            await pilot.press("down", "enter")  # 12B
            await until(pilot, lambda: isinstance(app.screen, ChatScreen) and app.screen != screen)
            new = chat(app)
            conv = screen.conversation
            assert conv is not None
            await until(pilot, lambda: len(app.store.messages(conv.id)) == 2)
            await pilot.pause(0.1)
            saved = app.store.messages(conv.id)[-1]
            assert (saved.role, saved.status) == ("assistant", "partial")
            assert new.conversation is not None and new.conversation.id == conv.id
            [shown] = new.query(AssistantMessage)
            assert (shown.text, shown.status) == (saved.content, "partial")
            assert "(stopped)" in shown_text(shown)
            await send(pilot, "go on")
            await finished(pilot, new)
            assert requests[-1] == (
                "gemma3:12b-it-qat",
                [
                    {"role": "user", "content": "talk for a while"},
                    {"role": "assistant", "content": saved.content},
                    {"role": "user", "content": "go on"},
                ],
            )


async def test_a_missing_model_names_the_key_that_pulls_it(make_app: MakeApp) -> None:
    """The chat's model is not installed: the error names the app's own way to pull it
    (ctrl+o, Enter), not the CLI's `gemmatui pull`."""
    with FakeOllama(installed=["4b"]) as fake:
        settings = Settings(model="gemma3:27b-it-qat", num_ctx=NUM_CTX)
        app = make_app(fake.url, settings=settings)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            screen.prompt.insert("hello")
            await pilot.press("enter")
            await finished(pilot, screen)
            [error] = screen.query(ErrorMessage)
            assert "not installed" in error.text and "ctrl+o" in error.text
            assert "gemmatui pull" not in error.text


async def test_the_tokens_panel_says_a_reply_was_stopped(make_app: MakeApp) -> None:
    """Esc mid-reply: the tokens panel's live line says "Stopped" with the tokens that
    arrived, not "No reply yet"."""
    with FakeOllama(installed=["4b"], tokens=400, token_rate=40) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            block = await send(pilot, "talk")
            await until(pilot, lambda: len(block.text.split()) >= 4)
            await pilot.press("escape")
            await finished(pilot, screen)
            tokens = screen.query_one(TokenPanel)
            live = shown_text(tokens.query_one("#tok-live"))
            assert "No reply yet" not in live
            assert "Stopped" in live and f"{tokens.tokens} tokens" in live
