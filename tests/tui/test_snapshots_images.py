"""SVG snapshot of images in the chat, drawn as cards (the fallback every terminal
shows): the same fixed data as :mod:`tests.tui.test_snapshots_chat`.

``GEMMATUI_IMAGES=card`` makes the drawing the same in every terminal. Update with
``--snapshot-update`` only after looking at the report.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from gemmatui.core.images import from_bytes
from gemmatui.core.storage import ConversationStore
from gemmatui.tui.screens.chat import ChatScreen
from gemmatui.tui.widgets.attachments import AttachmentBar
from tests.tui.chat_host import MODEL, STATS, ScriptedChatOllama, gpu_sample, running
from tests.tui.conftest import SIZE
from tests.tui.test_snapshots_chat import Build, build, open_chat  # noqa: F401 (fixture)
from tests.unit.test_images import make_gif, make_png


def _with_images(store: ConversationStore) -> None:
    conv = store.create_conversation(MODEL)
    cat = from_bytes(make_png(640, 480, seed=1), "cat.png")
    chart = from_bytes(make_gif(1200, 800), "sales chart.gif")
    store.add_message(conv.id, "user", "What is in these two pictures?", images=[cat, chart])
    store.add_message(
        conv.id, "assistant", "A cat on a sofa, and a bar chart of sales.", stats=STATS,
        model=MODEL,
    )
    [_, gone] = store.messages(conv.id)[0].images
    assert gone.path is not None
    gone.path.unlink()  # deleted by hand from the data dir: shown as missing


def attach_pending(before: Callable[[Pilot], object]) -> Callable[[Pilot], object]:
    """Open the chat, then put one image in the row above the prompt."""

    async def run_before(pilot: Pilot) -> None:
        await before(pilot)  # type: ignore[misc]
        screen = pilot.app.screen
        assert isinstance(screen, ChatScreen)
        dog = from_bytes(make_png(32, 24, seed=3), "dog.png")
        await screen.query_one(AttachmentBar).add(dog)
        screen.prompt.insert("And this one?")
        await pilot.pause()

    return run_before


def test_chat_images_as_cards(snap_compare, build: Build, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """A restored message with two images: "▣ cat.png · 640×480 · …" and "▣ sales
    chart.gif · 1200×800 · … · missing from the data dir" in the warning colour. Above the prompt (typed "And this one?"), the pending chip
    "dog.png · 32×24 · … ✕" and "1 image · +256 tokens"."""
    monkeypatch.setenv("GEMMATUI_IMAGES", "card")
    client = ScriptedChatOllama(running=[running(4.6, 4.6)])
    app = build(_with_images, client=client)
    run_before = attach_pending(open_chat([gpu_sample(6.3)], baseline_gib=1.5))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
