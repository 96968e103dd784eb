"""Hardware probe: which GPUs and how much memory this machine has, plus cheap live readings.

Every probe follows the :class:`HardwareProbe` protocol and returns only the plain
dataclasses of :mod:`gemmatui.core.machine`; nothing above this module sees a driver object.

* :class:`NvmlProbe`: NVIDIA GPUs through NVML (``pynvml`` from nvidia-ml-py), backend ``cuda``.
* :class:`AmdSysfsProbe`: AMD GPUs through the amdgpu driver's sysfs files, backend ``rocm``.
* :class:`AppleSiliconProbe`: Apple Silicon unified memory, backend ``metal``.
* :class:`CpuProbe`: no GPU, system RAM only, backend ``cpu``.

:func:`detect_probe` tries them in that order and :func:`probe_hardware` takes one snapshot.
:class:`StaticProbe` replays fixed data (tests, simulated hardware) and
:func:`simulated_snapshot` describes hardware the user does not have
(``gemmatui fit --vram 24G --ram 32G``).

Only the standard library is imported at module level. ``pynvml`` and ``psutil`` are
imported inside the functions that use them, so commands that never probe never pay for them.
A machine without a GPU is a normal state, not an error: the snapshot says so in its
``notes``, and :meth:`HardwareProbe.sample` never raises.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from gemmatui.core.machine import Backend, GpuInfo, GpuSample, HardwareSample, HardwareSnapshot
from gemmatui.core.units import GiB

__all__ = [
    "CPU_ONLY_NOTE",
    "DRM_ROOT",
    "AmdSysfsProbe",
    "AppleSiliconProbe",
    "CpuProbe",
    "HardwareProbe",
    "NvmlProbe",
    "StaticProbe",
    "detect_probe",
    "metal_working_set_bytes",
    "probe_hardware",
    "simulated_snapshot",
]

DRM_ROOT = "/sys/class/drm"
CPU_ONLY_NOTE = "no GPU found: CPU only"

Memory = tuple[int, int]
"""System RAM as ``(total, available)`` bytes."""


@runtime_checkable
class HardwareProbe(Protocol):
    """What every probe offers. All methods may be called from a worker thread."""

    def snapshot(self) -> HardwareSnapshot:
        """Describe the machine: GPUs with their memory and capabilities, RAM and CPU."""
        ...

    def sample(self) -> HardwareSample:
        """Take a cheap live reading for a panel polled about once a second.

        Never raises: a failure is reported in :attr:`HardwareSample.error`.
        """
        ...

    def close(self) -> None:
        """Release driver resources. Safe to call more than once."""
        ...


# --------------------------------------------------------------------------- shared helpers


_MEMINFO = Path("/proc/meminfo")


def _system_memory() -> Memory:
    """Read system RAM as ``(total, available)`` bytes: ``/proc/meminfo`` on Linux (the
    same figures psutil reports, without its import cost), psutil elsewhere."""
    try:
        fields = {}
        for line in _MEMINFO.read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                fields[key] = int(rest.split()[0]) * 1024  # kB
        return fields["MemTotal"], fields["MemAvailable"]
    except (OSError, KeyError, ValueError, IndexError):
        pass
    import psutil

    memory = psutil.virtual_memory()
    return memory.total, memory.available


def _cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """Best-effort CPU model: ``model name`` in /proc/cpuinfo, else ``platform.processor()``."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    import platform

    return platform.processor() or None


def _os_name() -> str:
    """``platform.system()`` without importing platform (slow) where ``os.uname`` exists."""
    if hasattr(os, "uname"):
        return os.uname().sysname
    import platform

    return platform.system()


def _cpu_arch() -> str:
    """``platform.machine()``, the same way."""
    if hasattr(os, "uname"):
        return os.uname().machine
    import platform

    return platform.machine()


def _unique(items: Iterable[str | None]) -> tuple[str, ...]:
    """Drop empty items and repeats, keeping the first occurrence's order."""
    return tuple(dict.fromkeys(item for item in items if item))


