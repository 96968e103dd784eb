"""Images in the chat: attach (Ctrl+A and a path prompt, or a pasted path), remove,
send the exact bytes, refuse early in one line with the prompt kept, count them in the
context, and get them back (shown and sent again) after a restart.

Every test draws images as cards (``GEMMATUI_IMAGES=card``): what a terminal can draw
inline is not known under Pilot.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot

from gemmatui.core.config import Settings
from gemmatui.core.images import IMAGE_TOKENS, MAX_IMAGE_BYTES
from gemmatui.tui.app import GemmaApp
from gemmatui.tui.screens.chat import ChatScreen
from gemmatui.tui.widgets.attach_dialog import AttachDialog, PathInput
from gemmatui.tui.widgets.attachments import (
    AttachmentBar,
    AttachmentChip,
    ImageBlock,
    complete_path,
    pasted_paths,
)
from gemmatui.tui.widgets.message import UserMessage
from gemmatui.tui.widgets.token_panel import TokenPanel
from tests.fake_ollama import FakeOllama
from tests.tui.chat_host import MODEL, NUM_CTX, shown_text, until
from tests.tui.conftest import SIZE, MakeApp
from tests.unit.test_images import make_gif, make_png

SETTINGS = Settings(model=MODEL, num_ctx=NUM_CTX, keep_alive="25m")
TEXT_ONLY = Settings(model="gemma3:1b-it-qat", num_ctx=NUM_CTX, keep_alive="25m")


@pytest.fixture(autouse=True)
def cards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMMATUI_IMAGES", "card")


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    """A folder with a PNG, a GIF, a text file named .png, and a file with a space."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "cat.png").write_bytes(make_png(640, 480, seed=1))
    (folder / "dog.gif").write_bytes(make_gif(2, 3))
    (folder / "notes.png").write_text("not an image at all\n")
    (folder / "my shot.png").write_bytes(make_png(8, 8, seed=2))
    return folder


def chat(app: GemmaApp) -> ChatScreen:
    screen = app.screen
    assert isinstance(screen, ChatScreen), f"expected the chat, got {screen!r}"
    return screen


async def open_chat(pilot: Pilot[Any]) -> ChatScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, ChatScreen))
    return chat(pilot.app)


async def attach_by_key(pilot: Pilot[Any], path: str) -> None:
    """Ctrl+A, type the path into the prompt that opens, Enter."""
    await pilot.press("ctrl+a")
    await until(pilot, lambda: isinstance(pilot.app.screen, AttachDialog))
    field = pilot.app.screen.query_one(PathInput)
    field.value = path
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, ChatScreen))
    await pilot.pause()


async def paste(pilot: Pilot[Any], screen: ChatScreen, text: str) -> None:
    screen.prompt.focus()
    screen.prompt.post_message(events.Paste(text))
    await pilot.pause()
    await pilot.pause()


async def type_prompt(pilot: Pilot[Any], screen: ChatScreen, text: str) -> None:
    screen.prompt.focus()
    screen.prompt.insert(text)
    await pilot.pause()


async def finished(pilot: Pilot[Any], screen: ChatScreen) -> None:
    await until(pilot, lambda: screen.reply_worker is not None and screen.reply_worker.is_finished)
    await pilot.pause()


