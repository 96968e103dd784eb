"""The terminal app on each engine: the session finds what answers (Ollama, a
llama-server, or a llama-server at its default address when nothing answers at
Ollama's), chats with a llama-server's one model at its context, says what it cannot
plan, names the engine in its errors, and plans ``--gguf``'s file as a row whose Enter
starts llama-server (here: refused in words when there is none).

A fake llama-server (:class:`tests.fake_ollama.FakeLlamaServer`) stands in; the real
engine is tested in ``tests/engine/test_tui_real.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gemmatui.core.errors import LaunchError
from gemmatui.core.llamacpp import LlamaServerClient
from gemmatui.core.types import ChatStats
from gemmatui.tui.banner import EngineBanner, OllamaBanner
from gemmatui.tui.screens.chat import ChatScreen
from gemmatui.tui.screens.models import GGUF_KEY, ModelsScreen
from gemmatui.tui.screens.pull import PullScreen
from gemmatui.tui.session import Connector, GgufChoice
from gemmatui.tui.widgets.plan_panel import PlanPanel
from gemmatui.tui.widgets.token_panel import TokenPanel
from tests.fake_ollama import FakeLlamaServer, FakeOllama
from tests.gguf_writer import gemma3_metadata, gemma3_tensors, gguf_bytes, write
from tests.tui.chat_host import shown_text, until
from tests.tui.conftest import NO_GPU, SIZE, MakeSessionApp, settle

#: The model the fake llama-server serves (its ``/v1/models`` id) and its context.
SERVED = "gemma-3-4b-it-q4_0.gguf"
SERVED_CTX = 4096


@pytest.fixture
def llama() -> FakeLlamaServer:
    with FakeLlamaServer(chat=True, reply="one two three four five") as server:
        yield server


async def chat_open(app: object, pilot: object) -> ChatScreen:
    """Wait until the chat is the screen and its panels are mounted."""
    await until(
        pilot,  # type: ignore[arg-type]
        lambda: isinstance(app.screen, ChatScreen)  # type: ignore[attr-defined]
        and bool(app.screen.query(TokenPanel)),  # type: ignore[attr-defined]
    )
    await pilot.pause()  # type: ignore[attr-defined]
    return app.screen  # type: ignore[attr-defined,no-any-return]


async def test_auto_finds_llama_server_and_chats_with_its_model(
    llama: FakeLlamaServer, make_session_app: MakeSessionApp
) -> None:
    """``--engine auto`` at a llama-server's address: no model chosen, yet the chat opens
    on the served model at the server's context; a message streams a reply and the
    tokens panel names llama-server and takes the rate from the final timings."""
    app = make_session_app(connect=Connector(llama.url))
    async with app.run_test(size=SIZE) as pilot:
        screen = await chat_open(app, pilot)
        assert (screen.model, screen.num_ctx) == (SERVED, SERVED_CTX)
        assert app.session.kind == "llama-server" and app.session.engine.host == llama.url
        assert app.ollama_ok is True
        assert any("serves one model" in n.title for n in app._notifications)
        panel_words = shown_text(screen.tokens)
        assert "Final figures appear after a reply" in panel_words
        assert "Ollama" not in panel_words
        await pilot.press(*"hello", "enter")
        await until(pilot, lambda: screen.tokens.last is not None)
        stats = screen.tokens.last
        assert isinstance(stats, ChatStats)
        assert stats.eval_count == 5 and stats.eval_rate is not None and stats.eval_rate > 0
        body = llama.chat_bodies[-1]
        assert body["model"] == SERVED
        assert body["messages"][-1] == {"role": "user", "content": "hello"}
        conv = app.session.store.last_conversation()
        assert conv is not None
        saved = app.session.store.messages(conv.id)
        assert [(m.role, m.status) for m in saved] == [("user", "complete"), ("assistant", "complete")]
        assert saved[-1].content == "one two three four five"


async def test_served_file_not_readable_here_plan_panel_says_so(
    llama: FakeLlamaServer, make_session_app: MakeSessionApp
) -> None:
    """The fake's ``model_path`` is not a file on this machine: no plan, and the panel
    names the file and why; no "Ollama total" row (llama-server reports no memory)."""
    app = make_session_app(engine=LlamaServerClient(llama.url))
    async with app.run_test(size=SIZE) as pilot:
        screen = await chat_open(app, pilot)
        await settle(app, pilot, group="ps")
        assert screen.fit is None
        panel = screen.query_one(PlanPanel)
        assert panel.facts.name == "llama-server" and not panel.facts.reports_memory
        text = shown_text(panel)
        assert "gemma-3-270m-it-Q4_K_M.gguf" in text and "cannot be read here" in text
        assert "Ollama" not in text


async def test_model_screen_with_llama_server_plans_but_does_not_pull(
    llama: FakeLlamaServer, make_session_app: MakeSessionApp
) -> None:
    """The model screen on a llama-server: the machine and the fit as always, a banner
    naming the engine, and Enter on a catalogue row explains instead of pulling."""
    app = make_session_app(engine=LlamaServerClient(llama.url))
    async with app.run_test(size=SIZE) as pilot:
        await chat_open(app, pilot)
        await pilot.press("ctrl+o")
        await settle(app, pilot, group="ollama")
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        assert {row.variant.key for row in screen.report.rows} >= {"1b", "4b", "12b", "27b"}
        banner = screen.query_one(EngineBanner)
        assert banner.display
        assert f"llama-server unknown build at {llama.url} serves {SERVED}" in str(banner.render())
        action = str(screen.query_one("#action").render())
        assert "serves one model" in action and "need Ollama" in action
        await pilot.press("enter")
        await pilot.pause()
        assert not any(isinstance(s, PullScreen) for s in app.screen_stack)
        assert any(n.title == "llama-server serves one model" for n in app._notifications)
        assert "/api/pull" not in llama.paths


async def test_nothing_at_ollamas_default_uses_llama_server_at_its_default(
    llama: FakeLlamaServer,
    make_session_app: MakeSessionApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No host chosen and nothing at Ollama's default address: the app looks at the
    other engines' default addresses (here the fake stands at llama-server's), says
    what it found and uses it, as ``ask`` does."""
    from gemmatui.core import detect

    nothing = "http://127.0.0.1:9"
    monkeypatch.setattr(
        detect, "DEFAULT_HOSTS", {"ollama": nothing, "llama-server": llama.url}
    )
    app = make_session_app(connect=Connector(nothing, look_elsewhere=True))
    async with app.run_test(size=SIZE) as pilot:
        await chat_open(app, pilot)
        assert app.session.host == llama.url
        found = [n for n in app._notifications if n.title == "Engine found"]
        assert found and f"using llama-server at {llama.url}" in found[0].message
        assert nothing in found[0].message