def _gpu_sample(gpu: GpuInfo) -> GpuSample:
    """Reduce a :class:`GpuInfo` to the live fields a panel shows."""
    used = gpu.used_bytes
    if used is None and gpu.total_bytes is not None and gpu.free_bytes is not None:
        used = gpu.total_bytes - gpu.free_bytes
    return GpuSample(
        index=gpu.index,
        name=gpu.name,
        used_bytes=used,
        total_bytes=gpu.total_bytes,
        utilization_pct=gpu.utilization_pct,
        temperature_c=gpu.temperature_c,
        power_w=gpu.power_w,
        power_limit_w=gpu.power_limit_w,
    )


def _build_snapshot(
    gpus: Iterable[GpuInfo],
    *,
    backend: Backend,
    source: str,
    notes: Iterable[str | None] = (),
    memory: Memory | None = None,
    cpu_name: str | None = None,
) -> HardwareSnapshot:
    """Assemble a snapshot, reading RAM and CPU facts that were not passed in."""
    ram_total, ram_available = memory if memory is not None else _system_memory()
    return HardwareSnapshot(
        gpus=tuple(gpus),
        ram_total_bytes=ram_total,
        ram_available_bytes=ram_available,
        backend=backend,
        source=source,
        notes=_unique(notes),
        cpu_name=cpu_name or _cpu_name(),
        cpu_count=os.cpu_count(),
    )


def _build_sample(
    gpus: Iterable[GpuInfo],
    *,
    memory: Memory | None = None,
    problems: Iterable[str] = (),
) -> HardwareSample:
    """Assemble a live reading stamped with ``time.monotonic()``."""
    ram_total, ram_available = memory if memory is not None else _system_memory()
    return HardwareSample(
        timestamp=time.monotonic(),
        gpus=tuple(_gpu_sample(gpu) for gpu in gpus),
        ram_used_bytes=ram_total - ram_available,
        ram_total_bytes=ram_total,
        error="; ".join(_unique(problems)) or None,
    )


def _never_raises(read: Callable[[], HardwareSample]) -> HardwareSample:
    """Run ``read``; if anything goes wrong, return an empty sample that carries the error."""
    try:
        return read()
    except Exception as err:  # a live panel must survive whatever a driver does
        return HardwareSample(
            timestamp=time.monotonic(),
            gpus=(),
            ram_used_bytes=0,
            ram_total_bytes=0,
            error=f"could not read the hardware: {err}",
        )


# --------------------------------------------------------------------------- CPU only


class CpuProbe:
    """No usable GPU: system RAM only, backend ``cpu``.

    Args:
        notes: earlier findings to pass on, such as why NVML could not start.
    """

    def __init__(self, notes: Iterable[str | None] = ()) -> None:
        self._notes = _unique(notes)

    def snapshot(self) -> HardwareSnapshot:
        """Describe RAM and CPU; the notes end with :data:`CPU_ONLY_NOTE`."""
        return _build_snapshot(
            (), backend="cpu", source="psutil", notes=(*self._notes, CPU_ONLY_NOTE)
        )

    def sample(self) -> HardwareSample:
        """Read system RAM use. Never raises."""
        return _never_raises(lambda: _build_sample(()))

    def close(self) -> None:
        """Nothing to release."""


# --------------------------------------------------------------------------- NVIDIA (NVML)

_QUIET_NVML_ERRORS = (
    "NVMLError_NotSupported",
    "NVMLError_NoPermission",
    "NVMLError_FunctionNotFound",
)
"""Errors that only mean "this GPU or driver does not report that": the field becomes None."""

_NVML_START_NOTES = {
    "NVMLError_LibraryNotFound": "NVML library not found: no NVIDIA driver installed",
    "NVMLError_DriverNotLoaded": "NVIDIA driver not loaded: check it with nvidia-smi",
    "NVMLError_LibRmVersionMismatch": (
        "NVML: driver/library version mismatch — reboot or reinstall the driver"
    ),
    "NVMLError_NoPermission": "NVML: no permission to open the NVIDIA driver",
}
_NVML_MISSING_NOTE = "NVIDIA support unavailable: the nvidia-ml-py package is not installed"
_NVML_NO_GPU_NOTE = "NVML started but found no NVIDIA GPU"


