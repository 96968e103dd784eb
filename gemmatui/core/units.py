"""Human sizes: context lengths and byte counts. Pure functions, no I/O.

Context lengths count tokens and ``k`` means 1024 (``32k`` = 32768), as Ollama
and llama.cpp use them.

Byte sizes follow the usual convention of the tools the user already knows:

* ``G``, ``GiB``, ``M``, ``MiB``, ``K``, ``KiB``, ``T``, ``TiB`` are **binary**
  (2**30 …). ``G`` on its own is binary because ``nvidia-smi`` and NVML speak
  binary units and a "24G" card has 24 GiB.
* ``GB``, ``MB``, ``KB``, ``TB`` are **decimal** (10**9 …), the way
  ``ollama list`` and disk vendors print them.
* A bare number is bytes.
"""

from __future__ import annotations

import math
import re

KiB = 1024
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4

# Largest context we accept at all: far above any model (Gemma 3 maxes at 128k).
MAX_CTX = 1 << 24  # 16M tokens

_CTX_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": KiB,
    "ki": KiB,
    "kib": KiB,
    "kb": 1000,
    "m": MiB,
    "mi": MiB,
    "mib": MiB,
    "mb": 1000**2,
    "g": GiB,
    "gi": GiB,
    "gib": GiB,
    "gb": 1000**3,
    "t": TiB,
    "ti": TiB,
    "tib": TiB,
    "tb": 1000**4,
}


class UnitError(ValueError):
    """A human size or context string could not be parsed; the message says why."""


def parse_ctx(text: str | int) -> int:
    """Parse a context length in tokens: ``4096``, ``32k``, ``32K``, ``128k``, ``1.5k``.

    >>> parse_ctx("32k"), parse_ctx("32K"), parse_ctx("32768"), parse_ctx("128k")
    (32768, 32768, 32768, 131072)
    >>> parse_ctx("1m")
    1048576
    """
    if isinstance(text, bool):
        raise UnitError(f"invalid context length {text!r}")
    if isinstance(text, int):
        value = text
        shown = str(text)
    else:
        shown = str(text).strip()
        m = _CTX_RE.match(shown)
        if not m:
            raise UnitError(
                f"invalid context length {shown!r}: use a whole number of tokens "
                "like 4096, or 8k, 32k, 128k (k = 1024)"
            )
        number, suffix = m.groups()
        mult = {"": 1, "k": 1024, "m": 1024 * 1024}[suffix.lower()]
        exact = float(number) * mult
        if not math.isfinite(exact) or exact > MAX_CTX:
            raise UnitError(
                f"invalid context length {shown!r}: larger than {format_ctx(MAX_CTX)} tokens; "
                "Gemma 3 reads at most 128k"
            )
        if exact != math.floor(exact):
            raise UnitError(f"invalid context length {shown!r}: must be a whole number of tokens")
        value = int(exact)
    if value <= 0:
        raise UnitError(f"invalid context length {shown!r}: must be at least 1 token")
    if value > MAX_CTX:
        raise UnitError(
            f"invalid context length {shown!r}: larger than {format_ctx(MAX_CTX)} tokens; "
            "Gemma 3 reads at most 128k"
        )
    return value


def parse_size(text: str | int, *, what: str = "size") -> int:
    """Parse a memory size into bytes.

    >>> parse_size("24G") == parse_size("24GiB") == 24 * 2**30
    True
    >>> parse_size("24GB")
    24000000000
    >>> parse_size("8192M") == 8 * 2**30
    True
    """
    if isinstance(text, bool):
        raise UnitError(f"invalid {what} {text!r}")
    if isinstance(text, int):
        value, shown = text, str(text)
    else:
        shown = str(text).strip()
        m = _SIZE_RE.match(shown)
        unit = m.group(2).lower() if m else None
        if not m or unit not in _SIZE_UNITS:
            raise UnitError(
                f"invalid {what} {shown!r}: use a number with a unit like 24G, 24GiB, "
                "24GB or 8192M (G/GiB = 2^30 bytes, GB = 10^9 bytes)"
            )
        exact = float(m.group(1)) * _SIZE_UNITS[unit]
        if not math.isfinite(exact) or exact > 1 << 50:
            raise UnitError(f"invalid {what} {shown!r}: larger than 1 PiB")
        if unit in ("", "b") and 0 < exact < MiB:
            raise UnitError(
                f"invalid {what} {shown!r}: a bare number means bytes; add a unit like G or GB"
            )
        value = int(exact)
    if value <= 0:
        raise UnitError(f"invalid {what} {shown!r}: must be more than 0")
    if value > 1 << 50:
        raise UnitError(f"invalid {what} {shown!r}: larger than 1 PiB")
    return value


def format_bytes(n: float, *, precision: int = 1) -> str:
    """Binary units, the way NVML and llama.cpp print them.

    >>> format_bytes(24 * GiB), format_bytes(512 * MiB), format_bytes(1536)
    ('24.0 GiB', '512 MiB', '1.5 KiB')
    """
    sign = "-" if n < 0 else ""
    n = abs(n)
    if n >= TiB:
        return f"{sign}{n / TiB:.{precision}f} TiB"
    if n >= GiB:
        return f"{sign}{n / GiB:.{precision}f} GiB"
    if n >= MiB:
        return f"{sign}{n / MiB:.0f} MiB"
    if n >= KiB:
        return f"{sign}{n / KiB:.{precision}f} KiB"
    return f"{sign}{int(n)} B"


def format_decimal_bytes(n: float) -> str:
    """Decimal units, the way ``ollama list`` prints sizes.

    >>> format_decimal_bytes(17_972_806_848), format_decimal_bytes(358)
    ('18 GB', '358 B')
    """
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(n)} B"


def format_ctx(tokens: int) -> str:
    """Short context length: ``32k`` for 32768, ``1500`` stays ``1500``.

    >>> format_ctx(32768), format_ctx(131072), format_ctx(1500), format_ctx(1048576)
    ('32k', '128k', '1500', '1M')
    """
    if tokens >= 1 << 20 and tokens % (1 << 20) == 0:
        return f"{tokens >> 20}M"
    if tokens >= 1024 and tokens % 1024 == 0:
        return f"{tokens // 1024}k"
    return str(tokens)


def format_duration(seconds: float) -> str:
    """Short human duration for ETAs.

    >>> format_duration(5), format_duration(75), format_duration(3725)
    ('5s', '1m15s', '1h02m')
    """
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