async def test_a_chosen_host_is_never_swapped(
    llama: FakeLlamaServer,
    make_session_app: MakeSessionApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--host`` chose the address: nothing answers there, so the banner says so; the
    llama-server at a default address is not used."""
    from gemmatui.core import detect

    nothing = "http://127.0.0.1:9"
    monkeypatch.setattr(detect, "DEFAULT_HOSTS", {"ollama": nothing, "llama-server": llama.url})
    app = make_session_app(connect=Connector(nothing, look_elsewhere=False))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, group="ollama")
        assert isinstance(app.screen, ModelsScreen)
        assert app.ollama_ok is False and app.session.host == nothing
        assert app.screen.query_one(OllamaBanner).display


async def test_errors_name_the_engine_that_answered(make_session_app: MakeSessionApp) -> None:
    """``--engine llama-server`` where nothing answers: the error and the banner name
    llama-server, not Ollama, and say how to start it again; F5 asks again."""
    nothing = "http://127.0.0.1:9"
    app = make_session_app(connect=Connector(nothing, engine="llama-server"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, group="ollama")
        assert app.session.kind == "llama-server"
        assert app.ollama_error is not None
        assert app.ollama_error.startswith(f"cannot reach llama-server at {nothing}")
        banner = app.screen.query_one(OllamaBanner)
        assert banner.display
        text = str(banner.render())
        assert f"llama-server is not running at {nothing}" in text
        assert "ollama serve" not in text
        await pilot.press("f5")
        await settle(app, pilot, group="ollama")
        still = [n for n in app._notifications if n.title == "llama-server is not running"]
        assert still and nothing in still[0].message


async def test_ollama_still_works_through_the_port(
    make_session_app: MakeSessionApp,
) -> None:
    """``auto`` at an Ollama: detected as Ollama, the model screen as before (no
    engine banner, no file row)."""
    with FakeOllama(installed=["4b"]) as fake:
        app = make_session_app(connect=Connector(fake.url))
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot, group="ollama")
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            assert app.session.kind == "ollama" and app.session.served is None
            assert app.installed is not None and "gemma3:4b-it-qat" in app.installed
            assert not screen.query_one(EngineBanner).display
            assert GGUF_KEY not in {row.variant.key for row in screen.report.rows}


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> Path:
    """A small Gemma 3 GGUF with no chat template."""
    return write(tmp_path / "tiny-gemma.gguf", gguf_bytes(gemma3_metadata(), gemma3_tensors()))


async def test_gguf_row_and_no_llama_server_says_how_to_install(
    tiny_gguf: Path, make_session_app: MakeSessionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--gguf FILE``: the model screen plans the file as a row ``gguf:<name>`` with the
    cursor on it; Enter with no llama-server anywhere says how to get one, and nothing
    is left starting."""
    from gemmatui.core import launch

    def nothing() -> list[str]:
        raise LaunchError(launch.INSTALL_HINT)

    monkeypatch.setattr(launch, "find_program", nothing)
    with FakeOllama() as fake:
        app = make_session_app(
            connect=Connector(fake.url), gguf=GgufChoice.read(tiny_gguf), hardware=NO_GPU
        )
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot, group="ollama")
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            row = screen.report.row(GGUF_KEY)
            assert row.variant.tag == "gguf:tiny-gemma.gguf"
            table = screen.query_one("#fit")
            assert table.cursor_row == len(screen.report.rows) - 1  # the file's row
            assert "Enter starts llama-server" in str(screen.query_one("#action").render())
            await pilot.press("enter")
            await settle(app, pilot, group="launch")
            failed = [n for n in app._notifications if n.title == "llama-server did not start"]
            assert failed and "pip install 'gemmatui[llamacpp]'" in failed[0].message
            assert app.launch_status is None and app.session.launched is None
            assert isinstance(app.screen, ModelsScreen)


