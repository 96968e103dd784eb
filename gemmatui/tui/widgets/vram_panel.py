"""The VRAM panel: memory per GPU, its recent history and where the model sits.

It draws what it is given (:meth:`VramPanel.show_sample`,
:meth:`VramPanel.show_models`); the screen polls the probe and Ollama.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import var
from textual.widgets import Sparkline, Static

from gemmatui.core.types import GpuSample, HardwareSample, RunningModel
from gemmatui.core.units import format_bytes, format_duration
from gemmatui.tui.widgets.meter import Meter
from gemmatui.tui.widgets.panel import Panel, show_content

#: Samples kept for the sparkline: three minutes at one a second. Its label says
#: which span of time it covers, from the samples' own timestamps.
HISTORY_SAMPLES = 180
#: While memory is steady (the caller says so), the history row (sparkline and label)
#: is drawn again at most this often, in seconds of the samples' own time, unless the
#: range it shows changes: a column of the sparkline spans several seconds of the three
#: minutes, and drawing it again for every reading costs a frame (issue #11) that moves
#: nothing a person reads. The bar above it shows every reading.
STEADY_HISTORY_REDRAW = 10.0
NO_GPU_TITLE = "No GPU found: system RAM"


def loaded_model(running: Iterable[RunningModel], model: str) -> RunningModel | None:
    """The row of ``/api/ps`` for ``model`` (``name`` and ``name:latest`` match)."""
    names = {model, f"{model}:latest"}
    return next((row for row in running if row.name in names), None)


def memory_in_use(sample: HardwareSample) -> int:
    """What the panel charts: GPU memory in use (all GPUs), or system RAM without a GPU."""
    if sample.gpus:
        return sum(gpu.used_bytes or 0 for gpu in sample.gpus)
    return sample.ram_used_bytes


def _used_of_total(used: int | None, total: int | None) -> str:
    if used is None or not total:
        return "usage not reported"
    return f"{format_bytes(used)} / {format_bytes(total)}"


@dataclass(frozen=True)
class MemoryReading:
    """One row of the panel: a GPU, or system RAM on a machine without one."""

    title: str
    used: int | None
    total: int | None
    details: str = ""

    @classmethod
    def of_gpu(cls, gpu: GpuSample) -> MemoryReading:
        details = []
        if gpu.utilization_pct is not None:
            details.append(f"util {gpu.utilization_pct} %")
        if gpu.temperature_c is not None:
            details.append(f"{gpu.temperature_c} °C")
        if gpu.power_w is not None:
            limit = f" / {gpu.power_limit_w:.0f}" if gpu.power_limit_w else ""
            details.append(f"{gpu.power_w:.0f}{limit} W")
        return cls(
            f"GPU {gpu.index} · {gpu.name}", gpu.used_bytes, gpu.total_bytes, "  ".join(details)
        )

    @classmethod
    def of_ram(cls, sample: HardwareSample) -> MemoryReading:
        return cls(NO_GPU_TITLE, sample.ram_used_bytes, sample.ram_total_bytes or None)


class MemoryRow(Vertical):
    """Title, a used/total bar coloured by headroom, and the GPU's other readings."""

    DEFAULT_CSS = """
    MemoryRow {
        height: auto;
        &> .title { color: $text; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
        &> .details { color: $text-muted; height: 1; }
    }
    """

    #: Not a repainting reactive: a new reading repaints only the lines that changed
    #: (:meth:`_paint`), not the whole row.
    reading: var[MemoryReading | None] = var(None)

    def __init__(self, reading: MemoryReading) -> None:
        super().__init__()
        self.set_reactive(MemoryRow.reading, reading)

    def compose(self) -> ComposeResult:
        yield Static(classes="title", markup=False)
        yield Meter(warn_at=0.85, error_at=0.95)
        yield Static(classes="details", markup=False)

    def on_mount(self) -> None:
        self._paint()

    def watch_reading(self) -> None:
        if self.is_mounted:
            self._paint()

    def _paint(self) -> None:
        reading = self.reading
        if reading is None:
            return
        # Polled once a second: only what changed is drawn again, without a new layout
        # while the lines keep their widths.
        show_content(self.query_one(".title", Static), Content(reading.title))
        used = reading.used if reading.used is not None else 0
        self.query_one(Meter).show(used, reading.total, _used_of_total(reading.used, reading.total))
        details = self.query_one(".details", Static)
        details.display = bool(reading.details)
        show_content(details, Content(reading.details))


