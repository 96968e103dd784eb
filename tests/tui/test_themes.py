"""Themes: the TOML files load into Textual themes, bad files are skipped, the choice is saved."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widget import Widget

import gemmatui.tui
from gemmatui.core.config import Settings, load_settings
from gemmatui.tui.app import GemmaApp
from gemmatui.tui.themes import ThemeFileError, load_theme_file, load_themes, theme_dirs
from tests.tui.conftest import SIZE, ScriptedOllama, settle

ScriptedApp = Callable[..., GemmaApp]
OURS = ("gemma-dark", "gemma-light", "gemma-high-contrast")
HEX = re.compile(r"#[0-9a-fA-F]{3,8}\b")


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def test_the_shipped_themes_load() -> None:
    """themes/ holds a dark and a light Gemma theme and a high-contrast one, all valid."""
    found = load_themes()
    assert found.problems == ()
    assert set(OURS) <= set(found.themes)
    assert found.themes["gemma-dark"].dark is True
    assert found.themes["gemma-light"].dark is False
    assert found.themes["gemma-high-contrast"].text_alpha == 1.0
    assert {"gemma-dark", "textual-dark"} <= set(found.names())


def test_user_themes_override_and_bad_files_are_skipped(config_file: Path) -> None:
    """A user theme in <config dir>/themes is loaded (and may replace a shipped one by
    name); files that are not TOML, have unknown keys, bad colours or no primary are
    skipped, each with a reason naming the file."""
    user_dir = config_file.parent / "themes"
    assert theme_dirs()[-1] == user_dir
    _write(
        user_dir,
        "mine.toml",
        'name = "mine"\nprimary = "#112233"\ndark = false\n[variables]\nborder = "#445566 50%"\n',
    )
    _write(user_dir, "dark.toml", 'name = "gemma-dark"\nprimary = "red"\n')
    bad = {
        "broken.toml": "name = [",
        "extra.toml": 'name = "x"\nprimary = "red"\nsparkle = true\n',
        "colour.toml": 'name = "y"\nprimary = "not-a-colour"\n',
        "noprimary.toml": 'name = "z"\n',
        "variable.toml": 'name = "w"\nprimary = "red"\n[variables]\nborder = "loud"\n',
    }
    for name, text in bad.items():
        _write(user_dir, name, text)
    found = load_themes()
    assert found.themes["mine"].dark is False
    assert found.themes["mine"].variables == {"border": "#445566 50%"}
    assert found.themes["gemma-dark"].primary == "red"
    assert len(found.problems) == len(bad)
    for name in bad:
        assert any(str(user_dir / name) in problem for problem in found.problems)


def test_load_theme_file_says_what_is_wrong(tmp_path: Path) -> None:
    """The error names the key and the value."""
    path = _write(tmp_path, "t.toml", 'name = "t"\nprimary = "#12345"\n')
    with pytest.raises(ThemeFileError, match=r"primary = '#12345' is not a colour"):
        load_theme_file(path)


async def test_theme_switch_in_the_palette_is_saved(
    scripted_app: ScriptedApp, config_file: Path
) -> None:
    """ctrl+t lists our themes; choosing gemma-light applies it at once and writes
    theme = "gemma-light" to the config file (other keys untouched)."""
    config_file.parent.mkdir(parents=True)
    config_file.write_text('keep_alive = "30m"\n')
    app = scripted_app(ScriptedOllama())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.theme == "gemma-dark"
        await pilot.press("ctrl+t")
        await pilot.pause()
        await pilot.press(*"gemma-light")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.theme == "gemma-light"
        assert app.settings.theme == "gemma-light"
    assert load_settings(config_file) == Settings(keep_alive="30m", theme="gemma-light")


async def test_theme_from_the_command_line_is_not_saved(
    scripted_app: ScriptedApp, config_file: Path
) -> None:
    """--theme gemma-high-contrast (already in the settings) applies without writing the config."""
    app = scripted_app(ScriptedOllama(), settings=Settings(theme="gemma-high-contrast"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.theme == "gemma-high-contrast"
        assert app.current_theme.background == "#000000"
    assert not config_file.exists()


async def test_unknown_saved_theme_and_bad_user_file_are_reported_not_fatal(
    scripted_app: ScriptedApp, config_file: Path
) -> None:
    """A saved theme that no longer exists falls back to gemma-dark and a broken user
    theme file is skipped; both are told in a notification, the app runs, and the
    config file keeps the user's choice."""
    _write(config_file.parent / "themes", "broken.toml", "name = [")
    config_file.write_text('theme = "gone"\n')
    app = scripted_app(ScriptedOllama(), settings=Settings(theme="gone"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.theme == "gemma-dark"
        messages = [n.message for n in app._notifications]
        assert any("broken.toml" in m for m in messages)
        assert any("'gone'" in m for m in messages)
    assert load_settings(config_file) == Settings(theme="gone")


def _tui_css() -> list[tuple[str, str]]:
    sources = [
        (str(path), path.read_text()) for path in Path(gemmatui.tui.__file__).parent.rglob("*.tcss")
    ]
    for info in pkgutil.walk_packages(gemmatui.tui.__path__, "gemmatui.tui."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                isinstance(value, type)
                and issubclass(value, Widget)
                and value.__module__ == info.name
            ):
                sources.append((f"{info.name}.{name}", value.DEFAULT_CSS))
    return sources


def test_no_hard_coded_colours_in_css() -> None:
    """Every TCSS file and DEFAULT_CSS of the TUI takes its colours from theme variables."""
    sources = _tui_css()
    assert any(where.endswith("models.tcss") for where, _ in sources)
    offenders = [f"{where}: {match}" for where, css in sources for match in HEX.findall(css)]
    assert offenders == []
