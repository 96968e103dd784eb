"""The terminal app against the real engine (llama-server from xllamacpp, the real
Gemma 3 270M), driven with Pilot:

* the app finds the module's llama-server, opens the chat on its model at its
  context, plans the served GGUF (its ``model_path`` is readable here), streams a real
  reply, and its token panel shows a real rate from the final timings;
* ``--gguf FILE`` and Enter on the file's row start llama-server through
  ``core/launch.py``; the plan panel shows llama.cpp's own allocations from its log
  beside the plan, and the server is gone once the app has exited.

The model is a base model that writes nonsense: only plumbing and counts are checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest

from gemmatui.core.config import Settings
from gemmatui.core.engine import engine_for
from gemmatui.core.hardware import StaticProbe
from gemmatui.core.storage import ConversationStore
from gemmatui.tui.app import GemmaApp
from gemmatui.tui.screens.chat import ChatScreen
from gemmatui.tui.screens.models import ModelsScreen
from gemmatui.tui.session import Connector, GgufChoice, Session
from gemmatui.tui.widgets.plan_panel import PlanPanel
from gemmatui.tui.widgets.token_panel import TokenPanel
from tests.engine.llama_harness import RunningServer
from tests.real_model import model_path
from tests.tui.chat_host import shown_text, until
from tests.tui.conftest import NO_GPU, SIZE, settle

MakeApp = Callable[..., GemmaApp]


@pytest.fixture
async def make_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[MakeApp]:
    """A :class:`GemmaApp` on a CPU-only machine, its config, data and logs in
    ``tmp_path``; sessions are closed after the test."""
    monkeypatch.setenv("GEMMATUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("GEMMATUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # llama-server's log
    sessions: list[Session] = []

    def make(connect: Connector, gguf: GgufChoice | None = None) -> GemmaApp:
        session = Session(
            engine=engine_for("ollama" if connect.engine == "auto" else connect.engine, connect.host),
            probe=StaticProbe(NO_GPU),
            settings=Settings(),
            store=ConversationStore(tmp_path / "data"),
            config_path=tmp_path / "config.toml",
            connector=connect,
            gguf=gguf,
        )
        sessions.append(session)
        return GemmaApp(session=session)

    yield make
    for session in sessions:
        await session.aclose()


async def _chat(app: GemmaApp, pilot, timeout: float = 60) -> ChatScreen:  # type: ignore[no-untyped-def]
    await until(
        pilot,
        lambda: isinstance(app.screen, ChatScreen) and bool(app.screen.query(TokenPanel)),
        timeout=timeout,
    )
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    return screen


async def test_tui_chats_with_the_real_model_through_llama_server(
    llama_server: RunningServer, make_app: MakeApp
) -> None:
    app = make_app(Connector(llama_server.url))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _chat(app, pilot)
        assert app.session.kind == "llama-server"
        # The fixture's server: alias gemma3-270m, 4k of context.
        assert (screen.model, screen.num_ctx) == ("gemma3-270m", 4096)
        # Its model_path is the real file: planned from the GGUF's header.
        assert screen.fit is not None
        assert screen.fit.variant.tag == f"gguf:{model_path().name}"
        assert screen.fit.breakdown.ctx == 4096
        await pilot.press(*"Tell me about Gemma.", "enter")
        await until(pilot, lambda: screen.tokens.last is not None and not screen.generating, 60)
        stats = screen.tokens.last
        assert stats is not None
        assert stats.eval_count == 40  # the fixture's server stops a reply at 40 tokens
        assert stats.prompt_eval_count > 0
        assert stats.eval_rate is not None and stats.eval_rate > 0
        panel = shown_text(screen.tokens)
        assert f"{stats.eval_rate:.1f}" in panel or f"{stats.eval_rate:.0f}" in panel
        conv = app.session.store.last_conversation()
        assert conv is not None
        reply = app.session.store.messages(conv.id)[-1]
        assert (reply.role, reply.status) == ("assistant", "complete") and reply.content
        assert reply.stats is not None and reply.stats.eval_count == 40


async def test_gguf_enter_starts_llama_server_and_it_is_gone_after_exit(
    make_app: MakeApp, tmp_path: Path
) -> None:
    nothing = "http://127.0.0.1:9"  # no Ollama: only the file's row can start a chat
    app = make_app(Connector(nothing), GgufChoice.read(model_path()))
    pid: int | None = None
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, group="ollama")
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        await pilot.press("left_square_bracket", "left_square_bracket", "left_square_bracket")
        await pilot.pause()
        assert screen.context == 4096
        assert screen.query_one("#fit").cursor_row == len(screen.report.rows) - 1
        await pilot.press("enter")
        chat = await _chat(app, pilot, timeout=90)
        launched = app.session.launched
        assert launched is not None and launched.running
        pid = launched.process.pid
        assert pid is not None and psutil.pid_exists(pid)
        assert launched.process.log.is_relative_to(tmp_path / "cache")  # the user cache dir
        assert chat.model == model_path().stem  # `-a`: the file name without .gguf
        assert chat.num_ctx == 4096
        assert chat.fit is launched.row
        # llama.cpp's own allocations from the log, beside the plan.
        panel = chat.query_one(PlanPanel)
        log = panel.facts.actual
        assert log is not None and log.complete
        assert log.kv == launched.row.breakdown.kv  # the memory model is exact for KV
        assert "llama.cpp log" in shown_text(panel)
        assert app.session.served is not None and app.session.served.n_ctx == 4096
    assert pid is not None
    assert not psutil.pid_exists(pid)  # stopped (and reaped) when the app exited
