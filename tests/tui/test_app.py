"""The app shell: first run, start-up paths, Ollama down and up, help, palette, run_tui."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import pytest
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from gemmatui.core.config import Settings, load_settings
from gemmatui.core.hardware import StaticProbe
from gemmatui.core.types import HardwareSnapshot
from gemmatui.tui import banner, terminal
from gemmatui.tui.app import GemmaApp, build_app, run_tui
from gemmatui.tui.banner import HistoryBanner, OllamaBanner
from gemmatui.tui.commands import GemmaCommands
from gemmatui.tui.screens.chat import ChatScreen
from gemmatui.tui.screens.dialogs import ConfirmDialog
from gemmatui.tui.screens.help import KEYMAP, HelpScreen, key_label
from gemmatui.tui.screens.models import FitTable, ModelsScreen
from gemmatui.tui.screens.pull import PullScreen
from gemmatui.tui.widgets.sidebar import ConversationSidebar
from tests.fake_ollama import FakeOllama, closed_port_url
from tests.tui.chat_host import shown_text, until
from tests.tui.conftest import (
    GPU_8GB,
    GPU_24GB,
    NO_GPU,
    SIZE,
    MakeApp,
    ScriptedOllama,
    settle,
)

ScriptedApp = Callable[..., GemmaApp]


def _cursor_key(screen: ModelsScreen) -> str:
    table = screen.query_one("#fit", DataTable)
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


def _args(**values: object) -> argparse.Namespace:
    base = {"host": None, "theme": None, "ctx": None, "model": None, "command": None}
    return argparse.Namespace(**{**base, **values})


async def test_first_run_on_24gb_gpu_preselects_27b_at_32k_f16(
    fake: FakeOllama, make_app: MakeApp
) -> None:
    """First run, 24 GiB GPU, nothing installed: the model screen opens with Gemma 3 27B
    preselected at 32k context and an f16 KV cache, the reason on screen, nothing installed."""
    app = make_app(fake.url, hardware=GPU_24GB)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        assert (screen.context, screen.kv_type) == (32768, "f16")
        assert _cursor_key(screen) == "27b"
        assert screen.report.recommended is not None
        assert screen.report.recommended.variant.key == "27b"
        reason = str(screen.query_one("#reason").render())
        assert "Gemma 3 27B fits fully" in reason
        assert app.ollama_ok is True
        assert app.installed == {}
        assert not screen.query_one(OllamaBanner).display


async def test_first_run_enter_pulls_then_opens_the_chat(
    fake: FakeOllama, make_app: MakeApp, config_file: Path
) -> None:
    """Enter on the preselected 27B (not installed) opens the pull screen; when the pull
    completes the chat opens with gemma3:27b-it-qat at 32k, and the choice is saved."""
    chat = pytest.importorskip("gemmatui.tui.screens.chat")
    app = make_app(fake.url, hardware=GPU_24GB)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        shown: list[object] = []
        push_screen = app.push_screen
        app.push_screen = lambda screen, *a, **k: (
            shown.append(screen),
            push_screen(screen, *a, **k),
        )[1]  # type: ignore[method-assign]
        await pilot.press("enter")
        await settle(app, pilot, group="pull")
        await settle(app, pilot, group="ollama")
        assert isinstance(shown[0], PullScreen) and shown[0].tag == "gemma3:27b-it-qat"
        assert [body["model"] for body in fake.bodies("/api/pull")] == ["gemma3:27b-it-qat"]
        assert isinstance(app.screen, chat.ChatScreen)
        assert (app.screen.model, app.screen.num_ctx) == ("gemma3:27b-it-qat", 32768)
        assert "gemma3:27b-it-qat" in fake.installed()
        assert app.installed is not None and "gemma3:27b-it-qat" in app.installed
        assert app.chosen_fit is not None and app.chosen_fit.variant.key == "27b"
    assert load_settings(config_file) == Settings(
        model="gemma3:27b-it-qat", num_ctx=32768, kv_cache_type="f16"
    )


async def test_8gb_gpu_preselects_4b(fake: FakeOllama, make_app: MakeApp) -> None:
    """An 8 GiB GPU: Ollama's default context there is 4k and Gemma 3 4B is preselected;
    12B and 27B show partial offload."""
    app = make_app(fake.url, hardware=GPU_8GB)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        assert screen.context == 4096
        assert _cursor_key(screen) == "4b"
        verdicts = {row.variant.key: row.verdict for row in screen.report.rows}
        assert verdicts == {"1b": "gpu", "4b": "gpu", "12b": "partial", "27b": "partial"}


async def test_no_gpu_says_cpu_only_and_still_recommends(
    fake: FakeOllama, make_app: MakeApp
) -> None:
    """No GPU: the hardware card says "CPU only" with the RAM, bars are measured against
    the available RAM, every verdict is CPU-side and the fallback variant is preselected."""
    app = make_app(fake.url, hardware=NO_GPU)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        card = str(screen.query_one("#hardware").render())
        assert "CPU only" in card
        assert "24.5 GiB available" in card
        table = screen.query_one("#fit", DataTable)
        assert table.columns[ColumnKey("bar")].label.plain == "Memory vs 24.5 GiB RAM"
        assert {row.verdict for row in screen.report.rows} <= {"cpu", "none"}
        fallback = screen.report.fallback
        assert fallback is not None
        assert _cursor_key(screen) == fallback.variant.key


async def test_ollama_down_then_up(make_app: MakeApp) -> None:
    """Ollama is not running: a banner names the host and `ollama serve`, the fit still
    works (context change re-plans), `r` is offered; once a server answers, `r`
    reconnects, the banner goes and the installed models appear."""
    url = closed_port_url()
    app = make_app(url, hardware=GPU_24GB)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        banner = app.screen.query_one(OllamaBanner)
        assert banner.display
        text = str(banner.render())
        assert url in text and "ollama serve" in text
        # One message: the raw "cannot reach" error says nothing more, so it is not shown;
        # the model screen does not point at itself; `r` works here.
        assert "cannot reach" not in text and "is Ollama running?" not in text
        assert "ctrl+o" not in text and "planner" not in text
        assert "press r or F5" in text
        assert app.ollama_ok is False and app.installed is None
        assert app.check_action("retry_ollama", ()) is True
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert app.screen.context == 65536  # type: ignore[attr-defined]

        await pilot.press("enter")  # cannot pull without Ollama: a warning, no pull screen
        await pilot.pause()
        assert isinstance(app.screen, ModelsScreen)

        port = int(url.rsplit(":", 1)[1])
        with FakeOllama(port=port, installed=["12b"]):
            await pilot.press("r")
            await settle(app, pilot, group="ollama")
            assert app.ollama_ok is True
            assert not banner.display
            assert list(app.installed or {}) == ["gemma3:12b-it-qat"]
            assert app.check_action("retry_ollama", ()) is False


async def test_saved_model_opens_the_chat_and_ctrl_o_the_models(
    fake: FakeOllama, make_app: MakeApp
) -> None:
    """With a saved model the app starts in the chat; ctrl+o (which a focused prompt does
    not swallow) opens the model screen on top, Esc returns to the same chat."""
    chat = pytest.importorskip("gemmatui.tui.screens.chat")
    fake.set_installed(["4b"])
    settings = Settings(model="gemma3:4b-it-qat", num_ctx=8192, kv_cache_type="f16")
    app = make_app(fake.url, hardware=GPU_8GB, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, group="ollama")
        first = app.screen
        assert isinstance(first, chat.ChatScreen)
        assert (first.model, first.num_ctx) == ("gemma3:4b-it-qat", 8192)
        assert app.chosen_fit is not None and app.chosen_fit.variant.key == "4b"
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, ModelsScreen)
        assert app.screen.context == 8192
        assert _cursor_key(app.screen) == "4b"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is first


async def test_help_lists_every_key_and_closes(fake: FakeOllama, make_app: MakeApp) -> None:
    """`?` opens the key help with one row per key of every screen (chat keys included);
    Esc closes it."""
    app = make_app(fake.url)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        actions = [str(cell.render()) for cell in app.screen.query(".help--action")]
        assert len(actions) == sum(len(section.rows) for section in KEYMAP)
        assert "Regenerate the last reply" in actions
        assert "Rename the conversation" in actions
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ModelsScreen)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


async def test_command_palette_runs_an_action_by_name(fake: FakeOllama, make_app: MakeApp) -> None:
    """ctrl+p, type "help", Enter: the help screen opens. The palette offers the app's
    actions and the screen's keys by name."""
    app = make_app(fake.url)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        names = [command.name for command in GemmaCommands(app.screen).commands()]
        assert names[:1] == ["Help"]  # models is hidden on the model screen itself
        assert {"Shorter ctx", "Longer ctx", "KV type", "Use / pull"} <= set(names)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"help")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