def notices(app: GemmaApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_attach_by_key_remove_and_send_the_exact_bytes(
    make_app: MakeApp, pictures: Path
) -> None:
    """Ctrl+A and a path attach a chip (name, W×H, size); a click on a chip removes it;
    Enter sends the text with the remaining image's exact bytes, shows it as a card in
    the conversation, saves it and empties the row."""
    with FakeOllama(installed=["4b"], token_rate=400) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await attach_by_key(pilot, str(pictures / "cat.png"))
            await attach_by_key(pilot, str(pictures / "dog.gif"))
            bar = screen.query_one(AttachmentBar)
            assert [a.name for a in bar.attachments] == ["cat.png", "dog.gif"]
            assert bar.display and bar.tokens == 2 * IMAGE_TOKENS
            row = shown_text(bar)
            assert "cat.png · 640×480 ·" in row and "dog.gif · 2×3 ·" in row
            assert f"2 images · +{2 * IMAGE_TOKENS} tokens" in row

            dog = bar.query(AttachmentChip).last()
            await pilot.click(dog)
            await pilot.pause()
            assert [a.name for a in bar.attachments] == ["cat.png"]
            assert "dog.gif" not in shown_text(bar)

            await type_prompt(pilot, screen, "what is in the picture?")
            await pilot.press("enter")
            await finished(pilot, screen)

            assert fake.received_images() == [(pictures / "cat.png").read_bytes()]
            [request] = fake.chat_requests()
            assert request["messages"][-1]["content"] == "what is in the picture?"
            assert not bar.attachments and not bar.display
            [user] = screen.messages_view.query(UserMessage)
            [block] = user.query(ImageBlock)
            assert not block.inline
            assert "▣ cat.png · 640×480 ·" in shown_text(user)

            conv = app.store.last_conversation()
            assert conv is not None
            [saved] = app.store.messages(conv.id)[0].images
            assert (saved.name, saved.width, saved.height) == ("cat.png", 640, 480)


async def test_a_focused_chip_is_removed_with_delete(make_app: MakeApp, pictures: Path) -> None:
    with FakeOllama(installed=["4b"]) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await attach_by_key(pilot, str(pictures / "cat.png"))
            bar = screen.query_one(AttachmentBar)
            bar.query_one(AttachmentChip).focus()
            await pilot.press("delete")
            await pilot.pause()
            assert bar.attachments == [] and not bar.display
            assert fake.chat_requests() == []


async def test_a_pasted_path_becomes_an_attachment_not_text(
    make_app: MakeApp, pictures: Path
) -> None:
    """A dropped file (quoted, or as a file:// URI with %20) is attached; the typed text
    stays as it was, without the path in it."""
    with FakeOllama(installed=["4b"]) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await type_prompt(pilot, screen, "compare ")
            await paste(pilot, screen, f"'{pictures / 'my shot.png'}' ")
            uri = (pictures / "dog.gif").as_uri()
            assert "%20" in (pictures / "my shot.png").as_uri()
            await paste(pilot, screen, uri)
            bar = screen.query_one(AttachmentBar)
            assert [a.name for a in bar.attachments] == ["my shot.png", "dog.gif"]
            assert screen.prompt.text == "compare "
            assert any("Attached my shot.png" in n for n in notices(app))
            # Any other paste is text, as before.
            await paste(pilot, screen, "plain words")
            assert screen.prompt.text == "compare plain words"
            assert fake.chat_requests() == []


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("missing.png", "missing.png: no such file"),
        ("notes.png", "notes.png is not a PNG, JPEG, WebP or GIF image"),
        ("", "is a directory, not an image"),
        ("huge.png", "more than the 20,971,520 bytes gemmatui sends"),
    ],
)
async def test_a_bad_file_is_refused_in_one_line_and_the_prompt_kept(
    make_app: MakeApp, pictures: Path, name: str, said: str
) -> None:
    if name == "huge.png":
        with open(pictures / name, "wb") as handle:
            handle.write(make_png(4, 4))
            handle.truncate(MAX_IMAGE_BYTES + 1)
    with FakeOllama(installed=["4b"]) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await type_prompt(pilot, screen, "my typed question")
            await attach_by_key(pilot, str(pictures / name) if name else str(pictures))
            errors = [n for n in app._notifications if n.severity == "error"]
            assert len(errors) == 1 and said in errors[0].message, notices(app)
            assert "\n" not in errors[0].message
            assert screen.prompt.text == "my typed question"
            assert screen.query_one(AttachmentBar).attachments == []
            assert fake.chat_requests() == []


