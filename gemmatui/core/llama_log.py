"""llama.cpp's own memory accounting, read from a llama-server log.

When llama-server loads a model it prints every buffer it allocates, one line each::

    load_tensors:   CPU_Mapped model buffer size =   235.16 MiB
    llama_context:        CPU  output buffer size =     1.00 MiB
    llama_kv_cache:        CPU KV buffer size =    24.00 MiB
    llama_kv_cache:        CPU KV buffer size =    15.00 MiB
    sched_reserve:        CPU compute buffer size =    27.28 MiB

(``CUDA0``, ``CUDA_Host``, ``ROCm0``, ``Metal`` … name the device on other backends.)
These are the engine's real allocations, so a plan can be checked against them.

A current llama-server first runs its ``--fit`` pass, which prints the same lines with
dry-run sizes (often ``0.00 MiB``), then loads for real: :func:`parse_buffer_log` keeps
the **last** load in the text.

>>> log = '''load_tensors:   CPU_Mapped model buffer size =   235.16 MiB
... llama_context:        CPU  output buffer size =     1.00 MiB
... llama_kv_cache:        CPU KV buffer size =    24.00 MiB
... llama_kv_cache:        CPU KV buffer size =    15.00 MiB
... sched_reserve:        CPU compute buffer size =    27.28 MiB'''
>>> b = parse_buffer_log(log)
>>> round(b.kv / 2**20, 2), round(b.compute / 2**20, 2), b.devices
(39.0, 27.28, ('CPU', 'CPU_Mapped'))
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Buffer", "BufferLog", "parse_buffer_log"]

_MIB = 1 << 20
_LINE = re.compile(
    r"(?P<device>[A-Za-z][\w.-]*)\s+(?P<kind>model|output|KV|compute) buffer size\s*=\s*"
    r"(?P<size>\d+(?:\.\d+)?)\s*MiB"
)


@dataclass(frozen=True)
class Buffer:
    """One allocation: its kind (``model``, ``output``, ``KV``, ``compute``), device, bytes.

    The log prints MiB with two decimals, so ``bytes`` is exact to about 5 KiB.
    """

    kind: str
    device: str
    bytes: int


@dataclass(frozen=True)
class BufferLog:
    """The buffers of one model load, in the order the log printed them."""

    buffers: tuple[Buffer, ...] = field(default_factory=tuple)

    def total(self, kind: str) -> int:
        """Bytes of every buffer of ``kind`` together, all devices."""
        return sum(b.bytes for b in self.buffers if b.kind == kind)

    @property
    def model(self) -> int:
        return self.total("model")

    @property
    def weights(self) -> int:
        """The model's tensors as loaded (``model`` buffers, less CPU repacking copies)."""
        return sum(
            b.bytes for b in self.buffers if b.kind == "model" and not b.device.endswith("_REPACK")
        )

    @property
    def repack(self) -> int:
        """Extra copies of weights the CPU backend re-lays for faster kernels
        (``CPU_REPACK``): memory on top of the weights, CPU only."""
        return sum(b.bytes for b in self.buffers if b.kind == "model" and b.device.endswith("_REPACK"))

    @property
    def kv(self) -> int:
        return self.total("KV")

    @property
    def compute(self) -> int:
        return self.total("compute")

    @property
    def output(self) -> int:
        return self.total("output")

    @property
    def kv_buffers(self) -> tuple[int, ...]:
        """Each KV buffer (for Gemma 3: the global layers', then the sliding layers')."""
        return tuple(b.bytes for b in self.buffers if b.kind == "KV")

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(sorted({b.device for b in self.buffers}))

    @property
    def complete(self) -> bool:
        """Whether the load got as far as its compute buffer (the last line printed)."""
        return any(b.kind == "compute" for b in self.buffers)

    def __bool__(self) -> bool:
        return bool(self.buffers)


def parse_buffer_log(text: str | Iterable[str]) -> BufferLog:
    """The buffers of the last model load in a llama-server log (empty if none).

    Args:
        text: The log, whole or as lines.
    """
    lines = text.splitlines() if isinstance(text, str) else text
    loads: list[list[Buffer]] = []
    current: list[Buffer] = []
    for line in lines:
        match = _LINE.search(line)
        if match is None:
            continue
        kind = match["kind"]
        buffer = Buffer(kind, match["device"], round(float(match["size"]) * _MIB))
        # A model buffer after anything else starts a new load (the fit pass, then the
        # real one; or a restart written to the same log).
        if kind == "model" and any(b.kind != "model" for b in current):
            loads.append(current)
            current = []
        current.append(buffer)
    if current:
        loads.append(current)
    return BufferLog(tuple(loads[-1])) if loads else BufferLog()
