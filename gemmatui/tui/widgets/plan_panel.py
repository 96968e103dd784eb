"""Plan against reality: the fit's predicted bytes beside what was measured.

Measurements, each with its error against the plan, ``(actual - predicted) /
predicted``: the model's GPU part and whole size as Ollama reports them
(``/api/ps``); for a llama-server the app started itself, llama.cpp's own
allocations from its log (weights, KV cache, compute; the total with the output
buffer); and the change in NVML's used memory since before the model loaded. The plan
counts weights + KV cache + compute buffers (the fit's margin is headroom kept free,
not memory the runner takes).

What the panel knows of the engine (:class:`~gemmatui.tui.session.EngineFacts`) is set
once by the chat (:attr:`PlanPanel.facts`): a llama-server reports no memory over HTTP,
so without its log only the plan and NVML are shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Static

from gemmatui.core.fit import VariantFit
from gemmatui.core.types import RunningModel
from gemmatui.core.units import format_bytes, format_ctx
from gemmatui.tui.session import EngineFacts
from gemmatui.tui.widgets.panel import Panel, show_content

LABEL_WIDTH = 14
VALUE_WIDTH = 9


def percent_error(actual: float, predicted: float) -> float | None:
    """``(actual - predicted) / predicted`` in percent; ``None`` without a prediction.

    >>> percent_error(105, 100), percent_error(90, 100), percent_error(5, 0)
    (5.0, -10.0, None)
    """
    if predicted <= 0:
        return None
    return (actual - predicted) / predicted * 100


def _error_style(error: float) -> str:
    size = abs(error)
    return "$text-success" if size <= 10 else "$text-warning" if size <= 25 else "$text-error"


@dataclass(frozen=True)
class Measured:
    """What is known about the loaded model.

    Attributes:
        running: The model's ``/api/ps`` row, ``None`` while it is not loaded.
        nvml_delta: Change of NVML used memory (all GPUs) since before the load.
        nvml_note: Why there is no NVML figure, when ``nvml_delta`` is ``None``.
    """

    running: RunningModel | None = None
    nvml_delta: int | None = None
    nvml_note: str = "waiting for a reading"


class PlanPanel(Panel):
    """The plan's bytes against Ollama's and NVML's figures, with error percentages."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("Plan vs reality", id=id)
        self.fit: VariantFit | None = None
        self.measured = Measured()
        #: The engine's side: whose figures, and llama.cpp's log when the app started it.
        self.facts = EngineFacts()

    def compose(self) -> ComposeResult:
        yield Static(id="plan-body", markup=False)

    def on_mount(self) -> None:
        self._paint()

    def show(self, fit: VariantFit | None, measured: Measured) -> None:
        """Draw the plan for the chat's model and what was measured of it."""
        self.fit = fit
        self.measured = measured
        self._paint()

    def _paint(self) -> None:
        # Called on every probe reading (once a second): drawn only when it changed.
        show_content(self.query_one("#plan-body", Static), self._body())

    def _body(self) -> Content:
        fit, m, facts = self.fit, self.measured, self.facts
        if fit is None:
            return Content.styled(facts.no_plan, "$text-muted")
        predicted = fit.breakdown.allocated
        bd = fit.breakdown
        lines = [
            _row(f"Plan at {format_ctx(bd.ctx)}", predicted, None),
            *(
                _row(f"  {label}", value, None).stylize("$text-muted")
                for label, value in (
                    ("weights", bd.weights),
                    ("KV cache", bd.kv),
                    ("compute", bd.compute),
                )
            ),
        ]
        log = facts.actual
        if log:
            # llama.cpp's own allocations: the total (with the output buffer) and each part.
            total = log.weights + log.kv + log.compute + log.output
            lines.append(_row("llama.cpp log", total, predicted))
            lines.extend(
                _row(f"  {label}", actual, planned)
                for label, actual, planned in (
                    ("weights", log.weights, bd.weights),
                    ("KV cache", log.kv, bd.kv),
                    ("compute", log.compute, bd.compute),
                )
            )
        rm = m.running
        if rm is None:
            lines.append(Content.styled("Measured once the model is loaded", "$text-muted"))
            return Content("\n").join(lines)
        if facts.reports_memory:
            if rm.size_vram_bytes:
                lines.append(_row("Ollama on GPU", rm.size_vram_bytes, predicted))
            lines.append(_row("Ollama total", rm.size_bytes, predicted))
        elif not log:
            lines.append(
                Content.styled(
                    f"{facts.name} does not report its memory over HTTP (its log does: "
                    "start it from gemmatui with --gguf)",
                    "$text-muted",
                )
            )
        if m.nvml_delta is None:
            lines.append(
                Content.assemble("NVML change".ljust(LABEL_WIDTH), (m.nvml_note, "$text-muted"))
            )
        else:
            lines.append(_row("NVML change", m.nvml_delta, predicted))
        return Content("\n").join(lines)


def _row(label: str, value: int, predicted: int | None) -> Content:
    row = Content(label.ljust(LABEL_WIDTH) + format_bytes(value).rjust(VALUE_WIDTH))
    error = percent_error(value, predicted) if predicted is not None else None
    if error is not None:
        row += Content.styled(f" {error:+6.1f} %", _error_style(error))
    return row