class VramPanel(Panel):
    """Per-GPU memory bars, a sparkline of the last minutes, and the loaded model's split.

    Without a GPU it shows system RAM instead, labelled as such. Probe and Ollama
    errors are shown in the panel, in words.

    Args:
        model: The chat's model, looked up in ``/api/ps``.
        history: How many samples the sparkline keeps.
    """

    DEFAULT_CSS = """
    VramPanel {
        &> #vram-rows { height: auto; }
        &> #vram-history-row { height: 1; }
        &> #vram-history-row > Sparkline { width: 1fr; }
        &> #vram-history-row > Static { width: auto; color: $text-muted; }
        &> #vram-error { color: $text-warning; }
    }
    """

    def __init__(
        self, model: str, *, history: int = HISTORY_SAMPLES, id: str | None = None
    ) -> None:
        super().__init__("VRAM", id=id)
        self.model = model
        self.history: deque[tuple[float, float]] = deque(maxlen=history)  # (time, bytes)
        self.running: RunningModel | None = None
        self.ps_error: str | None = None
        self._layout: tuple[str, ...] = ()
        # The history row as last drawn: its range, and the time of its last sample.
        self._history_drawn: tuple[str, float] | None = None

    @property
    def has_gpu(self) -> bool:
        """Whether the last sample had a GPU (before any sample: assume so)."""
        return self._layout != (NO_GPU_TITLE,)

    def compose(self) -> ComposeResult:
        yield Vertical(id="vram-rows")
        with Horizontal(id="vram-history-row"):
            yield Sparkline([], summary_function=max)
            yield Static(id="vram-range", markup=False)
        yield Static(id="vram-model", markup=False)
        yield Static(id="vram-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#vram-error", Static).display = False
        self._paint_model()

    def show_sample(self, sample: HardwareSample, *, steady: bool = False) -> None:
        """Draw one probe reading: bars, history, and the probe's error if any.

        Args:
            sample: The reading.
            steady: Memory has not moved for a while: the history row may wait up to
                :data:`STEADY_HISTORY_REDRAW` seconds unless its range changes.
        """
        if sample.gpus:
            readings = [MemoryReading.of_gpu(gpu) for gpu in sample.gpus]
        else:
            readings = [MemoryReading.of_ram(sample)]
        in_use = memory_in_use(sample)
        layout = tuple(r.title for r in readings)
        rows = self.query_one("#vram-rows", Vertical)
        if layout != self._layout:
            self._layout = layout
            self.history.clear()
            self._history_drawn = None
            rows.remove_children()
            rows.mount_all(MemoryRow(r) for r in readings)
            self._paint_model()
        else:
            for row, reading in zip(rows.query_children(MemoryRow), readings, strict=True):
                row.reading = reading
        self.history.append((sample.timestamp, float(in_use)))
        self._paint_history(steady)
        error = self.query_one("#vram-error", Static)
        error.display = sample.error is not None
        show_content(error, Content(f"⚠ {sample.error}" if sample.error else ""))

    def _paint_history(self, steady: bool) -> None:
        values = [used for _, used in self.history]
        low, high = format_bytes(min(values)), format_bytes(max(values))
        span = high if low == high else f"{low}-{high}"  # not "6.0 GiB-6.0 GiB"
        now = self.history[-1][0]
        drawn = self._history_drawn
        if steady and drawn is not None:
            drawn_span, drawn_at = drawn
            if span == drawn_span and 0 <= now - drawn_at < STEADY_HISTORY_REDRAW:
                return
        self._history_drawn = (span, now)
        self.query_one(Sparkline).data = values  # a reactive: redrawn only if it changed
        window = now - self.history[0][0]
        label = f" {format_duration(window)}: {span}" if window >= 1 else f" {span}"
        show_content(self.query_one("#vram-range", Static), Content(label))

    def show_models(self, running: Iterable[RunningModel] | None, error: str | None = None) -> None:
        """Draw where the chat's model sits, from ``/api/ps``.

        Args:
            running: The loaded models, or ``None`` when asking Ollama failed.
            error: Why it failed.
        """
        self.ps_error = error if running is None else None
        if running is not None:
            self.running = loaded_model(running, self.model)
        self._paint_model()

    def _paint_model(self) -> None:
        show_content(self.query_one("#vram-model", Static), self._model_line())

    def _model_line(self) -> Content:
        rm = self.running
        if self.ps_error is not None:
            # The first clause only ("cannot reach Ollama at …"): the banner says the rest.
            return Content.assemble(("Ollama: ", "$text-warning"), self.ps_error.split(": ", 1)[0])
        if rm is None:
            return Content.styled("Model not loaded yet", "$text-muted")
        if not self.has_gpu or rm.size_vram_bytes == 0:
            return Content(f"Model in RAM: {format_bytes(rm.size_bytes)}")
        text = Content(
            f"Model on GPU: {format_bytes(rm.size_vram_bytes)} of {format_bytes(rm.size_bytes)}"
        )
        if rm.on_cpu_bytes > 0:
            text += Content.styled(
                f"\n⚠ {format_bytes(rm.on_cpu_bytes)} on CPU: partial offload",
                "$text-warning",
            )
        return text