async def test_the_chat_palette_offers_every_chat_action(fake: FakeOllama, make_app: MakeApp) -> None:
    """In the chat, the palette names every chat action, the footer's and F3 (panels),
    which stays out of the footer for room; the prompt's cursor keys stay out."""
    chat = pytest.importorskip("gemmatui.tui.screens.chat")
    fake.set_installed(["4b"])
    settings = Settings(model="gemma3:4b-it-qat", num_ctx=8192, kv_cache_type="f16")
    app = make_app(fake.url, hardware=GPU_8GB, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot, group="ollama")
        assert isinstance(app.screen, chat.ChatScreen)
        names = {command.name for command in GemmaCommands(app.screen).commands()}
        # (Stop appears only while a reply streams.)
        expected = {"Regenerate", "Copy", "Chats", "New", "Export", "System", "Panels"}
        assert expected <= names
        assert not any("cursor" in name.lower() for name in names)


@pytest.fixture
def a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend stdin and stdout are a terminal (pytest captures both)."""
    monkeypatch.setattr(terminal, "is_terminal", lambda stream: True)


@pytest.mark.usefixtures("a_terminal")
def test_run_tui_bad_config_is_one_line_and_exit_2(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config file that is not TOML: one error line naming the file, exit code 2."""
    config_file.parent.mkdir(parents=True)
    config_file.write_text("theme = [unclosed\n")
    assert run_tui(_args()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("gemmatui: error: ") and str(config_file) in err


@pytest.mark.usefixtures("a_terminal")
def test_run_tui_unknown_theme_lists_the_themes(capsys: pytest.CaptureFixture[str]) -> None:
    """--theme nope: one line listing the available themes (ours among them), exit 2."""
    assert run_tui(_args(theme="nope")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown theme 'nope'" in err
    assert "gemma-dark" in err and "gemma-light" in err and "gemma-high-contrast" in err


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ctx": "lots"}, "invalid --ctx"),
        ({"model": "99b"}, "unknown model '99b'"),
        ({"host": "http://127.0.0.1:99999"}, "port must be a number"),
    ],
)
@pytest.mark.usefixtures("a_terminal")
def test_run_tui_bad_arguments_exit_2(
    values: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad --ctx, --model or --host: one error line, exit 2, no traceback."""
    assert run_tui(_args(**values)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


async def test_build_app_applies_the_arguments(fake: FakeOllama) -> None:
    """build_app wires the real parts: --host, --ctx, --model (short name → QAT tag) and
    --theme apply to this run's settings without being saved."""
    app = build_app(_args(host=fake.url, ctx="8k", model="4b", theme="gemma-light"))
    try:
        assert isinstance(app, GemmaApp)
        assert app.client.host == fake.url
        assert (app.settings.num_ctx, app.settings.model, app.settings.theme) == (
            8192,
            "gemma3:4b-it-qat",
            "gemma-light",
        )
        assert app.config_path is not None and not app.config_path.exists()
    finally:
        await app.client.aclose()
        app.probe.close()
        app.store.close()


def _keys(*owners: type) -> set[str]:
    return {
        key.strip()
        for owner in owners
        for binding in owner.BINDINGS
        if isinstance(binding, Binding) and binding.description
        for key in binding.key.split(",")
    }


def test_the_help_table_lists_every_binding() -> None:
    """Each described binding of the app, its screens and dialogs (the chat's too, when it
    is there) appears in its section of the help table, so the help cannot drift."""
    sections = {
        section.title: {key for row in section.rows for key in row.keys} for section in KEYMAP
    }
    owners: dict[str, tuple[type, ...]] = {
        "Everywhere": (GemmaApp,),
        "Model screen": (ModelsScreen, FitTable),
        "Pull": (PullScreen,),
        "Dialogs": (ConfirmDialog,),
        "Conversation list": (ConversationSidebar,),
    }
    try:
        from gemmatui.tui.screens.chat import ChatScreen
    except ImportError:
        pass
    else:
        owners["Chat"] = (ChatScreen,)
    for title, classes in owners.items():
        assert _keys(*classes) <= sections[title], title


def test_docs_show_the_same_key_table() -> None:
    """docs/tui.md has one table row per help row, written the same way."""
    docs = (Path(__file__).parents[2] / "docs" / "tui.md").read_text()
    for section in KEYMAP:
        assert f"### {section.title}" in docs
        for row in section.rows:
            keys = " / ".join(f"`{key_label(key)}`" for key in row.keys)
            assert f"| {keys} | {row.action} |" in docs


class BrokenProbe(StaticProbe):
    """A probe whose snapshot fails the way a confused driver might."""

    def snapshot(self) -> HardwareSnapshot:
        raise RuntimeError("NVML: Unknown Error")


async def test_a_failing_hardware_probe_is_shown_not_fatal(scripted_app: ScriptedApp) -> None:
    """The probe raises: the app still opens the model screen, the card says CPU only
    and names the error, and the fit runs on what is known."""
    app = scripted_app(ScriptedOllama())
    app.probe = BrokenProbe(NO_GPU)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ModelsScreen)
        card = str(app.screen.query_one("#hardware").render())
        assert "CPU only" in card
        assert "could not read the hardware: NVML: Unknown Error" in card


