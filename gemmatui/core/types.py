"""Plain dataclasses that cross layers (hardware -> fit -> CLI/TUI, Ollama -> CLI/TUI).

Nothing here imports anything heavy; widgets and commands only ever see these types,
never pynvml, httpx or ollama objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Vendor = Literal["nvidia", "amd", "apple", "intel", "other"]
Backend = Literal["cuda", "rocm", "metal", "cpu"]
KvType = Literal["f16", "q8_0", "q4_0"]
KV_TYPES: tuple[KvType, ...] = ("f16", "q8_0", "q4_0")


# --------------------------------------------------------------------------- hardware


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as seen at one moment. Every field a driver may not report is ``None``."""

    index: int
    vendor: Vendor
    name: str
    total_bytes: int | None
    free_bytes: int | None
    used_bytes: int | None = None
    driver_version: str | None = None
    cuda_version: str | None = None  # e.g. "12.4" (NVIDIA only)
    compute_capability: tuple[int, int] | None = None  # (8, 6) for an RTX 3090
    bus_width_bits: int | None = None
    max_mem_clock_mhz: int | None = None
    utilization_pct: int | None = None
    memory_utilization_pct: int | None = None
    temperature_c: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    uuid: str | None = None
    unified_memory: bool = False  # Apple Silicon: GPU memory is system RAM

    @property
    def bandwidth_bytes_per_s(self) -> float | None:
        """Peak memory bandwidth: bus width x max memory clock x 2 (double data rate).

        NVML reports the memory clock such that this gives the datasheet figure
        (RTX 3090: 384 bit x 9751 MHz x 2 / 8 = 936 GB/s; H100 HBM3 5120 bit x 2619 MHz).
        """
        if not self.bus_width_bits or not self.max_mem_clock_mhz:
            return None
        return self.bus_width_bits / 8 * self.max_mem_clock_mhz * 1e6 * 2


@dataclass(frozen=True)
class HardwareSnapshot:
    """What the machine has, as the fit sees it."""

    gpus: tuple[GpuInfo, ...]
    ram_total_bytes: int
    ram_available_bytes: int
    backend: Backend
    source: str  # "NVML 13.580", "amdgpu sysfs", "Apple unified memory", "psutil", "simulated"
    notes: tuple[str, ...] = ()  # e.g. "NVML library not found: no NVIDIA driver"
    cpu_name: str | None = None
    cpu_count: int | None = None
    simulated: bool = False

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)


@dataclass(frozen=True)
class GpuSample:
    """A live reading for the VRAM panel (polled about once a second)."""

    index: int
    name: str
    used_bytes: int | None
    total_bytes: int | None
    utilization_pct: int | None = None
    temperature_c: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None


@dataclass(frozen=True)
class HardwareSample:
    timestamp: float  # time.monotonic() of the reading
    gpus: tuple[GpuSample, ...]
    ram_used_bytes: int
    ram_total_bytes: int
    error: str | None = None  # e.g. "NVML: GPU is lost"; panels show it, nothing raises


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
