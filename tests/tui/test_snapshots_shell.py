"""SVG snapshots of the shell: the model screen, the pull view, help and dialogs.

Fixed data only: static hardware, a scripted Ollama (fixed installed list, scripted
pull), a clock that moves one second per reading, no blinking cursors on these
screens. Update with ``--snapshot-update`` only after looking at the report.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot

from gemmatui.core.config import Settings
from gemmatui.core.errors import OllamaPullError
from gemmatui.tui.app import GemmaApp
from gemmatui.tui.screens.pull import PullScreen
from tests.tui.conftest import (
    GPU_8GB,
    GPU_24GB,
    NO_GPU,
    SIZE,
    ScriptedOllama,
    SteppingClock,
    progress_script,
    settle,
)

ScriptedApp = Callable[..., GemmaApp]


async def _ready(pilot: Pilot) -> None:
    await settle(pilot.app, pilot, group="ollama")  # type: ignore[arg-type]


def _open_pull(tag: str) -> Callable[[Pilot], object]:
    async def run_before(pilot: Pilot) -> None:
        await _ready(pilot)
        pilot.app.push_screen(PullScreen(tag, size_bytes=4_000_000_000))
        await pilot.pause()
        await pilot.pause()

    return run_before


def test_models_first_run_24gb(snap_compare, scripted_app: ScriptedApp) -> None:
    """First run on a 24 GiB RTX 4090, nothing installed: hardware card (name, VRAM
    total/free/usable, driver, CUDA), 32k and f16 selected, four rows with stacked bars
    against 23.1 GiB, ★ and the cursor on Gemma 3 27B, its reason and details below."""
    app = scripted_app(ScriptedOllama(), hardware=GPU_24GB)
    assert snap_compare(app, terminal_size=SIZE, run_before=_ready)


def test_models_8gb_after_changing_context_and_kv(snap_compare, scripted_app: ScriptedApp) -> None:
    """An 8 GiB RTX 4060 with 4B installed, after `]` (8k) and `k` (q8_0): 12B and 27B
    spill past the budget (hatched) with partial offload, 4B shows "✓ yes", and a
    warning says to restart Ollama with OLLAMA_KV_CACHE_TYPE=q8_0."""
    app = scripted_app(ScriptedOllama(installed=["4b"]), hardware=GPU_8GB)
    assert snap_compare(
        app, terminal_size=SIZE, run_before=_ready, press=["right_square_bracket", "k"]
    )


def test_models_no_gpu_ollama_down(snap_compare, scripted_app: ScriptedApp) -> None:
    """No GPU and Ollama not running: the red banner names http://127.0.0.1:11434 and
    `ollama serve`, the card says "CPU only" with the RAM, bars are against the available
    RAM, the Installed column shows "?" and the footer offers `r` Retry Ollama."""
    app = scripted_app(ScriptedOllama(up=False), hardware=NO_GPU)
    assert snap_compare(app, terminal_size=SIZE, run_before=_ready)


def test_models_light_theme(snap_compare, scripted_app: ScriptedApp) -> None:
    """The first-run screen in gemma-light: dark text on a light background, same layout."""
    app = scripted_app(ScriptedOllama(), hardware=GPU_24GB, settings=Settings(theme="gemma-light"))
    assert snap_compare(app, terminal_size=SIZE, run_before=_ready)


def test_pull_in_progress(snap_compare, scripted_app: ScriptedApp) -> None:
    """Pulling gemma3:4b-it-qat: status "pulling ab12ab12ab12", the overall bar at 50 %
    with "2.0 GiB of 4.0 GiB · 1.0 GiB/s · about 2s left", one layer row; the footer
    offers Esc Stop."""
    client = ScriptedOllama(pull_script=progress_script()[:4])
    app = scripted_app(client, clock=SteppingClock(1.0))
    assert snap_compare(app, terminal_size=SIZE, run_before=_open_pull("gemma3:4b-it-qat"))


def test_pull_stop_confirmation(snap_compare, scripted_app: ScriptedApp) -> None:
    """Esc during a pull: a dialog asks "Stop the download?", says the downloaded part is
    kept, with "Keep pulling" and a focused "Stop"."""
    client = ScriptedOllama(pull_script=progress_script())
    app = scripted_app(client, clock=SteppingClock(1.0))
    assert snap_compare(
        app, terminal_size=SIZE, run_before=_open_pull("gemma3:4b-it-qat"), press=["escape"]
    )


def test_pull_failed_disk_full(snap_compare, scripted_app: ScriptedApp) -> None:
    """A pull that ran out of disk: both layer rows as far as they got, and a red block
    saying the disk is full, how much the model needs, and that `r` resumes; the footer
    offers Esc Back and r Retry."""
    error = OllamaPullError(
        "gemma3:4b-it-qat",
        "Ollama could not pull gemma3:4b-it-qat: write /usr/share/ollama/.ollama/models/blobs/"
        "sha256-partial: no space left on device (run the pull again to resume once this is fixed)",
    )
    client = ScriptedOllama(pull_script=progress_script(), pull_error=error)
    app = scripted_app(client, clock=SteppingClock(1.0))
    assert snap_compare(app, terminal_size=SIZE, run_before=_open_pull("gemma3:4b-it-qat"))


def test_help_screen(snap_compare, scripted_app: ScriptedApp) -> None:
    """F1: the key table over the model screen, grouped Everywhere / Model screen / Pull /
    Chat / Dialogs."""
    app = scripted_app(ScriptedOllama())
    assert snap_compare(app, terminal_size=SIZE, run_before=_ready, press=["f1"])
