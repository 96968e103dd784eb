"""Config file: defaults, validation, atomic writes that keep what they do not know."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemmatui.core.config import Settings, config_path, load_settings, update_settings
from gemmatui.core.errors import EXIT_USAGE, ConfigError


def test_missing_file_gives_defaults(tmp_path):
    assert load_settings(tmp_path / "none.toml") == Settings()


def test_env_var_points_at_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GEMMATUI_CONFIG", str(tmp_path / "c.toml"))
    assert config_path() == tmp_path / "c.toml"


def test_update_round_trips_and_keeps_unknown_keys(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('future_key = "kept"\n[plugins]\nx = 1\n', encoding="utf-8")
    s = update_settings(path, model="gemma3:27b-it-qat", num_ctx="32k")
    assert s.model == "gemma3:27b-it-qat" and s.num_ctx == 32768
    text = path.read_text(encoding="utf-8")
    assert 'future_key = "kept"' in text and "[plugins]" in text and "x = 1" in text
    assert load_settings(path) == s
    assert update_settings(path, model=None).model is None


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("num_ctx = [", "not valid TOML"),
        ("num_ctx = 'lots'", "'lots'"),
        ("num_ctx = true", "num_ctx"),
        ("kv_cache_type = 'q3_k'", "q3_k"),
        ("kv_cache_type = 8", "kv_cache_type"),
        ("theme = 3", "theme"),
        ("keep_alive = '300'", "'300'"),  # Go's ParseDuration: "missing unit"
        ("keep_alive = '-1'", "'-1'"),
        ("keep_alive = ''", "keep_alive"),
        ("keep_alive = '5 m'", "'5 m'"),
        ("keep_alive = '5min'", "'5min'"),
        ("keep_alive = '1e3s'", "'1e3s'"),
        ("keep_alive = '.s'", "'.s'"),
        ("keep_alive = '3000000h'", "too long"),  # past int64 nanoseconds
        ("keep_alive = nan", "finite"),
        ("keep_alive = -inf", "finite"),
        ("keep_alive = true", "keep_alive"),
        ("host = 'ftp://example.com'", "host"),
        ("host = 'example.com:99999'", "host"),
        ("host = 'exa mple.com'", "host"),
    ],
)
def test_bad_files_give_one_line_usage_errors(tmp_path, body, needle):
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert needle in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value) and err.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    ("body", "value"),
    [
        ("keep_alive = 300", 300),  # seconds stay a number: Ollama rejects "300"
        ("keep_alive = -1", -1),
        ("keep_alive = 0", 0),
        ("keep_alive = 90.5", 90.5),
        ("keep_alive = '0'", "0"),
        ("keep_alive = '-1m'", "-1m"),
        ("keep_alive = '1h30m'", "1h30m"),
        ("keep_alive = '1.5h'", "1.5h"),
        ("keep_alive = '.5s'", ".5s"),
        ("keep_alive = '+250ms'", "+250ms"),
        ("keep_alive = '10µs'", "10µs"),
        ("keep_alive = '2562047h'", "2562047h"),  # the longest whole hours Go takes
    ],
)
def test_keep_alive_is_seconds_or_a_go_duration(tmp_path, body, value):
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    keep_alive = load_settings(path).keep_alive
    assert keep_alive == value and type(keep_alive) is type(value)


def test_keep_alive_in_seconds_is_written_back_as_a_number(tmp_path):
    path = tmp_path / "config.toml"
    assert update_settings(path, keep_alive=600).keep_alive == 600
    assert "keep_alive = 600\n" in path.read_text(encoding="utf-8")
    assert load_settings(path).keep_alive == 600
    with pytest.raises(ConfigError, match="'600'"):
        update_settings(path, keep_alive="600")


def test_kv_cache_type_is_checked_by_the_fits_own_parser(tmp_path, monkeypatch):
    import gemmatui.core.fit as fit

    path = tmp_path / "config.toml"
    path.write_text("kv_cache_type = ' Q8_0 '", encoding="utf-8")
    assert load_settings(path).kv_cache_type == "q8_0"  # normalised like --kv-cache
    seen: list[str] = []

    def parse_kv_type(value: str, *, what: str = "KV cache type") -> str:
        seen.append(value)
        return "widened"

    monkeypatch.setattr(fit, "parse_kv_type", parse_kv_type)
    path.write_text("kv_cache_type = 'iq4_nl'", encoding="utf-8")
    assert load_settings(path).kv_cache_type == "widened" and seen == ["iq4_nl"]


def test_unknown_setting_is_refused(tmp_path):
    with pytest.raises(ConfigError):
        update_settings(tmp_path / "c.toml", colour="red")


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    update_settings(path, theme="gemma-light")
    import os

    def boom(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(ConfigError, match="cannot write"):
        update_settings(path, theme="gemma-dark")
    assert load_settings(path).theme == "gemma-light"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temp files left


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_any_system_prompt_round_trips(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    assert update_settings(path, system_prompt=text).system_prompt == text
    assert load_settings(path).system_prompt == text


def _writer(path: str, key: str, values: list[str]) -> None:
    for value in values:
        update_settings(Path(path), **{key: value})


def test_two_processes_writing_never_leave_a_broken_file(tmp_path):
    path = tmp_path / "config.toml"
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_writer, args=(str(path), "theme", [f"t{i}" for i in range(40)])),
        ctx.Process(target=_writer, args=(str(path), "system_prompt", [f"p{i}" for i in range(40)])),
    ]
    for p in procs:
        p.start()
    for _ in range(200):
        load_settings(path)  # never half a file
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    final = load_settings(path)
    assert final.theme == "t39" or final.system_prompt == "p39"


def test_a_byte_order_mark_is_accepted(tmp_path):
    """Windows editors (Notepad) may save UTF-8 with a byte-order mark."""
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf" + 'num_ctx = "32k"\nhost = "127.0.0.1:11500"\n'.encode())
    assert load_settings(path) == Settings(num_ctx=32768, host="127.0.0.1:11500")
    update_settings(path, model="gemma3:4b-it-qat")  # rewritten without it, keys kept
    assert load_settings(path).num_ctx == 32768


def test_a_bad_host_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('host = "http://127.0.0.1:99999"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value).startswith(f"{path}: host: ")
    assert "99999" in str(err.value) and err.value.exit_code == EXIT_USAGE
    with pytest.raises(ConfigError, match="host"):
        update_settings(tmp_path / "other.toml", host="ftp://example.com")
    assert not (tmp_path / "other.toml").exists()


@pytest.mark.parametrize(
    "host", ["", "example.com", ":8080", "https://example.com/ollama/", "[::1]"]
)
def test_good_hosts_are_kept_as_written(tmp_path, host):
    path = tmp_path / "config.toml"
    path.write_text(f'host = "{host}"\n', encoding="utf-8")
    assert load_settings(path).host == host
