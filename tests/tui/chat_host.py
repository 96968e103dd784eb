"""What the chat tests share: waiting for a condition, reading what a widget shows,
fixed hardware readings, and a scripted Ollama for the snapshot tests.

The Pilot tests drive the real :class:`~gemmatui.tui.app.GemmaApp` against the HTTP
fake (:mod:`tests.fake_ollama`); the snapshots use :class:`ScriptedChatOllama`
instead, so nothing they show depends on a server's timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget

from gemmatui.core.types import ChatStats, GpuSample, HardwareSample, RunningModel
from gemmatui.core.units import GiB
from tests.tui.conftest import ScriptedOllama

MODEL = "gemma3:4b-it-qat"
NUM_CTX = 8192


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until ``condition()`` holds; fail the test after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        await pilot.pause(0.02)


def shown_text(root: Widget) -> str:
    """The text ``root`` and every visible widget inside it render, line by line.

    This is what a person reads on screen (markup already applied), so a literal
    ``[bold]`` in it means the text was not taken as markup.
    """
    lines: list[str] = []
    for widget in (root, *root.query("*")):
        if not widget.display or not widget.size.area:
            continue
        width, height = widget.size
        for strip in widget.render_lines(Region(0, 0, width, height)):
            lines.append(strip.text.rstrip())
    return "\n".join(line for line in lines if line)


def gpu_sample(
    used_gib: float, *, total_gib: float = 24, t: float = 0.0, error: str | None = None
) -> HardwareSample:
    """One NVIDIA RTX 4090 reading with ``used_gib`` GiB in use."""
    gpu = GpuSample(
        index=0,
        name="NVIDIA GeForce RTX 4090",
        used_bytes=int(used_gib * GiB),
        total_bytes=int(total_gib * GiB),
        utilization_pct=87,
        temperature_c=64,
        power_w=312.0,
        power_limit_w=450.0,
    )
    return HardwareSample(
        timestamp=t, gpus=(gpu,), ram_used_bytes=12 * GiB, ram_total_bytes=64 * GiB, error=error
    )


def ram_sample(used_gib: float = 9.5, *, error: str | None = None) -> HardwareSample:
    """A reading on a machine without a GPU: system RAM only."""
    return HardwareSample(
        timestamp=0.0,
        gpus=(),
        ram_used_bytes=int(used_gib * GiB),
        ram_total_bytes=32 * GiB,
        error=error,
    )


def running(size_gib: float, vram_gib: float, model: str = MODEL) -> RunningModel:
    """An ``/api/ps`` row for ``model``."""
    return RunningModel(
        name=model,
        size_bytes=int(size_gib * GiB),
        size_vram_bytes=int(vram_gib * GiB),
        context_length=NUM_CTX,
    )


STATS = ChatStats(
    eval_count=412,
    eval_duration_s=412 / 48.5,
    prompt_eval_count=1350,
    prompt_eval_duration_s=1350 / 1830.0,
    load_duration_s=3.25,
    total_duration_s=13.0,
    done_reason="stop",
    time_to_first_token_s=4.1,
)


class ScriptedChatOllama(ScriptedOllama):
    """The shell's scripted Ollama, with 4B installed and ``ps()`` reporting ``running``."""

    def __init__(self, *, running: Sequence[RunningModel] = (), up: bool = True) -> None:
        super().__init__(installed=["4b"], up=up)
        self.running = list(running)

    async def ps(self) -> list[RunningModel]:
        self._check()
        return list(self.running)