async def test_settings_that_cannot_be_saved_still_apply(
    scripted_app: ScriptedApp, config_file: Path
) -> None:
    """The config path is unusable (its folder is a file): switching the theme applies it,
    and a notification says the settings were not saved."""
    config_file.parent.parent.mkdir(parents=True, exist_ok=True)
    config_file.parent.write_text("not a folder")
    app = scripted_app(ScriptedOllama())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.theme = "gemma-light"
        await pilot.pause()
        assert app.settings.theme == "gemma-light"
        assert any(n.title == "Settings not saved" for n in app._notifications)


@pytest.mark.parametrize(
    ("kind", "keys", "planner"),
    [("chat", "press F5 to retry", True), ("models", "press r or F5", False)],
)
def test_banner_names_the_key_that_works_on_its_screen(
    kind: banner.ScreenKind, keys: str, planner: bool
) -> None:
    """The chat's prompt swallows `r`, so the chat's banner offers F5 only, and points at
    the planner; the model screen's does neither. A plain "cannot reach" is not repeated;
    any other error is kept, labelled as Ollama's."""
    host = "http://127.0.0.1:9"
    plain = f"cannot reach Ollama at {host}: is Ollama running? start it with `ollama serve`"
    text = str(banner.banner_text(host, plain, kind, 5))
    assert keys in text and host in text and "ollama serve" in text
    assert "cannot reach" not in text and text.count("ollama serve") == 1
    assert ("ctrl+o" in text) is planner
    other = str(banner.banner_text(host, "Ollama answered 500: out of memory", kind, 5))
    assert "Ollama said: Ollama answered 500: out of memory" in other


