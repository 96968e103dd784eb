"""The live panels beside the chat: VRAM, plan against reality, tokens.

Widget tests mount one panel in a tiny App and feed it fixed data; screen tests run
the real app with scripted hardware readings and check how the chat polls them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from textual.app import App, ComposeResult
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from gemmatui.core.config import Settings
from gemmatui.core.fit import FitSettings, plan
from gemmatui.core.types import ChatStats, HardwareSample, RunningModel
from gemmatui.core.units import GiB
from gemmatui.tui.messages import GpuSampled, ModelsPolled
from gemmatui.tui.screens.chat import FAST_POLLS, STEADY_SLOWDOWN, ChatScreen
from gemmatui.tui.widgets.meter import Meter
from gemmatui.tui.widgets.plan_panel import Measured, PlanPanel, percent_error
from gemmatui.tui.widgets.token_panel import TokenPanel
from gemmatui.tui.widgets.vram_panel import NO_GPU_TITLE, STEADY_HISTORY_REDRAW, VramPanel
from tests.fake_ollama import FakeOllama
from tests.tui.chat_host import MODEL, NUM_CTX, gpu_sample, ram_sample, running, shown_text, until
from tests.tui.conftest import GPU_24GB, SIZE, MakeApp


class PanelHost(App[None]):
    """Mounts one panel, 42 cells wide, as the chat screen does."""

    CSS = "Screen { layout: horizontal; } #host { width: 42; height: auto; }"

    def __init__(self, panel: object) -> None:
        super().__init__()
        self.panel = panel

    def compose(self) -> ComposeResult:
        self.panel.id = "host"  # type: ignore[attr-defined]
        yield self.panel  # type: ignore[misc]


# --------------------------------------------------------------------------- VRAM


@pytest.mark.parametrize(
    ("used_gib", "level"),
    [(10, "ok"), (21, "warning"), (23.2, "error")],
)
async def test_vram_bar_colour_follows_headroom(used_gib: float, level: str) -> None:
    """Used/total bar: green with room to spare, warning from 85 %, error from 95 %."""
    panel = VramPanel(MODEL)
    async with PanelHost(panel).run_test(size=(60, 20)) as pilot:
        panel.show_sample(gpu_sample(used_gib))
        await pilot.pause()
        meter = panel.query_one(Meter)
        assert meter.level == level
        text = shown_text(panel)
        assert "GPU 0 · NVIDIA GeForce RTX 4090" in text
        assert "/ 24.0 GiB" in text
        assert "util 87 %  64 °C  312 / 450 W" in text


async def test_vram_history_is_bounded_and_shows_its_range() -> None:
    """The sparkline keeps the last samples only and labels the time they span and the
    range of memory in use."""
    panel = VramPanel(MODEL, history=30)
    async with PanelHost(panel).run_test(size=(60, 20)) as pilot:
        for i in range(100):
            panel.show_sample(gpu_sample(4 + (i % 10) / 10, t=float(i)))
        await pilot.pause()
        assert len(panel.history) == 30
        assert "29s: 4.0 GiB-4.9 GiB" in shown_text(panel)


async def test_vram_panel_warns_when_part_of_the_model_is_on_the_cpu() -> None:
    """size_vram < size: the panel says how much sits on the CPU."""
    panel = VramPanel(MODEL)
    async with PanelHost(panel).run_test(size=(60, 20)) as pilot:
        panel.show_sample(gpu_sample(23.0))
        panel.show_models([running(20.0, 16.5)])
        await pilot.pause()
        text = shown_text(panel)
        assert "Model on GPU: 16.5 GiB of 20.0 GiB" in text
        assert "⚠ 3.5 GiB on CPU: partial offload" in text
        panel.show_models([running(20.0, 20.0)])
        await pilot.pause()
        assert "on CPU" not in shown_text(panel)


async def test_vram_panel_without_a_gpu_shows_ram_labelled_as_such() -> None:
    """No GPU: system RAM instead, labelled, and the model's size in RAM."""
    panel = VramPanel(MODEL)
    async with PanelHost(panel).run_test(size=(60, 20)) as pilot:
        panel.show_sample(ram_sample(9.5))
        panel.show_models([running(4.2, 0.0)])
        await pilot.pause()
        text = shown_text(panel)
        assert NO_GPU_TITLE in text
        assert "9.5 GiB / 32.0 GiB" in text
        assert "Model in RAM: 4.2 GiB" in text


