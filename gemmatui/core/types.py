"""Plain dataclasses that cross layers (hardware -> fit -> CLI/TUI, Ollama -> CLI/TUI).

Nothing here imports anything heavy; widgets and commands only ever see these types,
never pynvml, httpx or ollama objects. The hardware records and the KV cache types are
defined in :mod:`gemmatui.core.machine` (what ``fit`` needs, without the rest) and
importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gemmatui.core.machine import (  # noqa: F401 (re-exported)
    KV_TYPES,
    Backend,
    GpuInfo,
    GpuSample,
    HardwareSample,
    HardwareSnapshot,
    KvType,
    Vendor,
)


# --------------------------------------------------------------------------- Ollama


@dataclass(frozen=True)
class InstalledModel:
    """One row of ``GET /api/tags``."""

    name: str
    size_bytes: int
    digest: str
    modified_at: str = ""
    family: str = ""
    parameter_size: str = ""
    quantization_level: str = ""
    context_length: int | None = None
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunningModel:
    """One row of ``GET /api/ps``."""

    name: str
    size_bytes: int  # all memory of the runner
    size_vram_bytes: int  # the part on GPUs
    context_length: int | None = None
    expires_at: str = ""

    @property
    def on_cpu_bytes(self) -> int:
        return max(0, self.size_bytes - self.size_vram_bytes)


@dataclass(frozen=True)
class ModelDetails:
    """``POST /api/show``: what the fit needs from it."""

    name: str
    model_info: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)  # parsed from the "key value" string
    capabilities: tuple[str, ...] = ()
    quantization_level: str = ""


@dataclass(frozen=True)
class PullProgress:
    """One line of a ``POST /api/pull`` stream, plus running totals."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None
    overall_total: int = 0  # sum of totals over distinct digests seen so far
    overall_completed: int = 0


@dataclass(frozen=True)
class ChatStats:
    """The final chunk's metrics. Durations in seconds (Ollama sends nanoseconds)."""

    eval_count: int = 0
    eval_duration_s: float = 0.0
    prompt_eval_count: int = 0
    prompt_eval_duration_s: float = 0.0
    load_duration_s: float = 0.0
    total_duration_s: float = 0.0
    done_reason: str | None = None
    time_to_first_token_s: float | None = None  # measured by the client

    @property
    def eval_rate(self) -> float | None:
        """Tokens per second of generation (``eval_count / eval_duration``)."""
        return self.eval_count / self.eval_duration_s if self.eval_duration_s > 0 else None

    @property
    def prompt_rate(self) -> float | None:
        if self.prompt_eval_duration_s > 0:
            return self.prompt_eval_count / self.prompt_eval_duration_s
        return None

    @property
    def reloaded(self) -> bool:
        return self.load_duration_s > 0.05


@dataclass(frozen=True)
class ChatChunk:
    """One piece of a streamed reply. ``stats`` is set on the final chunk only."""

    content: str
    done: bool = False
    stats: ChatStats | None = None
    thinking: str = ""
