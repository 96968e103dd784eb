"""The model screen: context and KV selectors re-plan at once; Enter uses or pulls."""

from __future__ import annotations

import doctest
from collections.abc import Callable

import pytest
from textual.widgets import DataTable, RadioButton
from textual.widgets.data_table import RowKey

from gemmatui.core.fit import FitReport
from gemmatui.tui.app import GemmaApp
from gemmatui.tui import banner
from gemmatui.tui.screens import help as help_screen
from gemmatui.tui.screens import models, pull
from gemmatui.tui.screens.models import ModelsScreen, bar_cells, nearest_context
from gemmatui.tui.screens.pull import PullScreen
from tests.tui.conftest import GPU_8GB, GPU_24GB, SIZE, ScriptedOllama, settle

ScriptedApp = Callable[..., GemmaApp]


def _needs(screen: ModelsScreen) -> dict[str, str]:
    table = screen.query_one("#fit", DataTable)
    return {key: str(table.get_cell(RowKey(key), "need")) for key in ("1b", "4b", "12b", "27b")}


def _cursor_key(screen: ModelsScreen) -> str:
    table = screen.query_one("#fit", DataTable)
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


def _pressed(screen: ModelsScreen, radio_set: str) -> list[str]:
    return [b.name or "" for b in screen.query_one(radio_set).query(RadioButton) if b.value]


@pytest.mark.parametrize("module", [models, pull, help_screen, banner])
def test_doctests(module: object) -> None:
    """The examples in the docstrings (bar layout, nearest context, key labels) hold."""
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


def test_bar_cells_mark_what_spills_past_the_budget() -> None:
    """A need of 12 against a budget of 8 on a 12-cell bar: 8 solid cells, then 4 hatched."""
    cells = bar_cells((6, 4, 2), budget=8, scale=12, width=12)
    assert "".join(glyph for _, glyph in cells) == "████████▒▒▒▒"
    assert [part for part, _ in cells] == [0] * 6 + [1] * 4 + [2] * 2


def test_nearest_context_snaps_to_an_offered_value() -> None:
    """Ollama's 256k default for big GPUs is offered as 128k (Gemma 3's maximum)."""
    assert nearest_context(262144) == 131072
    assert nearest_context(4096) == 4096


async def test_changing_context_and_kv_type_replans_at_once(scripted_app: ScriptedApp) -> None:
    """`]` selects 64k and `k` q8_0: the radio buttons follow, each row's need changes,
    the reason names the new context, and the advice to restart Ollama with
    OLLAMA_KV_CACHE_TYPE=q8_0 appears."""
    app = scripted_app(ScriptedOllama(), hardware=GPU_24GB)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        before = _needs(screen)
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert screen.context == 65536
        assert _pressed(screen, "#ctx") == ["65536"]
        at_64k = _needs(screen)
        assert at_64k["27b"] != before["27b"]
        assert "at 64k context (f16 KV cache)" in str(screen.query_one("#reason").render())

        await pilot.press("k")
        await pilot.pause()
        assert screen.kv_type == "q8_0"
        assert _pressed(screen, "#kv") == ["q8_0"]
        assert _needs(screen)["27b"] != at_64k["27b"]
        reason = str(screen.query_one("#reason").render())
        assert "OLLAMA_KV_CACHE_TYPE=q8_0" in reason
        assert isinstance(screen.report, FitReport) and screen.report.settings.kv_type == "q8_0"


async def test_clicking_a_context_replans(scripted_app: ScriptedApp) -> None:
    """Clicking the 8k radio button selects it and re-plans at 8k."""
    app = scripted_app(ScriptedOllama(), hardware=GPU_24GB)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        button = next(b for b in screen.query(RadioButton) if b.name == "8192")
        await pilot.click(button)
        await pilot.pause()
        assert screen.context == 8192
        assert screen.report.settings.num_ctx == 8192


async def test_cursor_stays_on_the_variant_the_user_picked(scripted_app: ScriptedApp) -> None:
    """Moving to 12B and then changing the context keeps the cursor on 12B, not on the
    new recommendation; the details follow the cursor."""
    app = scripted_app(ScriptedOllama(), hardware=GPU_24GB)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        await pilot.press("up")
        await pilot.pause()
        assert _cursor_key(screen) == "12b"
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert screen.context == 16384
        assert _cursor_key(screen) == "12b"
        assert "Gemma 3 12B at 16k context" in str(screen.query_one("#details").render())