async def test_vram_panel_shows_probe_and_ollama_errors_in_words() -> None:
    """A probe error and a failed /api/ps are shown; the panel keeps working."""
    panel = VramPanel(MODEL)
    async with PanelHost(panel).run_test(size=(60, 20)) as pilot:
        broken = HardwareSample(
            timestamp=0, gpus=(), ram_used_bytes=0, ram_total_bytes=0, error="NVML: GPU is lost"
        )
        panel.show_sample(broken)
        panel.show_models(None, "cannot reach Ollama at http://127.0.0.1:11434")
        await pilot.pause()
        text = shown_text(panel)
        assert "⚠ NVML: GPU is lost" in text
        assert "usage not reported" in text
        assert "Ollama: cannot reach Ollama" in text
        panel.show_sample(gpu_sample(8))
        panel.show_models([])
        await pilot.pause()
        text = shown_text(panel)
        assert "GPU is lost" not in text and "Model not loaded yet" in text


# --------------------------------------------------------------------------- plan vs reality


def _fit_4b():  # type: ignore[no-untyped-def]
    report = plan(GPU_24GB, FitSettings(num_ctx=NUM_CTX, flash_attention=True))
    return report.row(MODEL)


async def test_plan_panel_reports_each_measurement_as_an_error_percentage() -> None:
    """Predicted bytes (weights + KV + compute) beside Ollama's and NVML's figures,
    each with (actual - predicted) / predicted."""
    fit = _fit_4b()
    predicted = fit.breakdown.allocated
    bd = fit.breakdown
    assert predicted == bd.need - bd.margin
    panel = PlanPanel()
    async with PanelHost(panel).run_test(size=(60, 20)) as pilot:
        panel.show(fit, Measured())
        await pilot.pause()
        assert "Measured once the model is loaded" in shown_text(panel)
        rm = RunningModel(
            MODEL, size_bytes=int(predicted * 1.25), size_vram_bytes=int(predicted * 1.05)
        )
        panel.show(fit, Measured(rm, nvml_delta=int(predicted * 0.9)))
        await pilot.pause()
        text = shown_text(panel)
        assert "Plan at 8k" in text
        assert "Ollama on GPU" in text and "+5.0 %" in text
        assert "Ollama total" in text and "+25.0 %" in text
        assert "NVML change" in text and "-10.0 %" in text
        panel.show(fit, Measured(rm, None, "no pre-load reading"))
        await pilot.pause()
        assert "no pre-load reading" in shown_text(panel)
        panel.show(None, Measured(rm))
        await pilot.pause()
        assert "No plan for this model" in shown_text(panel)


def test_percent_error() -> None:
    """The error is relative to the prediction; no prediction, no error."""
    assert percent_error(110, 100) == pytest.approx(10.0)
    assert percent_error(75, 100) == pytest.approx(-25.0)
    assert percent_error(1, 0) is None


# --------------------------------------------------------------------------- tokens


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_live_rate_is_redrawn_by_a_timer_not_per_token() -> None:
    """A thousand tokens cause no redraw of the live line; the 4 Hz timer does, and it
    shows tokens per second since the first token."""
    clock = FakeClock()
    panel = TokenPanel(NUM_CTX, clock=clock)
    async with PanelHost(panel).run_test(size=(60, 20)) as pilot:
        live = panel.query_one("#tok-live", Static)
        panel.reply_started()
        updates = 0
        original = live.update

        def counting(*args: object, **kwargs: object) -> None:
            nonlocal updates
            updates += 1
            original(*args, **kwargs)  # type: ignore[arg-type]

        live.update = counting  # type: ignore[method-assign]
        for i in range(1001):
            clock.now = 100.0 + i / 50  # 50 tokens per second
            panel.token_arrived()
        assert updates == 0
        assert panel.live_rate == pytest.approx(50.0)
        await pilot.pause(0.6)
        assert 1 <= updates <= 4
        assert "50.0 tok/s" in shown_text(panel) and "1001 tokens" in shown_text(panel)
        panel.reply_finished(None)
        stopped = updates
        await pilot.pause(0.6)
        assert updates == stopped  # the timer is paused between replies


