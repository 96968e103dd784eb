"""The pull screen: progress, rate and ETA; Esc with confirmation; errors in words; resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from textual.widgets import ProgressBar

from gemmatui.core.errors import OllamaError, OllamaPullError, OllamaTimeout, OllamaUnavailable
from gemmatui.core.types import PullProgress
from gemmatui.core.units import GiB
from gemmatui.tui.app import GemmaApp
from gemmatui.tui.screens.dialogs import ConfirmDialog
from gemmatui.tui.screens.pull import LayerProgress, PullScreen, describe_pull_error
from tests.fake_ollama import FakeOllama
from tests.tui.conftest import (
    LAYER,
    SIZE,
    SMALL,
    MakeApp,
    ScriptedOllama,
    SteppingClock,
    progress_script,
    settle,
)

TAG = "gemma3:1b-it-qat"


async def _open_pull(app: GemmaApp, pilot: object, tag: str = TAG) -> list[bool | None]:
    results: list[bool | None] = []
    await settle(app, pilot, group="ollama")
    app.push_screen(PullScreen(tag, size_bytes=1_000_000_000), results.append)
    await pilot.pause()  # type: ignore[attr-defined]
    return results


async def test_progress_rate_and_eta(scripted_app: Callable[..., GemmaApp]) -> None:
    """Mid-download: the status line, one bar per layer, the overall bar and
    "bytes of total · rate · about ETA left" from the app's clock (1 s per reading)."""
    client = ScriptedOllama(pull_script=progress_script()[:4])
    app = scripted_app(client, clock=SteppingClock(1.0))
    async with app.run_test(size=SIZE) as pilot:
        await _open_pull(app, pilot)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PullScreen)
        assert str(screen.query_one("#pull-status").render()) == f"pulling {LAYER[7:19]}"
        overall = screen.query_one("#overall", ProgressBar)
        assert (overall.total, overall.progress) == (4 * GiB, 2 * GiB)
        assert str(screen.query_one("#overall-text").render()) == (
            "2.1 GB of 4.3 GB · 1.1 GB/s · about 2s left"
        )
        layers = list(screen.query(LayerProgress))
        assert [layer.digest for layer in layers] == [LAYER]
        # One convention on the whole screen: decimal GB, as in the title's "about 4.0 GB".
        assert "GB of" in str(layers[0].query_one(".layer--bytes").render())
        assert "about 1.0 GB" in str(screen.query_one("#pull-title").render())
        assert screen.state == "running"
        assert app.check_action("quit", ())  # the app stays usable meanwhile


async def test_every_layer_gets_a_bar(scripted_app: Callable[..., GemmaApp]) -> None:
    """When the small layers arrive, each gets its own row under the big one."""
    client = ScriptedOllama(pull_script=progress_script())
    app = scripted_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await _open_pull(app, pilot)
        await pilot.pause()
        layers = list(app.screen.query(LayerProgress))
        assert [layer.digest for layer in layers] == [LAYER, SMALL]


async def test_escape_asks_first_then_stops_and_r_resumes(make_app: MakeApp) -> None:
    """Esc mid-pull asks; "n" keeps pulling, "y" stops it (the connection closes, the
    bytes stay). `r` resumes from there and the screen closes with success."""
    with FakeOllama(pull_steps=20, pull_step_seconds=0.25) as fake:
        app = make_app(fake.url)
        async with app.run_test(size=SIZE) as pilot:
            results = await _open_pull(app, pilot)
            screen = app.screen
            assert isinstance(screen, PullScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmDialog)
            await pilot.press("n")
            await pilot.pause()
            assert app.screen is screen and screen.state == "running"

            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert screen.state == "stopped"
            assert "press r to resume" in str(screen.query_one("#pull-message").render())
            assert await asyncio.to_thread(fake.wait_for_disconnect, 2.0)
            kept = fake.partial_bytes(TAG)
            assert kept > 0
            assert TAG not in fake.installed()

            fake.config.pull_step_seconds = 0.0
            await pilot.press("r")
            await settle(app, pilot, group="pull")
            assert results == [True]
            assert TAG in fake.installed()
            assert len(fake.bodies("/api/pull")) == 2