async def test_help_wraps_long_actions_at_80_columns(fake: FakeOllama, make_app: MakeApp) -> None:
    """At 80 columns no action is cut off: each one's cell is as tall as its text needs."""
    app = make_app(fake.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        for cell in app.screen.query(".help--action"):
            text = str(cell.render())
            assert cell.region.right <= 80
            assert cell.size.width * cell.size.height >= len(text), text
        assert app.screen.query_one(".help--footer").region.bottom <= 24


async def test_chat_panels_follow_the_width_breakpoints(
    fake: FakeOllama, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chat.tcss: below 100 columns (-narrow) the panels are hidden and the sidebar keeps
    the chat wide; F3 shows them there."""
    chat = pytest.importorskip("gemmatui.tui.screens.chat")
    fake.set_installed(["4b"])
    settings = Settings(model="gemma3:4b-it-qat", num_ctx=8192, kv_cache_type="f16")
    app = make_app(fake.url, hardware=GPU_8GB, settings=settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot, group="ollama")
        screen = app.screen
        assert isinstance(screen, chat.ChatScreen)
        panels, main = screen.query_one("#panels"), screen.query_one("#chat-main")
        assert screen.has_class("-narrow")
        assert not panels.display or panels.region.width == 0
        assert main.region.width == 80
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert main.region.width >= 48
        await pilot.press("ctrl+b")
        await pilot.press("f3")
        await pilot.pause()
        assert panels.region.width > 0 and main.region.width >= 40
        await pilot.resize_terminal(120, 36)
        await pilot.press("f3")
        await pilot.pause()
        assert screen.has_class("-wide")
        assert panels.region.width == 42
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert main.region.width >= 120 - 42 - 32


# ---------------------------------------------------------------------- issue 9


def _close(app: GemmaApp) -> None:
    app.probe.close()
    app.store.close()


async def test_a_damaged_history_is_moved_aside_and_the_chat_works(
    fake: FakeOllama, tmp_path: Path
) -> None:
    """A conversations.db that is garbage does not stop the app: it is moved aside as
    conversations.db.corrupt-<timestamp>, a banner says so and where, and the chat
    saves to a new history."""
    data = tmp_path / "data"
    data.mkdir()
    garbage = b"not a database\n" * 100
    (data / "conversations.db").write_bytes(garbage)
    app = build_app(_args(host=fake.url, model="4b"))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ChatScreen))
            banner = app.screen.query_one(HistoryBanner)
            await until(pilot, lambda: banner.display and banner.size.area > 0)
            text = shown_text(banner)
            assert "damaged" in text and "conversations.db.corrupt-" in text
            assert not app.screen.query_one(OllamaBanner).display
        [moved] = data.glob("conversations.db.corrupt-*")
        assert moved.read_bytes() == garbage
        assert app.store.saved and app.store.list_conversations() == []
    finally:
        await app.client.aclose()
        _close(app)


async def test_an_unusable_data_dir_runs_with_history_off(
    fake: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data dir that cannot be created: the model screen and its fit work, and a banner
    says that history is off this session."""
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    monkeypatch.setenv("GEMMATUI_DATA_DIR", str(blocker / "data"))
    app = build_app(_args(host=fake.url))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
            screen = app.screen
            assert screen.query_one(FitTable).row_count == 4
            banner = screen.query_one(HistoryBanner)
            await until(pilot, lambda: banner.display and banner.size.area > 0)
            assert "history is off" in shown_text(banner)
        assert not app.store.saved
    finally:
        await app.client.aclose()
        _close(app)


async def test_no_history_banner_when_the_history_is_fine(
    fake: FakeOllama, make_app: MakeApp
) -> None:
    """Nothing went wrong: no history banner."""
    app = make_app(fake.url)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        assert not app.screen.query_one(HistoryBanner).display


def _stream(kind: str, stack: ExitStack, tmp_path: Path, mode: str) -> IO[Any]:
    """stdin / stdout for the child: /dev/null, a file, or a pseudo-terminal."""
    if kind == "pty":
        main_fd, child_fd = os.openpty()
        stack.callback(os.close, main_fd)
        return stack.enter_context(os.fdopen(child_fd, mode))
    if kind == "file":
        return stack.enter_context((tmp_path / "out").open(mode))
    return stack.enter_context(open(os.devnull, mode))  # noqa: SIM115 - closed by the stack


@pytest.mark.parametrize(
    ("stdin", "stdout"),
    [("null", "file"), ("pty", "file"), ("null", "pty")],
    ids=["no-terminal", "stdout-redirected", "stdin-redirected"],
)
def test_without_a_terminal_one_line_and_exit_2(stdin: str, stdout: str, tmp_path: Path) -> None:
    """`gemmatui < /dev/null > out` (or either one redirected): one line on stderr, exit
    2, nothing written to stdout, and Textual never loaded (so no escape codes, no hang)."""
    with ExitStack() as stack:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "gemmatui"],
            stdin=_stream(stdin, stack, tmp_path, "r"),
            stdout=_stream(stdout, stack, tmp_path, "w"),
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    said = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    assert said == [f"gemmatui: error: {terminal.NEEDS_TERMINAL}"]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] == "textual"}
    if stdout == "file":
        assert (tmp_path / "out").read_text() == ""


def test_run_tui_refuses_without_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """run_tui itself checks too (whoever calls it): pytest's captured streams are no
    terminal, so it returns 2 with one line before building anything."""
    assert run_tui(_args()) == 2
    assert capsys.readouterr().err == f"gemmatui: error: {terminal.NEEDS_TERMINAL}\n"
