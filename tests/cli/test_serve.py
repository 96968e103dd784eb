"""``gemmatui serve``'s refusals, each one line with its exit code (the real start is in
tests/engine/test_cli_real.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gemmatui.cli import main
from gemmatui.core import launch
from tests.gguf_writer import gemma3_metadata, gemma3_tensors, gguf_bytes, write


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GEMMATUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return write(tmp_path / "tiny.gguf", gguf_bytes(gemma3_metadata(), gemma3_tensors()))


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(lines) == 1, lines
    return lines[0]


def test_no_llama_server_says_how_to_get_one(tiny: Path, monkeypatch, capsys) -> None:
    import importlib.util

    monkeypatch.setattr(launch.shutil, "which", lambda name: None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert main(["serve", str(tiny)]) == 1
    line = _error(capsys)
    assert "no llama-server found" in line and "pip install 'gemmatui[llamacpp]'" in line


def test_port_in_use_names_the_port(tiny: Path, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(tiny), "--port", str(port)]) == 1
    assert f"port {port} on 127.0.0.1 is in use" in _error(capsys)


def test_quantized_cache_without_flash_attention_is_refused_before_starting(
    tiny: Path, monkeypatch, capsys
) -> None:
    started = []
    monkeypatch.setattr(launch.EngineProcess, "start", lambda self: started.append(self))
    assert main(["serve", str(tiny), "--kv-cache", "q8_0", "--flash-attention", "off"]) == 2
    assert "a q8_0 KV cache needs flash attention" in _error(capsys)
    assert started == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "invalid --port '70000'"),
        (["--timeout", "0"], "invalid --timeout '0'"),
        (["--ctx", "lots"], "--ctx"),
        (["--parallel", "0"], "invalid --parallel '0'"),
    ],
)
def test_bad_options_are_usage_errors(tiny: Path, capsys, args: list[str], message: str) -> None:
    assert main(["serve", str(tiny), *args]) == 2
    assert message in _error(capsys)


def test_a_missing_template_is_named(tiny: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(launch.EngineProcess, "start", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    main(["serve", str(tiny), "--port", "0"])
    err = capsys.readouterr().err
    assert "tiny.gguf has no chat template; llama-server uses its built-in Gemma template" in err
    assert "--chat-template gemma" in err