def _decode(value: Any) -> str | None:
    """Turn an NVML string (``bytes`` in old pynvml, ``str`` in new) into ``str``."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return None if value is None else str(value)


def _cuda_version(value: int | None) -> str | None:
    """Format NVML's CUDA driver version integer: ``12040`` -> ``"12.4"``."""
    if not value:
        return None
    return f"{value // 1000}.{value % 1000 // 10}"


def _scaled(value: int | None, divisor: int) -> float | None:
    """Convert a driver reading to base units (divisor 1000 for milli, 1_000_000 for micro)."""
    return None if value is None else value / divisor


class _NvmlCalls:
    """Runs the NVML queries of one reading, turning every NVML error into ``None``.

    Errors beyond "not supported" (GPU lost, unknown error, ...) are also kept in
    :attr:`problems` as one-line messages for the user.

    Args:
        nvml: the ``pynvml`` module.
        where: appended to each problem, e.g. ``" (GPU 0)"``.
    """

    def __init__(self, nvml: Any, where: str = "") -> None:
        self._nvml = nvml
        self._quiet = tuple(
            getattr(nvml, name) for name in _QUIET_NVML_ERRORS if hasattr(nvml, name)
        )
        self._where = where
        self.problems: list[str] = []

    def get(self, function: str, *args: Any) -> Any:
        """Return ``nvml.<function>(*args)``, or ``None`` if it is missing or fails."""
        call = getattr(self._nvml, function, None)
        if call is None:
            return None
        try:
            return call(*args)
        except self._nvml.NVMLError as err:
            if not isinstance(err, self._quiet):
                self.problems.append(f"NVML: {err}{self._where}")
            return None

    def first(self, *attempts: tuple[Any, ...]) -> Any:
        """Try ``(function, *args)`` attempts in order and return the first non-None result.

        Problems of failed attempts are forgotten when a later attempt succeeds.
        """
        mark = len(self.problems)
        for function, *args in attempts:
            value = self.get(function, *args)
            if value is not None:
                del self.problems[mark:]
                return value
        return None

    def text(self, function: str, *args: Any) -> str | None:
        """Like :meth:`get`, for functions that return a string."""
        return _decode(self.get(function, *args))


@dataclass(frozen=True)
class _NvmlDevice:
    """One opened GPU: its NVML index, handle and name."""

    index: int
    handle: Any
    name: str


@dataclass(frozen=True)
class _NvmlSession:
    """NVML after a successful ``nvmlInit``: the module and the GPUs it opened."""

    nvml: Any
    devices: tuple[_NvmlDevice, ...]
    source: str
    notes: tuple[str, ...]


def _nvml_devices(calls: _NvmlCalls) -> tuple[_NvmlDevice, ...]:
    """Open every GPU NVML lists; one whose handle cannot be had is left out."""
    devices = []
    for index in range(calls.get("nvmlDeviceGetCount") or 0):
        handle = calls.get("nvmlDeviceGetHandleByIndex", index)
        if handle is not None:
            name = calls.text("nvmlDeviceGetName", handle) or f"NVIDIA GPU {index}"
            devices.append(_NvmlDevice(index, handle, name))
    return tuple(devices)


def _nvml_shutdown(nvml: Any) -> None:
    """Shut NVML down, ignoring its errors (there is nothing left to do about them)."""
    with contextlib.suppress(nvml.NVMLError):
        nvml.nvmlShutdown()


