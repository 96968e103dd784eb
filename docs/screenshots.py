"""Regenerate the SVG screenshots in docs/img/ that docs/tui.md shows.

Run from the repository root::

    .venv/bin/python docs/screenshots.py

Everything is fake: fixed hardware (a 24 GiB RTX 4090, or no GPU), and the loopback
fake Ollama of the tests (``tests/fake_ollama.py``), so no GPU, no Ollama and no
network are needed. Each screen is saved with ``App.save_screenshot``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402

from gemmatui.core.config import Settings  # noqa: E402
from gemmatui.core.hardware import StaticProbe  # noqa: E402
from gemmatui.core.ollama import OllamaClient  # noqa: E402
from gemmatui.core.storage import ConversationStore  # noqa: E402
from gemmatui.core.types import HardwareSnapshot  # noqa: E402
from gemmatui.tui.app import GemmaApp  # noqa: E402
from tests.fake_ollama import FakeOllama, closed_port_url  # noqa: E402
from tests.tui.conftest import GPU_24GB, NO_GPU  # noqa: E402

OUT = ROOT / "docs" / "img"
SIZE = (120, 36)

Steps = Callable[[GemmaApp, Pilot], Awaitable[None]]


async def shoot(
    name: str, url: str, steps: Steps, *, hardware: HardwareSnapshot = GPU_24GB, **settings: object
) -> None:
    """Start the app against ``url``, run ``steps``, save docs/img/<name>.svg."""
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["GEMMATUI_CONFIG"] = f"{scratch}/config.toml"
        store = ConversationStore(Path(scratch))
        client = OllamaClient(url, connect_timeout=1.0)
        app = GemmaApp(
            client=client,
            probe=StaticProbe(hardware),
            settings=Settings(**settings),  # type: ignore[arg-type]
            store=store,
            fit_env={},
            fit_env_source="defaults",
        )
        try:
            async with app.run_test(size=SIZE) as pilot:
                await settle(app, pilot)
                await steps(app, pilot)
                app.save_screenshot(f"{name}.svg", path=str(OUT))
        finally:
            await client.aclose()
            store.close()
    print(f"docs/img/{name}.svg")


async def settle(app: GemmaApp, pilot: Pilot, group: str = "ollama") -> None:
    await app.workers.wait_for_complete([w for w in app.workers if w.group == group])
    await pilot.pause()
    await pilot.pause()


async def nothing(app: GemmaApp, pilot: Pilot) -> None:
    """The first screen as it opens."""


def press(*keys: str) -> Steps:
    async def steps(app: GemmaApp, pilot: Pilot) -> None:
        await pilot.press(*keys)
        await pilot.pause()

    return steps


async def pull_half_way(app: GemmaApp, pilot: Pilot) -> None:
    """Enter on the recommended (not installed) variant, then wait a little."""
    await pilot.press("enter")
    await asyncio.sleep(2.0)
    await pilot.pause()


async def chat_reply(app: GemmaApp, pilot: Pilot) -> None:
    """Ask a question and wait for the whole reply and the panels."""
    await pilot.press(*"Why is the sky blue?")
    await pilot.press("enter")
    await asyncio.sleep(1.5)
    await settle(app, pilot, "chat")
    await asyncio.sleep(1.5)
    await pilot.pause()


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with FakeOllama(installed=["4b"], pull_steps=100, pull_step_seconds=0.04) as fake:
        await shoot("models", fake.url, nothing)
        await shoot("models-light", fake.url, nothing, theme="gemma-light")
        await shoot("pull", fake.url, pull_half_way)
        await shoot("help", fake.url, press("f1"))
    await shoot("models-ollama-down", closed_port_url(), nothing, hardware=NO_GPU)
    with FakeOllama(installed=["27b"], token_rate=60.0, tokens=80) as fake:
        await shoot("chat", fake.url, chat_reply, model="gemma3:27b-it-qat", num_ctx=32768)


if __name__ == "__main__":
    asyncio.run(main())
