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
        ("kv_cache_type = 'q5_1'", "q5_1"),
        ("theme = 3", "theme"),
    ],
)
def test_bad_files_give_one_line_usage_errors(tmp_path, body, needle):
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert needle in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value) and err.value.exit_code == EXIT_USAGE


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
