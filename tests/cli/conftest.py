"""Run ``python -m gemmatui`` in a subprocess against a fake Ollama, with a private home."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fake_ollama import FakeOllama

REPO = Path(__file__).resolve().parents[2]

Run = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    """A fake Ollama with gemma3:4b-it-qat installed."""
    with FakeOllama(installed=["4b"]) as server:
        yield server


@pytest.fixture
def cli_env(tmp_path: Path, fake: FakeOllama) -> dict[str, str]:
    """The environment of a gemmatui subprocess: the fake as OLLAMA_HOST, a private
    home, config and data dir, and none of the caller's other OLLAMA_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "GEMMATUI_"))}
    env.update(
        OLLAMA_HOST=fake.url,
        GEMMATUI_CONFIG=str(tmp_path / "config" / "config.toml"),
        GEMMATUI_DATA_DIR=str(tmp_path / "data"),
        HOME=str(tmp_path),
        PYTHONPATH=str(REPO),
        NO_COLOR="1",
    )
    return env


@pytest.fixture
def gemmatui(cli_env: dict[str, str]) -> Run:
    """``gemmatui(*args, input=None, env=None)`` runs the CLI and returns the finished process.

    Without ``input`` stdin is /dev/null (not a terminal, empty).
    """

    def run(
        *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
    ):
        return subprocess.run(
            [sys.executable, "-m", "gemmatui", *args],
            cwd=REPO,
            env={**cli_env, **(env or {})},
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


def write_config(env: dict[str, str], text: str) -> None:
    path = Path(env["GEMMATUI_CONFIG"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