async def test_tokens_panel_shows_ollamas_final_figures() -> None:
    """After a reply: first-token time, prompt and eval rates, load time, and a
    sparkline of recent replies' rates."""
    panel = TokenPanel(NUM_CTX, clock=FakeClock())
    stats = ChatStats(
        eval_count=300,
        eval_duration_s=6.0,
        prompt_eval_count=200,
        prompt_eval_duration_s=0.25,
        load_duration_s=2.5,
        time_to_first_token_s=2.9,
    )
    async with PanelHost(panel).run_test(size=(60, 20)) as pilot:
        panel.reply_started()
        panel.reply_finished(stats)
        panel.reply_started()
        panel.reply_finished(ChatStats(eval_count=100, eval_duration_s=1.0))
        await pilot.pause()
        text = shown_text(panel)
        assert "100.0 tok/s  last reply" in text
        assert list(panel.rates) == [50.0, 100.0]
        assert "model load   -  already loaded" in text
        panel.show_history([stats])
        await pilot.pause()
        text = shown_text(panel)
        assert "first token  2.90 s" in text
        assert "prompt       800 tok/s  200 tok" in text
        assert "generation   50.0 tok/s  300 tok" in text
        assert "model load   2.50 s  (re)loaded" in text


@pytest.mark.parametrize(
    ("used", "level", "warned"),
    [(4000, "ok", False), (6800, "warning", True), (8000, "error", True)],
)
async def test_context_gauge_warns_before_it_fills(used: int, level: str, warned: bool) -> None:
    """Context used (last prompt + reply tokens) against num_ctx; warns from 80 %."""
    panel = TokenPanel(NUM_CTX, clock=FakeClock())
    async with PanelHost(panel).run_test(size=(60, 20)) as pilot:
        panel.show_history(
            [ChatStats(prompt_eval_count=used - 100, eval_count=100, eval_duration_s=1.0)]
        )
        await pilot.pause()
        meter = panel.query_one("#tok-ctx", Meter)
        assert (meter.value, meter.total, meter.level) == (used, NUM_CTX, level)
        assert f"{used:,} / 8k ctx" in shown_text(panel)
        assert ("context" in shown_text(panel) and "full" in shown_text(panel)) is warned


# --------------------------------------------------------------------------- polling in the chat


