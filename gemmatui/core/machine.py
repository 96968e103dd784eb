"""The machine as the fit sees it, in plain dataclasses: its GPUs and memory (a
snapshot), live readings of them, and the KV cache types a server runs with.

:mod:`gemmatui.core.types` re-exports every name here beside the Ollama records; the
fit and the hardware probe import this module alone, so that ``gemmatui fit`` does not
build those records too (~4 ms of its start).
"""

from __future__ import annotations

from dataclasses import dataclass
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