async def test_gguf_settings_llama_server_refuses_are_said_before_starting(
    tiny_gguf: Path, make_session_app: MakeSessionApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quantized KV cache with flash attention off is refused in words, and no
    program is looked for."""
    from gemmatui.core import launch

    looked: list[bool] = []
    monkeypatch.setattr(launch, "find_program", lambda: looked.append(True) or ["false"])
    with FakeOllama() as fake:
        app = make_session_app(
            connect=Connector(fake.url), gguf=GgufChoice.read(tiny_gguf), hardware=NO_GPU
        )
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot, group="ollama")
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            # Flash attention off for the file's plan (a machine without it).
            monkeypatch.setattr(
                app.session,
                "_plan_file",
                _without_flash_attention(app.session._plan_file),
            )
            await pilot.press("k")  # q8_0
            await pilot.pause()
            await pilot.press("enter")
            await settle(app, pilot, group="launch")
            failed = [n for n in app._notifications if n.title == "llama-server did not start"]
            assert failed and "needs flash attention" in failed[0].message
            assert not looked


def _without_flash_attention(plan_file):  # type: ignore[no-untyped-def]
    """``Session._plan_file`` with flash attention forced off (a machine without it)."""
    from dataclasses import replace

    def planned(*args, **kwargs):  # type: ignore[no-untyped-def]
        report = plan_file(*args, **kwargs)
        row = report.rows[0]
        bd = replace(row.breakdown, flash_attention=False)
        return replace(report, rows=(replace(row, breakdown=bd),))

    return planned