def _nvml_library_missing() -> bool:
    """Linux: is there no ``libnvidia-ml.so.1`` to load? Then pynvml (about 40 ms to
    import) would only fail in ``nvmlInit``; we skip it. Elsewhere pynvml decides."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return True
    return False


def _start_nvml() -> tuple[_NvmlSession | None, str | None]:
    """Initialise NVML and open its GPUs.

    Returns:
        ``(session, None)`` when at least one GPU is usable, else ``(None, note)`` with
        a one-line reason (NVML is shut down again in that case).
    """
    if _nvml_library_missing():
        return None, _NVML_START_NOTES["NVMLError_LibraryNotFound"]
    try:
        import pynvml
    except ImportError:
        return None, _NVML_MISSING_NOTE
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        return None, _NVML_START_NOTES.get(type(err).__name__, f"NVML could not start: {err}")
    calls = _NvmlCalls(pynvml)
    devices = _nvml_devices(calls)
    if not devices:
        _nvml_shutdown(pynvml)
        return None, _NVML_NO_GPU_NOTE
    version = calls.text("nvmlSystemGetNVMLVersion")
    source = ("NVML " + ".".join(version.split(".")[:2])) if version else "NVML"
    return _NvmlSession(pynvml, devices, source, tuple(calls.problems)), None


def _nvml_live_fields(calls: _NvmlCalls, nvml: Any, handle: Any) -> dict[str, Any]:
    """Read the fields that change while a model runs: memory, load, heat and power."""
    plain_memory = ("nvmlDeviceGetMemoryInfo", handle)
    v2 = getattr(nvml, "nvmlMemory_v2", None)  # v2 does not count driver-reserved memory as used
    memory = calls.first((*plain_memory, v2), plain_memory) if v2 else calls.first(plain_memory)
    rates = calls.get("nvmlDeviceGetUtilizationRates", handle)
    sensor = nvml.NVML_TEMPERATURE_GPU
    return {
        "total_bytes": getattr(memory, "total", None),
        "free_bytes": getattr(memory, "free", None),
        "used_bytes": getattr(memory, "used", None),
        "utilization_pct": getattr(rates, "gpu", None),
        "memory_utilization_pct": getattr(rates, "memory", None),
        "temperature_c": calls.first(
            ("nvmlDeviceGetTemperatureV", handle, sensor),  # the old call is deprecated
            ("nvmlDeviceGetTemperature", handle, sensor),
        ),
        "power_w": _scaled(calls.get("nvmlDeviceGetPowerUsage", handle), 1000),
        "power_limit_w": _scaled(calls.get("nvmlDeviceGetEnforcedPowerLimit", handle), 1000),
    }


def _nvml_static_fields(calls: _NvmlCalls, nvml: Any, handle: Any) -> dict[str, Any]:
    """Read the fields that never change: capability, memory bus, memory clock, UUID."""
    capability = calls.get("nvmlDeviceGetCudaComputeCapability", handle)
    return {
        "compute_capability": tuple(int(part) for part in capability) if capability else None,
        "bus_width_bits": calls.get("nvmlDeviceGetMemoryBusWidth", handle),
        "max_mem_clock_mhz": calls.get("nvmlDeviceGetMaxClockInfo", handle, nvml.NVML_CLOCK_MEM),
        "uuid": calls.text("nvmlDeviceGetUUID", handle),
    }


def _nvml_system_fields(calls: _NvmlCalls) -> dict[str, Any]:
    """Read the driver and CUDA versions, which all GPUs share."""
    cuda = calls.first(("nvmlSystemGetCudaDriverVersion_v2",), ("nvmlSystemGetCudaDriverVersion",))
    return {
        "driver_version": calls.text("nvmlSystemGetDriverVersion"),
        "cuda_version": _cuda_version(cuda),
    }


class NvmlProbe:
    """NVIDIA GPUs through NVML.

    NVML is initialised on first use, at most once, under a lock, and shut down by
    :meth:`close` (a later call initialises it again). Every query is wrapped: a field
    the GPU or driver does not report becomes ``None``. When NVML cannot start (no
    driver, driver not loaded, version mismatch, nvidia-ml-py missing) or sees no GPU,
    :meth:`snapshot` falls back to a CPU-only snapshot and :attr:`note` says why.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = False
        self._session: _NvmlSession | None = None
        self._note: str | None = None

    @property
    def note(self) -> str | None:
        """Why NVML is not usable; ``None`` when it is, or before the first query."""
        return self._note

    def available(self) -> bool:
        """Whether NVML started and opened at least one GPU (starts NVML if needed)."""
        return self._open() is not None

    def snapshot(self) -> HardwareSnapshot:
        """Describe every NVIDIA GPU, or the CPU-only machine if NVML is not usable."""
        session = self._open()
        if session is None:
            return CpuProbe(notes=(self._note,)).snapshot()
        calls = _NvmlCalls(session.nvml)
        system = _nvml_system_fields(calls)
        gpus, problems = self._read_gpus(session, static=True)
        return _build_snapshot(
            [replace(gpu, **system) for gpu in gpus],
            backend="cuda",
            source=session.source,
            notes=(*session.notes, *calls.problems, *problems),
        )

    def sample(self) -> HardwareSample:
        """Read memory use, load, temperature and power of every GPU. Never raises."""
        return _never_raises(self._read_sample)

    def close(self) -> None:
        """Shut NVML down if this probe started it."""
        with self._lock:
            if self._session is not None:
                _nvml_shutdown(self._session.nvml)
            self._session, self._note, self._started = None, None, False

    def _open(self) -> _NvmlSession | None:
        with self._lock:
            if not self._started:
                self._session, self._note = _start_nvml()
                self._started = True
            return self._session

    def _read_sample(self) -> HardwareSample:
        session = self._open()
        if session is None:
            return _build_sample(())
        gpus, problems = self._read_gpus(session, static=False)
        return _build_sample(gpus, problems=problems)

    @staticmethod
    def _read_gpus(session: _NvmlSession, *, static: bool) -> tuple[list[GpuInfo], list[str]]:
        """Query each GPU: live fields always, fixed ones too when ``static``."""
        gpus, problems = [], []
        for device in session.devices:
            calls = _NvmlCalls(session.nvml, where=f" (GPU {device.index})")
            fields = _nvml_live_fields(calls, session.nvml, device.handle)
            if static:
                fields.update(_nvml_static_fields(calls, session.nvml, device.handle))
            gpus.append(GpuInfo(index=device.index, vendor="nvidia", name=device.name, **fields))
            problems.extend(calls.problems)
        return gpus, problems