class SlowProbe:
    """A probe whose reading takes a while; records overlap and the reading thread."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.active = 0
        self.most_at_once = 0
        self.threads: set[int] = set()
        self.calls = 0
        self._lock = threading.Lock()

    def snapshot(self):  # type: ignore[no-untyped-def]
        return GPU_24GB

    def sample(self) -> HardwareSample:
        with self._lock:
            self.active += 1
            self.calls += 1
            self.most_at_once = max(self.most_at_once, self.active)
            self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        with self._lock:
            self.active -= 1
        return gpu_sample(6.0)

    def close(self) -> None:
        pass


class BrokenProbe(SlowProbe):
    def sample(self) -> HardwareSample:
        raise RuntimeError("driver exploded")


@pytest.fixture
def fake4b() -> Iterator[FakeOllama]:
    with FakeOllama(installed=["4b"], reply="Ok.") as server:
        yield server


async def test_gpu_polls_run_in_a_thread_and_never_overlap(
    make_app: MakeApp, fake4b: FakeOllama
) -> None:
    """Readings slower than the interval: still one at a time, off the event loop,
    and the UI stays responsive (typing works meanwhile)."""
    app = make_app(fake4b.url)
    probe = SlowProbe(delay=0.15)
    app.probe = probe
    async with app.run_test(size=SIZE) as pilot:
        screen = ChatScreen(MODEL, NUM_CTX, gpu_interval=0.01, ps_interval=None)
        await app.push_screen(screen)
        await pilot.press(*"typing")
        await until(pilot, lambda: probe.calls >= 5)
        assert screen.prompt.text == "typing"
        assert probe.most_at_once == 1
        assert threading.get_ident() not in probe.threads
        assert "6.0 GiB / 24.0 GiB" in shown_text(screen.query_one(VramPanel))


async def test_a_probe_that_raises_is_shown_not_fatal(
    make_app: MakeApp, fake4b: FakeOllama
) -> None:
    """Even a probe breaking its promise never to raise only puts a line in the panel."""
    app = make_app(fake4b.url)
    app.probe = BrokenProbe(delay=0)
    async with app.run_test(size=SIZE) as pilot:
        screen = ChatScreen(MODEL, NUM_CTX, gpu_interval=0.05, ps_interval=None)
        await app.push_screen(screen)
        panel = screen.query_one(VramPanel)
        await until(pilot, lambda: "⚠ hardware probe failed: driver" in shown_text(panel))
        assert app.is_running and app.screen is screen


async def test_plan_against_reality_after_a_reply(make_app: MakeApp, fake4b: FakeOllama) -> None:
    """Before the first request the GPU baseline is taken (model not loaded); after the
    reply /api/ps reports the model and NVML's change since the baseline is compared
    with the plan."""
    app = make_app(fake4b.url, settings=Settings(model=MODEL, num_ctx=NUM_CTX))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ChatScreen))
        app.pop_screen()
        screen = ChatScreen(MODEL, NUM_CTX, gpu_interval=None, ps_interval=None)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.ps_answered)
        assert screen.running is None
        screen.post_message(GpuSampled(gpu_sample(1.5)))
        await until(pilot, lambda: screen.baseline_used == int(1.5 * GiB))
        assert screen.fit is not None and screen.fit == app.chosen_fit  # same model, same context
        assert screen.fit.breakdown.requested_ctx == NUM_CTX
        screen.prompt.insert("hi")
        await pilot.press("enter")
        await until(pilot, lambda: screen.running is not None)
        size = screen.running.size_bytes
        assert fake4b.chat_requests()[-1]["options"]["num_ctx"] == NUM_CTX
        screen.post_message(GpuSampled(gpu_sample(1.5 + size / GiB)))
        await pilot.pause()
        assert screen.baseline_used == int(1.5 * GiB)  # kept while the model is loaded
        predicted = screen.fit.breakdown.allocated
        error = percent_error(size, predicted)
        assert error is not None
        text = shown_text(screen.query_one(PlanPanel))
        assert "Ollama total" in text and f"{error:+.1f} %" in text
        assert text.count(f"{error:+.1f} %") >= 2  # NVML's change equals the size here
        screen.post_message(GpuSampled(gpu_sample(1.5)))  # nothing grew since the baseline
        await pilot.pause()
        text = shown_text(screen.query_one(PlanPanel))
        assert "none (loaded earlier?)" in text and "-100.0 %" not in text


async def test_models_polled_message_updates_both_panels(
    make_app: MakeApp, fake4b: FakeOllama
) -> None:
    """A failed /api/ps is said in the VRAM panel; a later answer replaces it."""
    app = make_app(fake4b.url)
    async with app.run_test(size=SIZE) as pilot:
        screen = ChatScreen(MODEL, NUM_CTX, gpu_interval=None, ps_interval=None)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.ps_answered)
        screen.post_message(ModelsPolled(None, "cannot reach Ollama"))
        await pilot.pause()
        assert "Ollama: cannot reach Ollama" in shown_text(screen.query_one(VramPanel))
        screen.post_message(ModelsPolled((running(4.2, 4.2),)))
        await pilot.pause()
        assert "Model on GPU: 4.2 GiB of 4.2 GiB" in shown_text(screen.query_one(VramPanel))
        assert screen.running is not None


async def test_context_gauge_estimates_replies_without_final_figures() -> None:
    """A reply that ends without Ollama's figures (stopped, cut off) adds an estimate of
    ~len/4 tokens to the last known context; the gauge marks it "≈" and still warns
    from 80 %; the next real figures replace the estimate."""
    panel = TokenPanel(NUM_CTX, clock=FakeClock())
    async with PanelHost(panel).run_test(size=(60, 20)) as pilot:
        panel.show_history([ChatStats(prompt_eval_count=6000, eval_count=300)])
        panel.reply_started()
        panel.reply_finished(None, added_chars=4 * 400)
        await pilot.pause()
        meter = panel.query_one("#tok-ctx", Meter)
        assert panel.context == 6700 and panel.estimated
        assert (meter.value, meter.level) == (6700, "warning")
        text = shown_text(panel)
        assert "≈6,700 / 8k ctx" in text
        assert "context ≈82% full" in text
        panel.reply_started()
        panel.reply_finished(ChatStats(prompt_eval_count=1000, eval_count=100))
        await pilot.pause()
        assert panel.context == 1100 and not panel.estimated
        assert "1,100 / 8k ctx" in shown_text(panel) and "≈" not in shown_text(panel)


@pytest.mark.parametrize(
    ("width", "shown", "hidden"),
    [
        (60, ["gemma3:12b-it-qat", "412 tokens", "48.5 tok/s"], []),
        (34, ["412 tokens", "48.5 tok/s"], ["gemma3"]),
        (18, ["48.5 tok/s"], ["gemma3", "tokens ·"]),
    ],
)
async def test_reply_header_drops_the_model_name_before_the_rate(
    width: int, shown: list[str], hidden: list[str]
) -> None:
    """In a narrow column the reply's header drops the model name first, then the token
    count; the rate stays visible."""
    from gemmatui.tui.widgets.message import AssistantMessage

    stats = ChatStats(eval_count=412, eval_duration_s=412 / 48.5, prompt_eval_count=100)
    block = AssistantMessage("Hi.", model="gemma3:12b-it-qat", stats=stats)

    class Narrow(App[None]):
        CSS = f"AssistantMessage {{ width: {width}; }}"

        def compose(self) -> ComposeResult:
            yield block

    async with Narrow().run_test(size=(80, 10)) as pilot:
        await pilot.pause()
        header = shown_text(block.query_one(".header"))
        for text in shown:
            assert text in header
        for text in hidden:
            assert text not in header


# --------------------------------------------------------------------------- idle (issue #11)


class RefreshSpy:
    """Every ``refresh`` of a widget under ``root`` while installed: (widget, layout?)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Widget) -> None:
        self.calls: list[tuple[Widget, bool]] = []
        original = Widget.refresh

        def refresh(widget: Widget, *args: object, **kwargs: object) -> object:
            if widget is root or root in widget.ancestors:
                self.calls.append((widget, bool(kwargs.get("layout"))))
            return original(widget, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Widget, "refresh", refresh)

    def of(self, kind: type[Widget]) -> list[tuple[Widget, bool]]:
        return [call for call in self.calls if isinstance(call[0], kind)]

    @property
    def layouts(self) -> list[Widget]:
        return [widget for widget, layout in self.calls if layout]


