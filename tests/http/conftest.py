"""Fixtures for the Ollama client tests: a fresh fake server and a client with short timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from gemmatui.core.ollama import OllamaClient
from tests.fake_ollama import FakeOllama


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    """A fake Ollama with gemma3:4b-it-qat installed, replying as fast as it can."""
    with FakeOllama(installed=["4b"]) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOllama) -> AsyncIterator[OllamaClient]:
    """A client of ``fake`` whose reads give up after one second."""
    async with OllamaClient(fake.url, connect_timeout=1.0, read_timeout=1.0) as ollama:
        yield ollama
