"""A fake NVML at the ``pynvml`` function boundary, so NVIDIA code runs without a GPU.

:class:`FakeNvml` replaces the functions of the real ``pynvml`` module through pytest's
``monkeypatch`` (everything is restored after the test) and raises the real
``pynvml.NVMLError_*`` classes, so the code under test meets exactly what it would meet on
a real machine. GPUs are plain spec dicts::

    fake = FakeNvml([RTX_3090, {"name": "Tesla T4", "total": 16 * GiB}]).install(monkeypatch)
    fake.fail("nvmlDeviceGetMemoryBusWidth", pynvml.NVMLError_NotSupported, gpu=1)
    fake.lose_gpu(0)  # every query about GPU 0 now raises NVMLError_GpuIsLost
    assert fake.calls["nvmlInit"] == 1

Spec keys (all optional but ``name``; see :data:`GPU_DEFAULTS`): ``total``, ``used`` and
``reserved`` bytes, ``uuid``, ``cc`` (compute capability), ``bus_width`` bits, ``mem_clock``
MHz, ``util`` and ``mem_util`` percent, ``temp`` °C, ``power_mw`` and ``power_limit_mw``.
A key set to ``None`` means the GPU does not report it (``NVMLError_NotSupported``).

Like the real library, every function but ``nvmlInit`` raises ``NVMLError_Uninitialized``
until NVML is initialised. Functions of the ``nvmlDevice*`` / ``nvmlSystem*`` families the
fake does not implement raise ``NVMLError_FunctionNotFound``, as an older driver would, so
no test ever reaches the real shared library.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from gemmatui.core.units import GiB, MiB

GPU_DEFAULTS: dict[str, Any] = {
    "total": 8 * GiB,
    "used": 0,
    "reserved": 0,
    "cc": (8, 6),
    "bus_width": 256,
    "mem_clock": 7001,
    "util": 0,
    "mem_util": 0,
    "temp": 40,
    "power_mw": 30_000,
    "power_limit_mw": 200_000,
}

RTX_3090: dict[str, Any] = {
    "name": "NVIDIA GeForce RTX 3090",
    "total": 24 * GiB,
    "used": 1 * GiB,
    "reserved": 300 * MiB,
    "uuid": "GPU-3090-0000",
    "cc": (8, 6),
    "bus_width": 384,
    "mem_clock": 9751,
    "util": 37,
    "mem_util": 12,
    "temp": 54,
    "power_mw": 123_456,
    "power_limit_mw": 350_000,
}

RTX_4060_TI_16G: dict[str, Any] = {
    "name": "NVIDIA GeForce RTX 4060 Ti",
    "total": 16 * GiB,
    "used": 512 * MiB,
    "uuid": "GPU-4060-0001",
    "cc": (8, 9),
    "bus_width": 128,
    "mem_clock": 9001,
    "util": 3,
    "temp": 38,
    "power_mw": 14_000,
    "power_limit_mw": 165_000,
}

_FAKED_FAMILIES = ("nvmlInit", "nvmlShutdown", "nvmlDevice", "nvmlSystem")

Error = type[BaseException] | BaseException


@dataclass(frozen=True)
class FakeHandle:
    """What ``nvmlDeviceGetHandleByIndex`` hands out: just the GPU's index."""

    index: int


def _function_not_found(*_args: Any, **_kwargs: Any) -> Any:
    raise pynvml.NVMLError_FunctionNotFound()


def _raise(error: Error) -> None:
    raise error() if isinstance(error, type) else error