@pytest.mark.parametrize(
    ("kind", "tag", "words"),
    [
        (
            "disk_full",
            TAG,
            "The disk Ollama stores models on is full (gemma3:1b-it-qat needs about 1.0 GB)",
        ),
        ("unknown", "gemma3:99b-it-qat", "Ollama's registry has no model called gemma3:99b-it-qat"),
        ("dropped", TAG, "The pull broke off, but Ollama still answers at"),
    ],
)
async def test_failures_are_explained_and_can_be_retried(
    make_app: MakeApp, kind: str, tag: str, words: str
) -> None:
    """Disk full, an unknown model, a connection dropped mid-pull while Ollama runs on
    (nothing to restart: the words say so): the reason in words, `r` offered; after a
    disk-full or a drop, `r` resumes and succeeds. Esc goes back."""
    with FakeOllama(pull_steps=10) as fake:
        if kind == "disk_full":
            fake.add_fault("/api/pull", "error_line", after=3)
        elif kind == "dropped":
            fake.add_fault("/api/pull", "drop", after=3)
        app = make_app(fake.url)
        async with app.run_test(size=SIZE) as pilot:
            results = await _open_pull(app, pilot, tag)
            await settle(app, pilot, group="pull")
            screen = app.screen
            assert isinstance(screen, PullScreen)
            assert screen.state == "failed"
            message = str(screen.query_one("#pull-message").render())
            assert words in message
            assert screen.check_action("retry", ()) is True
            if kind == "unknown":
                await pilot.press("escape")
                await pilot.pause()
                assert results == [False]
                return
            await pilot.press("r")
            await settle(app, pilot, group="pull")
            assert results == [True]
            assert tag in fake.installed()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            OllamaPullError(
                TAG, "Ollama could not pull x: write /blobs/sha256-partial: no space left on device"
            ),
            "The disk Ollama stores models on is full (gemma3:1b-it-qat needs about 1.0 GB). "
            "Free some space, then press r to resume",
        ),
        (
            OllamaPullError(
                TAG, "Ollama could not pull x: pull model manifest: file does not exist"
            ),
            "Ollama's registry has no model called gemma3:1b-it-qat.",
        ),
        (
            OllamaUnavailable("cannot reach Ollama at http://h:1"),
            "Ollama stopped answering at http://h:1. Start it again with `ollama serve`",
        ),
        (
            OllamaTimeout("Ollama at http://h:1 sent nothing for 300 s"),
            "Ollama stopped sending progress.",
        ),
        (OllamaError("something odd"), "The pull failed. Press r to try again.\nsomething odd"),
    ],
)
def test_describe_pull_error(error: OllamaError, expected: str) -> None:
    """Each kind of failure gets its own advice, and Ollama's own words after it."""
    text = describe_pull_error(error, TAG, "http://h:1", 1_000_000_000)
    assert text.startswith(expected)
    assert str(error) in text


@pytest.mark.parametrize(
    ("server_up", "expected"),
    [
        (True, "The pull broke off, but Ollama still answers at http://h:1: press r to resume"),
        (False, "Ollama stopped answering at http://h:1. Start it again with `ollama serve`"),
        (None, "Ollama stopped answering at http://h:1. Start it again with `ollama serve`"),
    ],
)
def test_a_dropped_pull_names_ollama_serve_only_when_the_server_is_down(
    server_up: bool | None, expected: str
) -> None:
    err = OllamaError("the connection to Ollama dropped while pulling gemma3:1b-it-qat")
    text = describe_pull_error(err, TAG, "http://h:1", server_up=server_up)
    assert text.startswith(expected)


class GatedPull(ScriptedOllama):
    """A pull that sends its first line, then the rest only once :attr:`gate` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def pull(self, model: str) -> AsyncIterator[PullProgress]:
        lines = progress_script()
        yield lines[0]
        await self.gate.wait()
        for line in lines[1:]:
            yield line
        await asyncio.Event().wait()


async def test_progress_after_the_widgets_are_gone_is_ignored(
    scripted_app: Callable[..., GemmaApp],
) -> None:
    """While the app closes, the screen's widgets go before its worker is cancelled;
    progress arriving in between (a new layer included) must not raise."""
    client = GatedPull()
    app = scripted_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await _open_pull(app, pilot)
        screen = app.screen
        assert isinstance(screen, PullScreen)
        await screen.query_one("#pull-box").remove()
        client.gate.set()
        await pilot.pause()
        assert screen.state == "running"  # run_test re-raises a failed worker on exit


async def test_quitting_mid_download_asks_first(scripted_app: Callable[..., GemmaApp]) -> None:
    """`q` (or ctrl+q) while a pull runs asks first: "n" keeps the download going; "y"
    quits."""
    client = ScriptedOllama(pull_script=progress_script()[:4])  # then holds: mid-download
    app = scripted_app(client)
    async with app.run_test(size=SIZE) as pilot:
        await _open_pull(app, pilot)
        screen = app.screen
        assert isinstance(screen, PullScreen) and screen.state == "running"
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "still downloading" in str(app.screen.query_one(".confirm--message").render())
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen and screen.state == "running" and app.is_running
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await pilot.pause()
        assert not app.is_running