async def test_enter_on_an_installed_variant_saves_and_opens_the_chat(
    scripted_app: ScriptedApp,
) -> None:
    """8 GiB GPU with 4B installed: Enter on the preselected 4B saves model, context and
    KV type and opens the chat with them (no pull)."""
    chat = pytest.importorskip("gemmatui.tui.screens.chat")
    app = scripted_app(ScriptedOllama(installed=["4b"]), hardware=GPU_8GB)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("right_square_bracket", "enter")
        await pilot.pause()
        assert isinstance(app.screen, chat.ChatScreen)
        assert (app.screen.model, app.screen.num_ctx) == ("gemma3:4b-it-qat", 8192)
        assert (app.settings.model, app.settings.num_ctx, app.settings.kv_cache_type) == (
            "gemma3:4b-it-qat",
            8192,
            "f16",
        )


async def test_enter_on_a_missing_variant_opens_the_pull_screen(scripted_app: ScriptedApp) -> None:
    """Enter on a variant Ollama does not have opens the pull screen for its tag."""
    app = scripted_app(ScriptedOllama(installed=["4b"]), hardware=GPU_8GB)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("up", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PullScreen)
        assert app.screen.tag == "gemma3:1b-it-qat"


async def test_enter_on_a_variant_that_cannot_start_only_explains(
    scripted_app: ScriptedApp,
) -> None:
    """The server runs without flash attention and q8_0 is chosen: nothing can start,
    so Enter shows an error and stays on the model screen."""
    app = scripted_app(ScriptedOllama(), hardware=GPU_24GB, fit_env={"OLLAMA_FLASH_ATTENTION": "0"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        await pilot.press("k")
        await pilot.pause()
        assert {row.verdict for row in screen.report.rows} == {"none"}
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert any("does not fit" in n.message for n in app._notifications)


async def test_enter_while_ollama_is_down_explains(scripted_app: ScriptedApp) -> None:
    """Ollama down: the installed column shows "?", and Enter explains that Ollama must
    be started instead of opening a pull that cannot work."""
    app = scripted_app(ScriptedOllama(up=False), hardware=GPU_24GB)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        table = screen.query_one("#fit", DataTable)
        assert str(table.get_cell(RowKey("27b"), "installed")) == "?"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is screen
        assert any("ollama serve" in n.message for n in app._notifications)


async def test_the_line_above_the_table_says_what_enter_does(scripted_app: ScriptedApp) -> None:
    """Right above the table: "opens the chat" on an installed row, "downloads <tag>
    (about N GB)" on a missing one; it follows the cursor."""
    app = scripted_app(ScriptedOllama(installed=["4b"]), hardware=GPU_8GB)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        action = screen.query_one("#action")
        assert _cursor_key(screen) == "4b"
        assert "Enter opens the chat" in str(action.render())
        assert not action.has_class("-pull")
        await pilot.press("up")
        await pilot.pause()
        text = str(action.render())
        assert "Enter downloads gemma3:1b-it-qat (about 1.0 GB)" in text
        assert action.has_class("-pull")
        children = list(screen.children)
        assert children.index(action) == children.index(screen.query_one("#fit")) - 1


async def test_80_columns_stack_the_selectors_and_keep_every_column(
    scripted_app: ScriptedApp,
) -> None:
    """At 80x24 the selectors stack, the table (Installed included) fits the width, and
    the line saying what Enter does is on screen; widening restores the wide layout."""
    app = scripted_app(ScriptedOllama(installed=["4b"]), hardware=GPU_24GB)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        assert screen.has_class("-narrow")
        ctx, kv = screen.query_one("#ctx"), screen.query_one("#kv")
        assert kv.region.y > ctx.region.y  # stacked, not side by side
        assert kv.region.right <= 80 and ctx.region.right <= 80
        table = screen.query_one("#fit", DataTable)
        keys = [str(column.key.value) for column in table.ordered_columns]
        assert keys.index("installed") == 2
        assert table.virtual_size.width <= table.scrollable_content_region.width
        action = screen.query_one("#action")
        assert 0 <= action.region.y and action.region.bottom <= 23  # above the footer
        assert "Enter" in str(action.render())

        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        assert screen.has_class("-wide")
        keys = [str(column.key.value) for column in table.ordered_columns]
        assert keys[-1] == "installed"
        assert screen.query_one("#kv").region.y == screen.query_one("#ctx").region.y
