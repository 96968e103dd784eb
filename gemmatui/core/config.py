"""User settings: ``config.toml`` under platformdirs' user config dir.

Precedence everywhere: command-line flag > environment > this file > default.
``GEMMATUI_CONFIG`` points at another file (tests use it); ``GEMMATUI_DATA_DIR``
moves the data dir (chat history) the same way.

The file is only written when the user changes something, atomically (write a
temporary file beside it, fsync, rename), so a crash never leaves half a file and
a second running copy never reads one. Keys we do not know are kept as they are.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from gemmatui.core.errors import ConfigError, UsageError


APP_NAME = "gemmatui"


def config_path() -> Path:
    override = os.environ.get("GEMMATUI_CONFIG")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_config_path(APP_NAME, appauthor=False) / "config.toml"


def config_dir() -> Path:
    return config_path().parent


def data_dir() -> Path:
    override = os.environ.get("GEMMATUI_DATA_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return platformdirs.user_data_path(APP_NAME, appauthor=False)


@dataclass(frozen=True)
class Settings:
    """What the user chose. ``None`` means "not set here: use env or default"."""

    host: str | None = None  # Ollama server URL
    model: str | None = None  # e.g. "gemma3:27b-it-qat"
    num_ctx: int | None = None  # planned context; every chat request carries it
    kv_cache_type: str | None = None  # q8_0, f16 ... (what the server was started with)
    # Sent with every chat request: a Go duration ("10m", "1h", "0", "-1m") or seconds.
    keep_alive: str | int | float = "10m"
    theme: str = "gemma-dark"
    system_prompt: str = ""
    engine: str | None = None  # auto, ollama or llama-server (see resolve_engine)


_TYPES = {f.name: f.type for f in fields(Settings)}

# Go's time.ParseDuration, which Ollama uses for a keep_alive string, takes "0" or one
# or more <number><unit>, with an optional sign; the total must fit in int64 nanoseconds.
_NS_PER_UNIT = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,  # U+00B5 micro sign
    "μs": 10**3,  # U+03BC Greek mu
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_GO_DURATION_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_GO_DURATION = re.compile(rf"[-+]?(?:0|(?:{_GO_DURATION_PART.pattern})+)")
_MAX_DURATION_NS = 2**63 - 1


def _check_keep_alive(value: Any, path: Path) -> str | int | float:
    """``keep_alive`` as Ollama takes it: a number of seconds or a Go duration string.

    Args:
        value: The value as TOML gave it.
        path: The config file, named in the error.

    Returns:
        ``value`` unchanged: numbers stay numbers (Ollama reads them as seconds).

    Raises:
        ConfigError: Not a finite number nor a duration Go's ``time.ParseDuration``
            accepts (a bare ``"300"`` lacks its unit: Ollama answers 400 to it).
    """
    hint = 'use seconds (300) or a duration such as "10m", "1h", "0" or "-1m"'
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"{path}: keep_alive must be a finite number, not {value!r}; {hint}")
        return value
    if not isinstance(value, str) or not _GO_DURATION.fullmatch(value):
        raise ConfigError(f"{path}: keep_alive {value!r} is not a duration; {hint}")
    total = 0
    for number, unit in _GO_DURATION_PART.findall(value):
        whole, _, fraction = number.partition(".")
        scale = _NS_PER_UNIT[unit]
        total += int(whole or 0) * scale + int(fraction or 0) * scale // 10 ** len(fraction)
    if total > _MAX_DURATION_NS:
        raise ConfigError(f"{path}: keep_alive {value!r} is too long (at most about 292 years)")
    return value


def _check(key: str, value: Any, path: Path) -> Any:
    """Validate one setting read from (or about to be written to) ``path``.

    Args:
        key: The setting's name, one of :class:`Settings`' fields.
        value: Its value as TOML gave it (or as the caller passed it).
        path: The config file, named in every error.

    Returns:
        The value to keep (``num_ctx`` parsed to tokens, ``kv_cache_type`` normalised).

    Raises:
        ConfigError: The value is not valid for the key (one line naming the file and
            the key; ``host`` is checked with the same rules as ``--host``).
    """
    if key == "num_ctx":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{path}: num_ctx must be a number like 32768 or '32k'")
        from gemmatui.core.units import UnitError, parse_ctx

        try:
            return parse_ctx(value)
        except UnitError as err:
            raise ConfigError(f"{path}: {err}") from None
    if key == "kv_cache_type":
        if not isinstance(value, str):
            raise ConfigError(f"{path}: kv_cache_type must be a string, not {value!r}")
        from gemmatui.core.fit import parse_kv_type

        try:
            return parse_kv_type(value, what="kv_cache_type")
        except UsageError as err:
            raise ConfigError(f"{path}: {err}") from None
    if key == "keep_alive":
        return _check_keep_alive(value, path)
    if key == "engine":
        if not isinstance(value, str):
            raise ConfigError(f"{path}: engine must be a string, not {value!r}")
        try:
            return parse_engine(value)
        except UsageError as err:
            raise ConfigError(f"{path}: engine: {err}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{path}: {key} must be a string, not {value!r}")
    if key == "host":
        from gemmatui.core.hosts import parse_host

        try:
            parse_host(value)  # kept as written: resolve_host parses it when it is used
        except UsageError as err:
            raise ConfigError(f"{path}: host: {err}") from None
    return value


# --------------------------------------------------------------------------- engine

#: ``--engine`` / ``GEMMATUI_ENGINE`` / the config's ``engine``.
ENGINE_CHOICES = ("auto", "ollama", "llama-server")
_ENGINE_SPELLINGS = {"llamacpp": "llama-server", "llama.cpp": "llama-server", "llama-cpp": "llama-server"}


def parse_engine(value: str | None) -> str:
    """An engine name, checked and lower-cased (``llama.cpp`` means llama-server).

    Raises:
        UsageError: Not auto, ollama or llama-server.

    >>> parse_engine("Llama-Server"), parse_engine(None), parse_engine("llamacpp")
    ('llama-server', 'auto', 'llama-server')
    >>> parse_engine("vllm")
    Traceback (most recent call last):
    gemmatui.core.errors.UsageError: unknown engine 'vllm': choose one of auto, ollama, llama-server
    """
    if value is None or not value.strip():
        return "auto"
    text = value.strip().lower().replace("_", "-")
    text = _ENGINE_SPELLINGS.get(text, text)
    if text not in ENGINE_CHOICES:
        raise UsageError(f"unknown engine {value!r}: choose one of {', '.join(ENGINE_CHOICES)}")
    return text


def resolve_engine(
    flag: str | None, env: Mapping[str, str], settings: Settings | None = None
) -> tuple[str, str]:
    """Which engine to talk to: ``--engine``, then ``GEMMATUI_ENGINE``, then the config's
    ``engine``, then ``auto``. A blank value counts as not set.

    Returns:
        ``(engine, where)``: ``where`` is ``"--engine"``, ``"GEMMATUI_ENGINE"``,
        ``"config"`` or ``"default"``.

    Raises:
        UsageError: The flag or the environment names no engine (the config's value
            was checked when the file was read).

    >>> resolve_engine(None, {"GEMMATUI_ENGINE": "llama.cpp"}, Settings(engine="ollama"))
    ('llama-server', 'GEMMATUI_ENGINE')
    >>> resolve_engine(None, {}, Settings(engine="ollama")), resolve_engine(None, {})
    (('ollama', 'config'), ('auto', 'default'))
    """
    candidates = (
        (flag, "--engine"),
        (env.get("GEMMATUI_ENGINE"), "GEMMATUI_ENGINE"),
        (settings.engine if settings is not None else None, "config"),
    )
    for value, where in candidates:
        if value is not None and value.strip():
            try:
                return parse_engine(value), where
            except UsageError as err:
                raise UsageError(f"{where}: {err}") from None
    return "auto", "default"


def _tomllib() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib


def _read_table(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    tomllib = _tomllib()  # imported only when there is a file to read
    try:
        # "utf-8-sig": Windows editors (Notepad) may start the file with a byte-order mark.
        return tomllib.loads(data.decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err}); fix or delete the file") from None


def load_settings(path: Path | None = None) -> Settings:
    """Read the config file; a missing file gives the defaults."""
    path = path or config_path()
    table = _read_table(path)
    values = {k: _check(k, v, path) for k, v in table.items() if k in _TYPES}
    return Settings(**values)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    # TOML allows no other control characters (U+0000-U+001F, U+007F) in a string.
    escaped = "".join(
        f"\\u{ord(c):04x}" if c < " " or c == "\x7f" else c for c in escaped
    )
    return f'"{escaped}"'


def _dump(table: dict[str, Any]) -> str:
    lines = ["# gemmatui settings (written by gemmatui; edits are kept)"]
    nested: list[str] = []
    for key, value in table.items():
        if isinstance(value, dict):
            nested.append(key)
            continue
        if value is None:
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    for key in nested:
        lines.append("")
        lines.append(f"[{key}]")
        for sub_key, sub_value in table[key].items():
            if not isinstance(sub_value, dict) and sub_value is not None:
                lines.append(f"{sub_key} = {_toml_value(sub_value)}")
    return "\n".join(lines) + "\n"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def update_settings(path: Path | None = None, **changes: Any) -> Settings:
    """Change some keys in the file and return the new settings.

    Reads the file again right before writing, so keys another running copy saved
    meanwhile are kept; unknown keys and tables are kept as they were.
    """
    path = path or config_path()
    unknown = set(changes) - set(_TYPES)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    table = _read_table(path)
    for key, value in changes.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = _check(key, value, path)
    try:
        atomic_write_text(path, _dump(table))
    except OSError as err:
        raise ConfigError(f"{path}: cannot write ({err.strerror})") from None
    current = {k: v for k, v in table.items() if k in _TYPES}
    return replace(Settings(), **current)
