"""SVG snapshots of the chat screen with its live panels.

Fixed data only: conversations written to the store with a frozen wall clock (and the
time zone pinned to UTC for the sidebar's dates), a scripted Ollama, hardware readings
posted by the test (polling is off), a frozen monotonic clock and no blinking cursor.
Update with ``--snapshot-update`` only after looking at the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from gemmatui.core.config import Settings
from gemmatui.core.hardware import StaticProbe
from gemmatui.core.storage import ConversationStore
from gemmatui.core.types import ChatStats, HardwareSample, HardwareSnapshot
from gemmatui.core.units import GiB
from gemmatui.tui.app import GemmaApp
from gemmatui.tui.messages import GpuSampled
from gemmatui.tui.screens.chat import ChatScreen
from tests.tui.chat_host import (
    MODEL,
    NUM_CTX,
    STATS,
    ScriptedChatOllama,
    gpu_sample,
    ram_sample,
    running,
    until,
)
from tests.tui.conftest import GPU_24GB, NO_GPU, SIZE, settle

#: 2025-03-12 10:00 UTC, the wall clock of every saved message.
NOON = 1_741_773_600.0

REPLY = """## Why QAT models are smaller

Quantization-aware training teaches the model to work **at 4 bits**, so `Q4_0`
keeps almost all of the quality of the bf16 original:

| model | bf16 | QAT Q4_0 |
| --- | --- | --- |
| 12B | 24 GB | 8.9 GB |
| 27B | 54 GB | 18 GB |

```python
ollama.pull("gemma3:12b-it-qat")
```

Model output is text: [bold]not markup[/bold]."""

Build = Callable[..., GemmaApp]


@pytest.fixture
def build(tmp_path: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Build]:
    """An app whose store already holds conversations written by ``fill(store)``."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    stores: list[ConversationStore] = []

    def make(
        fill: Callable[[ConversationStore], None],
        *,
        client: ScriptedChatOllama,
        hardware: HardwareSnapshot = GPU_24GB,
    ) -> GemmaApp:
        ticks = iter(range(10_000))
        store = ConversationStore(tmp_path / "data", clock=lambda: NOON + 60 * next(ticks))
        fill(store)
        stores.append(store)
        return GemmaApp(
            client=client,  # type: ignore[arg-type]
            probe=StaticProbe(hardware),
            settings=Settings(),  # no saved model: the test opens the chat itself
            store=store,
            fit_env={},
            fit_env_source="test",
            config_path=config_file,
            clock=lambda: 500.0,
        )

    yield make
    for store in stores:
        store.close()
    monkeypatch.undo()
    time.tzset()


def open_chat(
    samples: list[HardwareSample], *, baseline_gib: float | None = None, sidebar: bool = False
) -> Callable[[Pilot], object]:
    """Open the chat with polling off, then feed it ``samples`` as if polled."""

    async def run_before(pilot: Pilot) -> None:
        app = pilot.app
        await settle(app, pilot, group="ollama")  # type: ignore[arg-type]
        screen = ChatScreen(MODEL, NUM_CTX, gpu_interval=None, ps_interval=None)
        await app.push_screen(screen)
        await until(
            pilot, lambda: screen.ps_answered or screen.query_one("VramPanel").ps_error is not None
        )
        screen.prompt.cursor_blink = False
        if baseline_gib is not None:
            screen.baseline_used = int(baseline_gib * GiB)
        for sample in samples:
            screen.post_message(GpuSampled(sample))
        if sidebar:
            await pilot.press("ctrl+b")
        else:
            screen.prompt.focus()
        await pilot.pause()

    return run_before


def _gpu_conversations(store: ConversationStore) -> None:
    conv = store.create_conversation(
        MODEL, system_prompt="Answer briefly; use tables when they help."
    )
    store.add_message(conv.id, "user", "Why are the QAT models so much smaller?")
    store.add_message(conv.id, "assistant", REPLY, stats=STATS, model=MODEL)
    store.add_message(conv.id, "user", "And how fast is 12B on a 4090?")
    store.add_message(
        conv.id, "assistant", "On an RTX 4090 the 12B QAT model", status="partial", model=MODEL
    )