# --------------------------------------------------------------------------- AMD (sysfs)

_CARD_RE = re.compile(r"card(\d+)")
_AMD_VENDOR_ID = "0x1002"


def _read_text(path: Path) -> str | None:
    """Return a sysfs file's stripped text, or ``None`` if it cannot be read or is empty."""
    try:
        return path.read_text(errors="replace").strip() or None
    except OSError:
        return None


def _read_int(path: Path) -> int | None:
    """Return a sysfs file's integer value, or ``None``."""
    text = _read_text(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _amd_name(device: Path) -> str:
    """``product_name`` if the card has one, else ``AMD GPU (1002:744c)`` from its PCI ids."""
    product = _read_text(device / "product_name")
    if product:
        return product
    vendor, model = _read_text(device / "vendor"), _read_text(device / "device")
    if vendor and model:
        return f"AMD GPU ({vendor.removeprefix('0x')}:{model.removeprefix('0x')})"
    return "AMD GPU"


def _amd_hwmon_fields(device: Path) -> dict[str, Any]:
    """Read temperature (millidegrees) and power (microwatts) from the card's hwmon."""
    hwmon = next(iter(sorted((device / "hwmon").glob("hwmon*"))), None)
    if hwmon is None:
        return {}
    millidegrees = _read_int(hwmon / "temp1_input")
    power = _read_int(hwmon / "power1_average")
    if power is None:  # some cards and kernels only offer the instantaneous reading
        power = _read_int(hwmon / "power1_input")
    return {
        "temperature_c": None if millidegrees is None else round(millidegrees / 1000),
        "power_w": _scaled(power, 1_000_000),
        "power_limit_w": _scaled(_read_int(hwmon / "power1_cap"), 1_000_000),
    }


def _amd_gpu(index: int, device: Path) -> GpuInfo:
    """Read one amdgpu card's memory, load and hwmon sensors."""
    total = _read_int(device / "mem_info_vram_total")
    used = _read_int(device / "mem_info_vram_used")
    return GpuInfo(
        index=index,
        vendor="amd",
        name=_amd_name(device),
        total_bytes=total,
        free_bytes=max(0, total - used) if total is not None and used is not None else None,
        used_bytes=used,
        utilization_pct=_read_int(device / "gpu_busy_percent"),
        memory_utilization_pct=_read_int(device / "mem_busy_percent"),
        **_amd_hwmon_fields(device),
    )


class AmdSysfsProbe:
    """AMD GPUs through the amdgpu driver's sysfs files; no ROCm tools needed.

    A card counts when ``card<N>/device`` has ``mem_info_vram_total`` and
    ``mem_info_vram_used`` and its PCI vendor is AMD (0x1002). Load comes from
    ``gpu_busy_percent``, temperature and power from the card's ``hwmon`` directory.

    Args:
        root: the DRM class directory; tests point it at a fake tree.
        notes: earlier findings to pass on, such as why NVML could not start.
    """

    def __init__(
        self, root: str | os.PathLike[str] = DRM_ROOT, notes: Iterable[str | None] = ()
    ) -> None:
        self._root = Path(root)
        self._notes = _unique(notes)

    def available(self) -> bool:
        """Whether at least one amdgpu card with VRAM counters exists."""
        return bool(self._devices())

    def snapshot(self) -> HardwareSnapshot:
        """Describe every amdgpu card."""
        return _build_snapshot(
            self._gpus(), backend="rocm", source="amdgpu sysfs", notes=self._notes
        )

    def sample(self) -> HardwareSample:
        """Read every card's memory use, load, temperature and power. Never raises."""
        return _never_raises(lambda: _build_sample(self._gpus()))

    def close(self) -> None:
        """Nothing to release."""

    def _gpus(self) -> list[GpuInfo]:
        return [_amd_gpu(index, device) for index, device in enumerate(self._devices())]

    def _devices(self) -> list[Path]:
        """List the ``device`` directories of amdgpu cards, in card-number order."""
        cards = []
        for card in self._root.glob("card*"):
            match = _CARD_RE.fullmatch(card.name)
            device = card / "device"
            if match and self._is_amdgpu(device):
                cards.append((int(match.group(1)), device))
        return [device for _, device in sorted(cards)]

    @staticmethod
    def _is_amdgpu(device: Path) -> bool:
        counters = ("mem_info_vram_total", "mem_info_vram_used")
        has_vram = all((device / name).is_file() for name in counters)
        return has_vram and _read_text(device / "vendor") in (None, _AMD_VENDOR_ID)


# --------------------------------------------------------------------------- Apple Silicon


def _working_set_fraction(ram_total_bytes: int) -> tuple[int, int]:
    """Return the share of RAM Metal lets the GPU use, as ``(numerator, denominator)``."""
    return (2, 3) if ram_total_bytes <= 36 * GiB else (3, 4)


def metal_working_set_bytes(ram_total_bytes: int) -> int:
    """Estimate how much RAM the Metal GPU may use: ``recommendedMaxWorkingSetSize``.

    macOS lets the GPU use about 2/3 of RAM on machines with 36 GiB or less and about
    3/4 above. Ollama's Metal backend keeps within this limit, so it is a Mac's "VRAM".

    >>> metal_working_set_bytes(24 * GiB) // GiB, metal_working_set_bytes(64 * GiB) // GiB
    (16, 48)
    """
    numerator, denominator = _working_set_fraction(ram_total_bytes)
    return ram_total_bytes * numerator // denominator


def _mac_chip_name() -> str | None:
    """Ask ``sysctl`` for the chip's name on macOS (``Apple M2 Max``); ``None`` if unknown."""
    import subprocess

    try:
        done = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"],
            capture_output=True,
            text=True,
            timeout=2,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _apple_gpu(memory: Memory, chip: str | None) -> GpuInfo:
    """Describe the unified-memory GPU: Metal's working set, and what RAM can still give."""
    ram_total, ram_available = memory
    usable = metal_working_set_bytes(ram_total)
    free = max(0, min(usable, ram_available))
    return GpuInfo(
        index=0,
        vendor="apple",
        name=f"{chip or 'Apple Silicon'} GPU",
        total_bytes=usable,
        free_bytes=free,
        used_bytes=usable - free,
        unified_memory=True,
    )


class AppleSiliconProbe:
    """Apple Silicon: the GPU shares system RAM (unified memory), backend ``metal``.

    The GPU's total is :func:`metal_working_set_bytes` of the RAM: Metal's
    ``recommendedMaxWorkingSetSize`` is about 2/3 of RAM on Macs with 36 GiB or less and
    about 3/4 above. Its free memory is psutil's available RAM, capped at that total,
    since whatever other programs hold is not free for the GPU either.

    Args:
        system: returns the OS name, like ``platform.system``.
        machine: returns the CPU architecture, like ``platform.machine``.
        memory: returns RAM as ``(total, available)`` bytes.
        chip_name: returns the chip's name (``Apple M2 Max``) or ``None``.
    """

    def __init__(
        self,
        *,
        system: Callable[[], str] = _os_name,
        machine: Callable[[], str] = _cpu_arch,
        memory: Callable[[], Memory] = _system_memory,
        chip_name: Callable[[], str | None] = _mac_chip_name,
    ) -> None:
        self._system = system
        self._machine = machine
        self._memory = memory
        self._chip_name = chip_name

    def available(self) -> bool:
        """Whether this is macOS on an Apple Silicon (arm64) machine."""
        return self._system() == "Darwin" and self._machine() in ("arm64", "aarch64")

    def snapshot(self) -> HardwareSnapshot:
        """Describe the unified-memory GPU, RAM and chip."""
        memory = self._memory()
        numerator, denominator = _working_set_fraction(memory[0])
        note = (
            f"unified memory: the GPU may use about {numerator}/{denominator} of RAM "
            "(Metal's working-set limit), shared with the CPU"
        )
        return _build_snapshot(
            (_apple_gpu(memory, self._chip),),
            backend="metal",
            source="Apple unified memory",
            notes=(note,),
            memory=memory,
            cpu_name=self._chip,
        )

    def sample(self) -> HardwareSample:
        """Read unified memory use. Never raises."""
        return _never_raises(self._read_sample)

    def close(self) -> None:
        """Nothing to release."""

    @cached_property
    def _chip(self) -> str | None:
        return self._chip_name()

    def _read_sample(self) -> HardwareSample:
        memory = self._memory()
        return _build_sample((_apple_gpu(memory, self._chip),), memory=memory)


# --------------------------------------------------------------------------- detection


def detect_probe(
    *,
    drm_root: str | os.PathLike[str] = DRM_ROOT,
    system: Callable[[], str] = _os_name,
    machine: Callable[[], str] = _cpu_arch,
) -> HardwareProbe:
    """Pick the probe for this machine: NVIDIA, then AMD, then Apple Silicon, then CPU only.

    Args:
        drm_root: where to look for amdgpu cards (tests pass a fake tree).
        system: returns the OS name, like ``platform.system``.
        machine: returns the CPU architecture, like ``platform.machine``.

    Returns:
        An open probe; the caller closes it. Why NVML was not used is carried into the
        notes of the AMD and CPU-only snapshots.
    """
    nvidia = NvmlProbe()
    if nvidia.available():
        return nvidia
    notes = (nvidia.note,)
    nvidia.close()
    amd = AmdSysfsProbe(drm_root, notes=notes)
    if amd.available():
        return amd
    apple = AppleSiliconProbe(system=system, machine=machine)
    if apple.available():
        return apple
    return CpuProbe(notes=notes)


def probe_hardware() -> HardwareSnapshot:
    """Detect this machine's hardware and describe it once (the probe is closed again)."""
    probe = detect_probe()
    try:
        return probe.snapshot()
    finally:
        probe.close()


# --------------------------------------------------------------------------- fixed and simulated


class StaticProbe:
    """Fixed hardware: one snapshot and scripted samples, for tests and simulated hardware.

    Args:
        snapshot: returned by every :meth:`snapshot` call.
        samples: returned by :meth:`sample` in order. After the last one the probe repeats
            it, or starts over when ``cycle`` is true. Without samples, each reading is
            made from the snapshot (GPU used = total - free) at the current time.
        cycle: start the samples over instead of repeating the last one.

    Attributes:
        closed: whether :meth:`close` was called.
    """

    def __init__(
        self,
        snapshot: HardwareSnapshot,
        samples: Sequence[HardwareSample] | None = None,
        *,
        cycle: bool = False,
    ) -> None:
        self._snapshot = snapshot
        self._samples = tuple(samples or ())
        self._cycle = cycle
        self._taken = 0
        self._lock = threading.Lock()
        self.closed = False

    def snapshot(self) -> HardwareSnapshot:
        """Return the fixed snapshot."""
        return self._snapshot

    def sample(self) -> HardwareSample:
        """Return the next scripted sample, or one made from the snapshot."""
        if not self._samples:
            memory = (self._snapshot.ram_total_bytes, self._snapshot.ram_available_bytes)
            return _build_sample(self._snapshot.gpus, memory=memory)
        with self._lock:
            position = self._taken
            self._taken += 1
        last = len(self._samples) - 1
        return self._samples[position % len(self._samples) if self._cycle else min(position, last)]

    def close(self) -> None:
        """Remember that the probe was closed."""
        self.closed = True


def _simulated_gpus(
    vram_bytes: int | None, base: HardwareSnapshot | None
) -> tuple[tuple[GpuInfo, ...], Backend]:
    """Choose the GPUs and backend of a simulated snapshot."""
    if vram_bytes is None:
        return (base.gpus, base.backend) if base else ((), "cpu")
    if vram_bytes == 0:
        return (), "cpu"
    gpu = GpuInfo(
        index=0,
        vendor="nvidia",
        name=f"simulated {vram_bytes / GiB:.1f} GiB GPU",
        total_bytes=vram_bytes,
        free_bytes=vram_bytes,
        used_bytes=0,
        compute_capability=(8, 9),
    )
    return (gpu,), "cuda"


def _simulated_notes(vram_bytes: int | None, ram_bytes: int | None) -> list[str]:
    """One note per simulated part, so no one mistakes the plan for a measurement."""
    notes = []
    if vram_bytes == 0:
        notes.append("simulated: no GPU, CPU only")
    elif vram_bytes is not None:
        notes.append(f"simulated: one GPU with {vram_bytes / GiB:.1f} GiB of VRAM, all free")
    if ram_bytes is not None:
        notes.append(f"simulated: {ram_bytes / GiB:.1f} GiB of RAM, all available")
    return notes


def simulated_snapshot(
    vram_bytes: int | None,
    ram_bytes: int | None,
    base: HardwareSnapshot | None = None,
) -> HardwareSnapshot:
    """Describe hardware the user does not have, to plan for it (``fit --vram 24G --ram 32G``).

    Args:
        vram_bytes: a single GPU of this size, all of it free: an NVIDIA card of compute
            capability 8.9 whose bandwidth is unknown. ``0`` means no GPU at all;
            ``None`` keeps the GPUs of ``base`` (none without a base).
        ram_bytes: system RAM, all of it available. ``None`` keeps the RAM of ``base``,
            or reads this machine's when there is no base.
        base: the real snapshot to start from; its CPU facts are kept, and its notes
            too when its GPUs are.

    Returns:
        A snapshot with ``simulated=True`` and source ``"simulated"``.

    Raises:
        ValueError: neither size was given, or one is negative.
    """
    if vram_bytes is None and ram_bytes is None:
        raise ValueError("give a VRAM or RAM size to simulate")
    if any(size is not None and size < 0 for size in (vram_bytes, ram_bytes)):
        raise ValueError("a simulated memory size cannot be negative")
    gpus, backend = _simulated_gpus(vram_bytes, base)
    if ram_bytes is not None:
        ram_total, ram_available = ram_bytes, ram_bytes
    elif base is not None:
        ram_total, ram_available = base.ram_total_bytes, base.ram_available_bytes
    else:
        ram_total, ram_available = _system_memory()
    kept_notes = base.notes if base is not None and vram_bytes is None else ()
    return HardwareSnapshot(
        gpus=gpus,
        ram_total_bytes=ram_total,
        ram_available_bytes=ram_available,
        backend=backend,
        source="simulated",
        notes=_unique((*_simulated_notes(vram_bytes, ram_bytes), *kept_notes)),
        cpu_name=base.cpu_name if base else None,
        cpu_count=base.cpu_count if base else None,
        simulated=True,
    )