async def test_a_steady_reading_repaints_nothing_in_the_vram_panel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An idle chat reads the probe every two seconds: a reading that draws the same (a
    few MiB more in use: no whole cell of the bar, the same label) repaints no widget
    of the panel and lays nothing out; the history row waits while memory is steady
    (its range unchanged) and is drawn again after STEADY_HISTORY_REDRAW seconds."""
    panel = VramPanel(MODEL)
    async with PanelHost(panel).run_test(size=(60, 20)) as pilot:
        panel.show_sample(gpu_sample(6.0, t=0.0))
        panel.show_sample(gpu_sample(6.0, t=1.0))
        await pilot.pause()
        assert "1s: 6.0 GiB" in shown_text(panel)
        spy = RefreshSpy(monkeypatch, panel)
        panel.show_sample(gpu_sample(6.0, t=3.0), steady=True)
        panel.show_sample(gpu_sample(6.0 + 3 / 1024, t=5.0), steady=True)  # +3 MiB
        await pilot.pause()
        assert spy.calls == []
        assert len(panel.history) == 4  # every reading is kept all the same
        assert "1s: 6.0 GiB" in shown_text(panel)
        # A bar that changes is repainted, alone, without a layout.
        panel.show_sample(gpu_sample(7.3, t=7.0), steady=True)
        await pilot.pause()
        meter = spy.of(Meter)
        assert meter and not any(layout for _, layout in meter)
        # Only the history row, whose label grew wider, asks for a layout.
        row = panel.query_one("#vram-history-row")
        assert all(widget.parent is row for widget in spy.layouts)
        assert "7.3 GiB / 24.0 GiB" in shown_text(panel)
        assert "7s: 6.0 GiB-7.3 GiB" in shown_text(panel)  # a new range: drawn at once
        spy.calls.clear()
        panel.show_sample(gpu_sample(7.3, t=9.0), steady=True)
        await pilot.pause()
        assert spy.calls == []
        panel.show_sample(gpu_sample(7.3, t=7.0 + STEADY_HISTORY_REDRAW), steady=True)
        await pilot.pause()
        assert spy.of(Sparkline)
        assert f"{7 + STEADY_HISTORY_REDRAW:.0f}s: 6.0 GiB-7.3 GiB" in shown_text(panel)


async def test_an_unchanged_reading_in_the_chat_repaints_no_panel(
    make_app: MakeApp, fake4b: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll of an idle chat whose reading is the same as the last: nothing in the
    panels is repainted or laid out (the plan panel neither)."""
    app = make_app(fake4b.url)
    async with app.run_test(size=SIZE) as pilot:
        screen = ChatScreen(MODEL, NUM_CTX, gpu_interval=None, ps_interval=None)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.ps_answered)
        for t in (0.0, 2.0):
            screen.post_message(GpuSampled(gpu_sample(6.0, t=t)))
        await pilot.pause()
        assert screen.memory_steady
        spy = RefreshSpy(monkeypatch, screen.query_one("#panels", Widget))
        for t in (4.0, 6.0, 8.0):
            screen.post_message(GpuSampled(gpu_sample(6.0, t=t)))
        await pilot.pause()
        assert spy.calls == []


