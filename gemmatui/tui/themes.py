"""Colour themes: ``themes/*.toml`` data files turned into Textual themes.

Each file holds the fields of :class:`textual.theme.Theme` (``name``, ``primary``,
``secondary``, ``accent``, ``foreground``, ``background``, ``surface``, ``panel``,
``success``, ``warning``, ``error``, ``dark`` ...) and an optional ``[variables]``
table that overrides Textual's derived design variables (``footer-key-foreground``,
``block-cursor-text-style`` ...).

Themes are looked for in three places, later ones winning when two files share a name:

1. the checkout's ``themes/`` (an editable install does not apply the wheel's mapping);
2. the copy packaged in the wheel, ``gemmatui/themes``;
3. the user's own, ``<config dir>/themes`` (next to ``config.toml``).

A file that cannot be read or is not a valid theme is skipped; the reason is kept in
:attr:`ThemeSet.problems` so the app can tell the user, and nothing crashes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.css.constants import VALID_STYLE_FLAGS
from textual.theme import BUILTIN_THEMES, Theme

from gemmatui.core.config import config_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_THEME = "gemma-dark"

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_COLOUR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)
_NUMBER_FIELDS = ("luminosity_spread", "text_alpha")
_KNOWN_FIELDS = {"name", "dark", "variables", *_COLOUR_FIELDS, *_NUMBER_FIELDS}


class ThemeFileError(ValueError):
    """A theme file is unreadable or not a valid theme; the message names the file."""


@dataclass(frozen=True)
class ThemeSet:
    """The themes found on disk.

    Attributes:
        themes: Theme by name, in the order found (later files replaced earlier ones).
        problems: One line per file that was skipped, saying why.
    """

    themes: dict[str, Theme] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def names(self) -> list[str]:
        """Every theme name the app accepts: ours, the user's and Textual's built-ins."""
        return sorted({*self.themes, *BUILTIN_THEMES})


def theme_dirs() -> list[Path]:
    """Where theme files live, lowest precedence first (see the module docstring)."""
    dirs = []
    checkout = _PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file():
        dirs.append(checkout / "themes")
    dirs.append(_PACKAGE_DIR / "themes")
    dirs.append(config_dir() / "themes")
    return dirs


def _colour(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not _is_colour(value):
        raise ThemeFileError(f'{path}: {key} = {value!r} is not a colour like "#6C8CFF"')
    return value


def _variable(path: Path, key: str, value: Any) -> str:
    """Accept what Textual's CSS can take for a design variable: a colour, a colour
    with an alpha percentage (``"#FFFFFF 50%"``), or text-style words (``"bold reverse"``)."""
    if not isinstance(key, str) or not isinstance(value, str) or not value.strip():
        raise ThemeFileError(f"{path}: [variables] {key} must be a non-empty string")
    words = value.split()
    if all(word in VALID_STYLE_FLAGS for word in words):
        return value
    with_alpha = len(words) == 2 and words[1].endswith("%") and words[1][:-1].isdigit()
    if (len(words) == 1 or with_alpha) and (words[0] == "auto" or _is_colour(words[0])):
        return value
    raise ThemeFileError(f"{path}: [variables] {key} = {value!r} is not a colour or a text style")


def _is_colour(text: str) -> bool:
    try:
        Color.parse(text)
    except ColorParseError:
        return False
    return True


def theme_from_table(table: dict[str, Any], path: Path) -> Theme:
    """Check one parsed TOML table and build the Theme.

    Args:
        table: The file's contents.
        path: Where it came from (for the error messages).

    Raises:
        ThemeFileError: A key is unknown, missing or has a value of the wrong kind.
    """
    unknown = sorted(set(table) - _KNOWN_FIELDS)
    if unknown:
        raise ThemeFileError(f"{path}: unknown key(s) {', '.join(unknown)}")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeFileError(f'{path}: needs a name, e.g. name = "my-theme"')
    if "primary" not in table:
        raise ThemeFileError(f"{path}: needs at least a primary colour")
    values: dict[str, Any] = {"name": name.strip()}
    for key in _COLOUR_FIELDS:
        if key in table:
            values[key] = _colour(path, key, table[key])
    for key in _NUMBER_FIELDS:
        if key in table:
            number = table[key]
            if (
                isinstance(number, bool)
                or not isinstance(number, (int, float))
                or not 0 <= number <= 1
            ):
                raise ThemeFileError(f"{path}: {key} must be a number from 0 to 1")
            values[key] = float(number)
    if "dark" in table:
        if not isinstance(table["dark"], bool):
            raise ThemeFileError(f"{path}: dark must be true or false")
        values["dark"] = table["dark"]
    variables = table.get("variables", {})
    if not isinstance(variables, dict):
        raise ThemeFileError(f"{path}: [variables] must be a table")
    values["variables"] = {key: _variable(path, key, value) for key, value in variables.items()}
    return Theme(**values)


def load_theme_file(path: Path) -> Theme:
    """Read and check one theme file.

    Raises:
        ThemeFileError: The file cannot be read, is not TOML, or is not a valid theme.
    """
    try:
        with path.open("rb") as fh:
            table = tomllib.load(fh)
    except OSError as err:
        raise ThemeFileError(f"{path}: cannot read ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise ThemeFileError(f"{path}: not valid TOML ({err})") from None
    return theme_from_table(table, path)


def load_themes(dirs: Iterable[Path] | None = None) -> ThemeSet:
    """Load every ``*.toml`` in ``dirs`` (default :func:`theme_dirs`), skipping bad files.

    Missing directories are fine. Within a directory files load in name order; a
    later file replaces an earlier theme of the same name.
    """
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for directory in theme_dirs() if dirs is None else dirs:
        try:
            paths = sorted(directory.glob("*.toml"))
        except OSError as err:
            problems.append(f"{directory}: cannot list ({err.strerror})")
            continue
        for path in paths:
            try:
                theme = load_theme_file(path)
            except ThemeFileError as err:
                problems.append(str(err))
                continue
            themes[theme.name] = theme
    return ThemeSet(themes, tuple(problems))