def test_chat_gpu_with_live_panels(snap_compare, build: Build) -> None:
    """A restored conversation on a 24 GiB RTX 4090 (scrolled to its end): a reply
    rendered as Markdown (heading, bold, table, code; "[bold]not markup[/bold]" shown
    literally) with "412 tokens · 48.5 tok/s" in its header, and a reply marked
    "(stopped)". Panels: VRAM 6.3 of 24.0 GiB in green, util/temperature/power, a
    rising sparkline labelled "19s: 1.5 GiB-6.3 GiB", "Model on GPU: 4.6 GiB of 4.6
    GiB"; plan vs reality at 8k (4.3 GiB: weights, KV cache, compute rows), Ollama's
    figures +7.1 % in green and NVML's change (4.8 GiB) +11.8 % in the warning colour;
    tokens: 48.5 tok/s last reply, first token 4.10 s, prompt 1830 tok/s, generation
    48.5 tok/s, model load 3.25 s, context ≈1,778 / 8k in green (an estimate: the
    stopped reply after the last figures counts too)."""
    samples = [gpu_sample(1.5 + 4.8 * min(1, i / 12), t=float(i)) for i in range(20)]
    client = ScriptedChatOllama(running=[running(4.6, 4.6)])
    app = build(_gpu_conversations, client=client)
    assert snap_compare(app, terminal_size=SIZE, run_before=open_chat(samples, baseline_gib=1.5))


def _cpu_conversations(store: ConversationStore) -> None:
    old = store.create_conversation(MODEL)
    store.add_message(old.id, "user", "Plan a 3-day trip to Lisbon")
    store.add_message(old.id, "assistant", "Day 1: Alfama.", model=MODEL)
    named = store.create_conversation(MODEL, title="KV cache notes")
    store.add_message(named.id, "user", "What does q8_0 do to the KV cache?")
    conv = store.create_conversation(MODEL)
    store.add_message(conv.id, "user", "Summarise this long report for me.")
    full = ChatStats(
        eval_count=900, eval_duration_s=90.0, prompt_eval_count=6100, prompt_eval_duration_s=30.5
    )
    store.add_message(
        conv.id, "assistant", "The report covers three", status="error", stats=full, model=MODEL
    )
    store.add_message(conv.id, "error", "the connection to Ollama dropped during the reply")


def test_chat_without_gpu_sidebar_and_interrupted_reply(snap_compare, build: Build) -> None:
    """No GPU: the panel shows "No GPU found: system RAM" 9.5 / 32.0 GiB and "Model in
    RAM: 4.2 GiB"; plan vs reality says "no GPU to measure" for NVML. The reply cut off
    by Ollama is marked "(interrupted: the reply is incomplete)" with the error in words
    below it. The context gauge is at 7,000 / 8k in the warning colour with a warning
    line. The sidebar (Ctrl+B) lists three conversations newest first, the current one
    marked ●, with dates in UTC."""
    client = ScriptedChatOllama(running=[running(4.2, 0.0)])
    app = build(_cpu_conversations, client=client, hardware=NO_GPU)
    assert snap_compare(
        app, terminal_size=SIZE, run_before=open_chat([ram_sample(9.5)], sidebar=True)
    )


def test_chat_new_conversation_ollama_down(snap_compare, build: Build) -> None:
    """First start, nothing saved, Ollama not running: the red banner, an empty chat with
    the prompt's placeholder ("Enter sends, Ctrl+J adds a new line"), the VRAM bar at
    23.3 of 24.0 GiB in the error colour with an NVML error line, "Ollama: cannot
    reach…", the plan waiting for the model, and "No reply yet" in the tokens panel."""
    client = ScriptedChatOllama(up=False)
    app = build(lambda store: None, client=client)
    sample = gpu_sample(23.3, error="NVML: temperature not supported")
    assert snap_compare(app, terminal_size=SIZE, run_before=open_chat([sample]))