async def test_polls_slow_down_while_memory_is_steady(
    make_app: MakeApp, fake4b: FakeOllama
) -> None:
    """Readings come every ``gpu_interval`` while memory moves (a jump beyond noise, the
    model appearing in /api/ps, a reply streaming) and for FAST_POLLS readings after,
    then STEADY_SLOWDOWN times less often."""
    app = make_app(fake4b.url)
    async with app.run_test(size=SIZE) as pilot:
        # Long enough that no poll of its own happens during the test: the readings
        # are posted by the test.
        screen = ChatScreen(MODEL, NUM_CTX, gpu_interval=100.0, ps_interval=None)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.ps_answered and screen.last_sample is not None)
        steady = 100.0 * STEADY_SLOWDOWN

        async def reading(used_gib: float) -> float:
            screen.post_message(GpuSampled(gpu_sample(used_gib)))
            await pilot.pause()
            return screen.next_gpu_poll

        for _ in range(FAST_POLLS + 1):
            await reading(1.5)
        assert await reading(1.5 + 100 / 1024) == steady  # 100 MiB: noise
        assert await reading(4.0) == 100.0  # a model loading: the next FAST_POLLS are fast
        assert {await reading(4.0) for _ in range(FAST_POLLS - 1)} == {100.0}
        assert await reading(4.0) == steady
        screen.post_message(ModelsPolled((running(2.5, 2.5),)))  # loaded elsewhere
        await pilot.pause()
        assert screen.next_gpu_poll == 100.0 and not screen.memory_steady