class FakeNvml:
    """NVML with scripted GPUs and injectable faults.

    Args:
        gpus: one spec dict per GPU (see the module docstring).
        driver_version: what ``nvmlSystemGetDriverVersion`` returns.
        cuda_version: what the CUDA driver version calls return (``12040`` = 12.4).
        nvml_version: what ``nvmlSystemGetNVMLVersion`` returns.
        as_bytes: return strings as ``bytes``, as old pynvml releases did.

    Attributes:
        calls: how many times each function was called.
        initialised: NVML's reference count (``nvmlInit`` minus ``nvmlShutdown``).
    """

    def __init__(
        self,
        gpus: Sequence[Mapping[str, Any]] = (),
        *,
        driver_version: str = "550.54.14",
        cuda_version: int = 12040,
        nvml_version: str = "12.550.54.14",
        as_bytes: bool = False,
    ) -> None:
        self.gpus = [
            {**GPU_DEFAULTS, "uuid": f"GPU-fake-{index}", **spec} for index, spec in enumerate(gpus)
        ]
        self.driver_version = driver_version
        self.cuda_version = cuda_version
        self.nvml_version = nvml_version
        self.as_bytes = as_bytes
        self.calls: Counter[str] = Counter()
        self.initialised = 0
        self._faults: dict[str, list[tuple[int | None, Error]]] = {}
        self._delays: dict[str, float] = {}
        self._lost: set[int] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ configuration

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
        """Put the fake in place of the real ``pynvml`` functions for this test.

        The probe's check for the NVML shared library (which skips importing pynvml on
        Linux machines without it) is told the library is there: the fake decides.
        """
        from gemmatui.core import hardware

        monkeypatch.setattr(hardware, "_nvml_library_missing", lambda: False)
        for name in dir(pynvml):
            if name.startswith(_FAKED_FAMILIES) and inspect.isfunction(getattr(pynvml, name)):
                monkeypatch.setattr(pynvml, name, getattr(self, name, _function_not_found))
        return self

    def fail(self, function: str, error: Error, *, gpu: int | None = None) -> None:
        """Make ``function`` raise ``error`` (a class or an instance), for one GPU or all.

        ``"nvmlDeviceGetMemoryInfo_v2"`` fails only the versioned form of
        ``nvmlDeviceGetMemoryInfo``; ``"nvmlDeviceGetMemoryInfo"`` fails both forms.
        """
        self._faults.setdefault(function, []).append((gpu, error))

    def delay(self, function: str, seconds: float) -> None:
        """Make ``function`` slow, to widen race windows in threading tests."""
        self._delays[function] = seconds

    def lose_gpu(self, index: int) -> None:
        """From now on every query about GPU ``index`` raises ``NVMLError_GpuIsLost``."""
        self._lost.add(index)

    # ------------------------------------------------------------------ plumbing

    def _enter(self, function: str, gpu: int | None = None) -> dict[str, Any]:
        """Count the call, apply delays and faults, and return the GPU's spec."""
        with self._lock:
            self.calls[function] += 1
        time.sleep(self._delays.get(function, 0))
        self._check_faults(function, gpu)
        if function != "nvmlInit" and not self.initialised:
            raise pynvml.NVMLError_Uninitialized()
        if gpu is None:
            return {}
        if gpu in self._lost:
            raise pynvml.NVMLError_GpuIsLost()
        if not 0 <= gpu < len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        return self.gpus[gpu]

    def _check_faults(self, function: str, gpu: int | None) -> None:
        for only, error in self._faults.get(function, ()):
            if only is None or only == gpu:
                _raise(error)

    @staticmethod
    def _value(spec: Mapping[str, Any], key: str) -> Any:
        if spec.get(key) is None:
            raise pynvml.NVMLError_NotSupported()
        return spec[key]

    def _text(self, value: str) -> str | bytes:
        return value.encode() if self.as_bytes else value

    # ------------------------------------------------------------------ system

    def nvmlInit(self) -> None:
        self._enter("nvmlInit")
        with self._lock:
            self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        with self._lock:
            self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._enter("nvmlSystemGetDriverVersion")
        return self._text(self.driver_version)

    def nvmlSystemGetNVMLVersion(self) -> str | bytes:
        self._enter("nvmlSystemGetNVMLVersion")
        return self._text(self.nvml_version)

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion")
        return self.cuda_version

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion_v2")
        return self.cuda_version

    # ------------------------------------------------------------------ devices

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._enter("nvmlDeviceGetHandleByIndex", index)
        return FakeHandle(index)

    def nvmlDeviceGetName(self, handle: FakeHandle) -> str | bytes:
        spec = self._enter("nvmlDeviceGetName", handle.index)
        return self._text(spec["name"])

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str | bytes:
        spec = self._enter("nvmlDeviceGetUUID", handle.index)
        return self._text(self._value(spec, "uuid"))

    def nvmlDeviceGetMemoryInfo(self, handle: FakeHandle, version: int | None = None) -> Any:
        if version:
            self._check_faults("nvmlDeviceGetMemoryInfo_v2", handle.index)
        spec = self._enter("nvmlDeviceGetMemoryInfo", handle.index)
        total, used, reserved = spec["total"], spec["used"], spec["reserved"]
        free = total - used - reserved
        if version:  # v2 keeps driver-reserved memory out of "used"
            return SimpleNamespace(
                version=version, total=total, reserved=reserved, free=free, used=used
            )
        return SimpleNamespace(total=total, free=free, used=used + reserved)

    def nvmlDeviceGetCudaComputeCapability(self, handle: FakeHandle) -> tuple[int, int]:
        spec = self._enter("nvmlDeviceGetCudaComputeCapability", handle.index)
        return tuple(self._value(spec, "cc"))

    def nvmlDeviceGetMemoryBusWidth(self, handle: FakeHandle) -> int:
        spec = self._enter("nvmlDeviceGetMemoryBusWidth", handle.index)
        return self._value(spec, "bus_width")

    def nvmlDeviceGetMaxClockInfo(self, handle: FakeHandle, clock_type: int) -> int:
        spec = self._enter("nvmlDeviceGetMaxClockInfo", handle.index)
        if clock_type != pynvml.NVML_CLOCK_MEM:
            raise pynvml.NVMLError_NotSupported()
        return self._value(spec, "mem_clock")

    def nvmlDeviceGetUtilizationRates(self, handle: FakeHandle) -> Any:
        spec = self._enter("nvmlDeviceGetUtilizationRates", handle.index)
        return SimpleNamespace(gpu=self._value(spec, "util"), memory=self._value(spec, "mem_util"))

    def nvmlDeviceGetTemperature(self, handle: FakeHandle, sensor: int) -> int:
        spec = self._enter("nvmlDeviceGetTemperature", handle.index)
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise pynvml.NVMLError_InvalidArgument()
        return self._value(spec, "temp")

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        spec = self._enter("nvmlDeviceGetPowerUsage", handle.index)
        return self._value(spec, "power_mw")

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: FakeHandle) -> int:
        spec = self._enter("nvmlDeviceGetEnforcedPowerLimit", handle.index)
        return self._value(spec, "power_limit_mw")