async def test_an_unreadable_file_is_refused_and_the_prompt_kept(
    make_app: MakeApp, pictures: Path
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    locked = pictures / "locked.png"
    locked.write_bytes(make_png())
    locked.chmod(0)
    with FakeOllama(installed=["4b"]) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await type_prompt(pilot, screen, "keep me")
            await attach_by_key(pilot, str(locked))
            assert any("permission denied" in n for n in notices(app))
            assert screen.prompt.text == "keep me"
            assert fake.chat_requests() == []


async def test_the_text_only_model_refuses_images_and_sends_nothing(
    make_app: MakeApp, pictures: Path
) -> None:
    """1B: Ctrl+A and a pasted image path are refused in words, the dialog never opens,
    the typed text stays and no request is made."""
    with FakeOllama(installed=["1b"]) as fake:
        app = make_app(fake.url, settings=TEXT_ONLY)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await type_prompt(pilot, screen, "describe this")
            await pilot.press("ctrl+a")
            await pilot.pause()
            assert isinstance(app.screen, ChatScreen)
            await paste(pilot, screen, str(pictures / "cat.png"))
            refusals = [n for n in notices(app) if "reads text only" in n]
            assert len(refusals) == 2
            assert refusals[0] == "gemma3:1b-it-qat reads text only; use 4b, 12b or 27b for images"
            assert screen.prompt.text == "describe this"
            assert screen.query_one(AttachmentBar).attachments == []
            assert fake.chat_requests() == []


async def test_images_count_in_the_gauge_and_an_overflow_is_warned_first(
    make_app: MakeApp, pictures: Path
) -> None:
    """A stopped reply has no figures: its message's image counts 256 tokens in the
    gauge. A message whose images cannot fit in num_ctx is held back with a warning
    the first time and sent on the second Enter."""
    small = Settings(model=MODEL, num_ctx=2048, keep_alive="25m")
    with FakeOllama(installed=["4b"], token_rate=5) as fake:
        app = make_app(fake.url, settings=small)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            tokens = screen.query_one(TokenPanel)
            await attach_by_key(pilot, str(pictures / "cat.png"))
            await type_prompt(pilot, screen, "abcd")
            await pilot.press("enter")
            await until(pilot, lambda: screen.reply is not None)
            await pilot.press("escape")
            await finished(pilot, screen)
            assert tokens.estimated and tokens.context >= IMAGE_TOKENS + 1
            assert tokens.context < IMAGE_TOKENS + 50

            for _ in range(7):
                await attach_by_key(pilot, str(pictures / "dog.gif"))
            await type_prompt(pilot, screen, "and these?")
            await pilot.press("enter")
            await pilot.pause()
            assert len(fake.chat_requests()) == 1  # held back
            warning = [n for n in notices(app) if "Press Enter again" in n]
            assert len(warning) == 1 and "8 images (256 tokens each)" in warning[0]
            assert screen.prompt.text == "and these?"
            await pilot.press("enter")
            await until(pilot, lambda: len(fake.chat_requests()) == 2)
            assert len(fake.chat_requests()[1]["messages"][-1]["images"]) == 7


async def test_images_come_back_after_a_restart_and_are_sent_again(
    make_app: MakeApp, pictures: Path
) -> None:
    """A new app on the same data dir shows the image again and sends it with the
    history (Ollama reads the conversation anew each time); a file gone from the data
    dir shows as a missing card and the next request goes without it."""
    cat = (pictures / "cat.png").read_bytes()
    with FakeOllama(installed=["4b"], token_rate=400) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await attach_by_key(pilot, str(pictures / "cat.png"))
            await type_prompt(pilot, screen, "first")
            await pilot.press("enter")
            await finished(pilot, screen)
        (pictures / "cat.png").unlink()  # the original goes: the stored copy remains

        again = make_app(fake.url, settings=SETTINGS)
        async with again.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await until(pilot, lambda: bool(screen.messages_view.query(UserMessage)))
            [user] = screen.messages_view.query(UserMessage)
            assert "▣ cat.png · 640×480 ·" in shown_text(user)
            await type_prompt(pilot, screen, "second")
            await pilot.press("enter")
            await finished(pilot, screen)
            history = fake.chat_requests()[-1]["messages"]
            assert [m["role"] for m in history] == ["user", "assistant", "user"]
            assert "images" not in history[2]
            assert fake.received_images() == [cat, cat]

            store = again.store
            conv = store.last_conversation()
            assert conv is not None
            [image] = store.messages(conv.id)[0].images
            assert image.path is not None
            image.path.unlink()  # gone from the data dir

        third = make_app(fake.url, settings=SETTINGS)
        async with third.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await until(pilot, lambda: bool(screen.messages_view.query(UserMessage)))
            user = screen.messages_view.query(UserMessage).first()
            assert "cat.png · 640×480" in shown_text(user) and "missing" in shown_text(user)
            await type_prompt(pilot, screen, "third")
            await pilot.press("enter")
            await finished(pilot, screen)
            assert len(fake.received_images()) == 2  # nothing more: the file is gone
            assert any("1 earlier image is missing" in n for n in notices(third))


async def test_export_lists_images_as_links_to_the_stored_files(
    make_app: MakeApp, pictures: Path
) -> None:
    with FakeOllama(installed=["4b"], token_rate=400) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await attach_by_key(pilot, str(pictures / "cat.png"))
            await type_prompt(pilot, screen, "look")
            await pilot.press("enter")
            await finished(pilot, screen)
            await pilot.press("ctrl+e")
            await pilot.pause()
            [export] = list((app.store.path.parent / "exports").glob("*.md"))
            text = export.read_text()
            link = text.split("](", 1)[1].split(")", 1)[0]
            assert text.count("![cat.png](../images/") == 1
            assert (export.parent / link).read_bytes() == (pictures / "cat.png").read_bytes()


def test_complete_path_completes_names_and_folders(pictures: Path) -> None:
    """One match: the whole name (a folder gets "/"); several: what they share; hidden
    files only after a dot; nothing to add: None."""
    folder = str(pictures)
    assert complete_path(f"{folder}/ca") == f"{folder}/cat.png"
    assert complete_path(f"{folder}/m") == f"{folder}/my shot.png"
    (pictures / "cats").mkdir()
    assert complete_path(f"{folder}/cat") is None  # cat.png and cats/: nothing shared more
    assert complete_path(f"{folder}/cats") == f"{folder}/cats/"
    assert complete_path(str(pictures.parent / "pic")) == f"{folder}/"
    (pictures / ".hidden.png").write_bytes(b"x")
    assert complete_path(f"{folder}/.h") == f"{folder}/.hidden.png"
    assert complete_path(f"{folder}/zzz") is None
    assert complete_path("do", cwd=pictures) == "dog.gif"


def test_pasted_paths_recognises_dropped_files(pictures: Path) -> None:
    cat, shot = pictures / "cat.png", pictures / "my shot.png"
    assert pasted_paths(str(cat)) == [cat]
    assert pasted_paths(f'"{shot}"') == [shot]
    assert pasted_paths(str(shot).replace(" ", "\\ ")) == [shot]
    assert pasted_paths(shot.as_uri()) == [shot]
    assert pasted_paths(f"'{cat}' '{shot}'") == [cat, shot]
    assert pasted_paths(str(pictures / "notes.png")) is None  # not an image by its bytes
    assert pasted_paths(f"look at {cat}") is None
    assert pasted_paths(str(pictures / "missing.png")) is None
    assert pasted_paths(f"{cat}\n{shot}") is None
    assert pasted_paths("file://elsewhere/x.png") is None


async def test_inline_where_the_terminal_can_and_cards_when_narrow_or_no_color(
    make_app: MakeApp, pictures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a picture renderer found (here textual-image's half-block widget, as in a
    terminal without Sixel or Kitty graphics), a wide terminal draws the image inline;
    below 100 columns, or with NO_COLOR, the same message shows the card."""
    from textual_image.widget import HalfcellImage

    from gemmatui.tui.widgets import attachments

    monkeypatch.delenv("GEMMATUI_IMAGES")
    monkeypatch.setattr(attachments, "_inline_widget", HalfcellImage)
    with FakeOllama(installed=["4b"], token_rate=400) as fake:
        app = make_app(fake.url, settings=SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await attach_by_key(pilot, str(pictures / "cat.png"))
            await type_prompt(pilot, screen, "wide")
            await pilot.press("enter")
            await finished(pilot, screen)
            block = screen.messages_view.query(ImageBlock).last()
            assert block.inline
            picture = block.query_one(HalfcellImage)
            assert 0 < picture.size.height <= 12 and picture.size.width > 0
            assert "▣" not in shown_text(block)
        async with make_app(fake.url, settings=SETTINGS).run_test(size=(90, 30)) as pilot:
            screen = await open_chat(pilot)
            await until(pilot, lambda: bool(screen.messages_view.query(ImageBlock)))
            assert not screen.messages_view.query(ImageBlock).last().inline
        monkeypatch.setenv("NO_COLOR", "1")
        async with make_app(fake.url, settings=SETTINGS).run_test(size=SIZE) as pilot:
            screen = await open_chat(pilot)
            await until(pilot, lambda: bool(screen.messages_view.query(ImageBlock)))
            block = screen.messages_view.query(ImageBlock).last()
            assert not block.inline and "▣ cat.png" in shown_text(block)
