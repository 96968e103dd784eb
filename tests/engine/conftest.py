"""The real-model tier: llama.cpp's server (xllamacpp) with the real Gemma 3 270M.

One server per module keeps the tier fast; tests that kill a server start their own.
The model is a base model that writes nonsense: tests assert on plumbing, counts and
memory, never on wording.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.llama_harness import RunningServer, Setting
from tests.real_model import model_path


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    log = tmp_path_factory.mktemp("llama") / "llama-server.log"
    server = RunningServer(model_path(), Setting(4096), log, n_predict=40)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_llama_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server of the test's own (to kill, say)."""
    server = RunningServer(model_path(), Setting(4096), tmp_path / "llama-server.log")
    try:
        yield server
    finally:
        server.stop()
