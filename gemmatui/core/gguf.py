"""Read a GGUF file's header: its metadata keys and the size of each tensor.

GGUF is llama.cpp's documented model format (``ggml/docs/gguf.md`` in ggml and llama.cpp):

====================  =========================================================
``magic``             the four bytes ``GGUF``
``version``           uint32 (2 and 3 are read; 1 stored counts as uint32)
``tensor_count``      uint64
``kv_count``          uint64
metadata              ``kv_count`` × (string key, uint32 type, value)
tensor infos          ``tensor_count`` × (string name, uint32 n_dims, n_dims ×
                      uint64 dims, uint32 ggml type, uint64 offset)
padding               to ``general.alignment`` (default 32)
tensor data           each tensor at its offset from the start of the data
====================  =========================================================

Strings are a uint64 byte length and UTF-8 bytes; everything is little-endian. This
module reads only the header (the file is memory-mapped, so a 17 GB model costs a few
pages), which is all :mod:`gemmatui.core.fit` needs: the ``gemma3.*`` architecture keys
and the bytes of the tensors. It is written directly against the format, without the
``gguf`` package, because that package pulls in numpy (more than ``fit``'s whole start-up
budget) to answer what a hundred lines of ``struct`` answer.

Long arrays (the 262,144 tokenizer strings) are skipped, only their length kept.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gemmatui.core.errors import UsageError
from gemmatui.core.text import sanitize_line

if TYPE_CHECKING:
    from gemmatui.core.catalog import Variant

__all__ = ["GgufError", "GgufFile", "TensorInfo", "read_gguf", "variant_from_gguf"]

_MAGIC = b"GGUF"
_DEFAULT_ALIGNMENT = 32
# Arrays with more elements than this are skipped (only their length kept).
_KEEP_ARRAY = 64
# Sanity limits: a header claiming more is corrupt, not a model.
_MAX_TENSORS = 1_000_000
_MAX_KEYS = 1_000_000
_MAX_DIMS = 8
_MAX_NESTING = 8  # arrays of arrays (a crafted header could nest them without end)

# GGUF metadata value types -> struct format of a scalar (None: string / array).
_SCALARS = {
    0: "<B",  # uint8
    1: "<b",  # int8
    2: "<H",  # uint16
    3: "<h",  # int16
    4: "<I",  # uint32
    5: "<i",  # int32
    6: "<f",  # float32
    7: "<?",  # bool
    10: "<Q",  # uint64
    11: "<q",  # int64
    12: "<d",  # float64
}
_STRING, _ARRAY = 8, 9

# ggml tensor types: id -> (name, elements per block, bytes per block); from ggml.h and
# ggml.c's type traits. A type not listed is sized from the distance to the next
# tensor's offset.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}


class GgufError(UsageError):
    """The file is missing, unreadable, not a GGUF file, or its header is cut short."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the file: its name, shape, ggml type and size in bytes."""

    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int  # from the start of the tensor data
    nbytes: int

    @property
    def type_name(self) -> str:
        known = GGML_TYPES.get(self.type_id)
        return known[0] if known else f"type {self.type_id}"


@dataclass(frozen=True)
class GgufFile:
    """What the header of one GGUF file says.

    Attributes:
        path: The file.
        version: The GGUF version.
        metadata: Every key; arrays longer than a few elements are kept as their
            length only (see :attr:`array_lengths`).
        array_lengths: For every array key, its number of elements.
        tensors: Every tensor, in file order.
        file_size: Bytes on disk.
        data_offset: Where the tensor data starts.
    """

    path: Path
    version: int
    metadata: Mapping[str, Any]
    array_lengths: Mapping[str, int]
    tensors: tuple[TensorInfo, ...]
    file_size: int
    data_offset: int
    _by_name: Mapping[str, TensorInfo] = field(default_factory=dict, repr=False, compare=False)

    @property
    def architecture(self) -> str:
        """``general.architecture`` (``gemma3``, ``llama``, ``clip`` ...), or ``""``."""
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else ""

    @property
    def tensor_bytes(self) -> int:
        """The bytes of every tensor together (what llama.cpp loads as the model)."""
        return sum(t.nbytes for t in self.tensors)

    def tensor(self, name: str) -> TensorInfo | None:
        """The tensor called ``name``, if the file has one."""
        return self._by_name.get(name)

    def key_int(self, key: str) -> int | None:
        """An integer metadata value (``None`` when absent or not a positive integer)."""
        value = self.metadata.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        return None


def read_gguf(path: str | os.PathLike[str]) -> GgufFile:
    """Read the header of the GGUF file at ``path``.

    Raises:
        GgufError: The file cannot be opened, is not GGUF, or is cut short / corrupt;
            the message says which, in one line.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < 24:
                magic = handle.read(4)
                if magic != _MAGIC:
                    raise GgufError(f"{path} is not a GGUF file")
                raise GgufError(f"{path} is cut short: its GGUF header is incomplete")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                return _Reader(view, path, size).read()
    except FileNotFoundError:
        raise GgufError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise GgufError(f"{path} is a directory, not a GGUF file") from None
    except PermissionError:
        raise GgufError(f"cannot read {path}: permission denied") from None
    except OSError as err:
        raise GgufError(f"cannot read {path}: {err.strerror or err}") from None


class _Truncated(Exception):
    pass


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class _Reader:
    """A cursor over the mapped header."""

    def __init__(self, view: mmap.mmap, path: Path, size: int) -> None:
        self.view = view
        self.path = path
        self.size = size
        self.pos = 0

    def read(self) -> GgufFile:
        view = self.view
        if view[:4] != _MAGIC:
            raise GgufError(f"{self.path} is not a GGUF file (it does not start with 'GGUF')")
        try:
            return self._read()
        except _Truncated:
            raise GgufError(
                f"{self.path} is cut short or corrupt: its GGUF header ends at byte {self.size}"
            ) from None
        except (
            UnicodeDecodeError, struct.error, OverflowError, ValueError, MemoryError, RecursionError
        ):
            raise GgufError(f"{self.path} has a corrupt GGUF header") from None

    def _need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _Truncated

    def u32(self) -> int:
        self._need(4)
        (value,) = _U32.unpack_from(self.view, self.pos)
        self.pos += 4
        return value

    def u64(self) -> int:
        self._need(8)
        (value,) = _U64.unpack_from(self.view, self.pos)
        self.pos += 8
        return value

    def string(self) -> str:
        length = self.u64()
        self._need(length)
        start = self.pos
        self.pos += length
        return bytes(self.view[start : self.pos]).decode("utf-8")

    def skip_strings(self, count: int) -> None:
        view, pos, size, unpack = self.view, self.pos, self.size, _U64.unpack_from
        for _ in range(count):
            if pos + 8 > size:
                raise _Truncated
            pos += 8 + unpack(view, pos)[0]
        if pos > size:
            raise _Truncated
        self.pos = pos

    def scalar(self, type_id: int) -> Any:
        fmt = _SCALARS.get(type_id)
        if fmt is None:
            raise GgufError(f"{self.path} has a corrupt GGUF header (value type {type_id})")
        width = struct.calcsize(fmt)
        self._need(width)
        (value,) = struct.unpack_from(fmt, self.view, self.pos)
        self.pos += width
        return value

    def value(self, type_id: int, key: str, lengths: dict[str, int], depth: int = 0) -> Any:
        if depth > _MAX_NESTING:
            raise GgufError(f"{self.path} has a corrupt GGUF header (arrays nested too deep)")
        if type_id == _STRING:
            return self.string()
        if type_id != _ARRAY:
            return self.scalar(type_id)
        item_type = self.u32()
        count = self.u64()
        lengths[key] = count
        if count > _KEEP_ARRAY:
            if item_type == _STRING:
                self.skip_strings(count)
            elif item_type in _SCALARS:
                width = struct.calcsize(_SCALARS[item_type])
                self._need(width * count)
                self.pos += width * count
            else:  # arrays of arrays: walk them
                for _ in range(count):
                    self.value(item_type, key, {}, depth + 1)
            return count
        return [self.value(item_type, key, {}, depth + 1) for _ in range(count)]

    def _read(self) -> GgufFile:
        self.pos = 4
        version = self.u32()
        if version not in (2, 3):
            raise GgufError(f"{self.path} is GGUF version {version}; versions 2 and 3 are read")
        tensor_count = self.u64()
        kv_count = self.u64()
        if tensor_count > _MAX_TENSORS or kv_count > _MAX_KEYS:
            raise GgufError(f"{self.path} has a corrupt GGUF header (impossible counts)")
        metadata: dict[str, Any] = {}
        lengths: dict[str, int] = {}
        for _ in range(kv_count):
            key = self.string()
            metadata[key] = self.value(self.u32(), key, lengths)
        infos: list[tuple[str, tuple[int, ...], int, int]] = []
        for _ in range(tensor_count):
            name = self.string()
            n_dims = self.u32()
            if n_dims > _MAX_DIMS:
                raise GgufError(f"{self.path} has a corrupt GGUF header ({n_dims}-D tensor)")
            shape = tuple(self.u64() for _ in range(n_dims))
            infos.append((name, shape, self.u32(), self.u64()))
        alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0:
            alignment = _DEFAULT_ALIGNMENT
        data_offset = -(-self.pos // alignment) * alignment
        tensors = _sized(infos, self.size - data_offset)
        for tensor in tensors:
            if data_offset + tensor.offset + tensor.nbytes > self.size:
                raise GgufError(
                    f"{self.path} is cut short: tensor {tensor.name} ends past the end of the "
                    f"file ({self.size} bytes)"
                )
        return GgufFile(
            path=self.path,
            version=version,
            metadata=metadata,
            array_lengths=lengths,
            tensors=tensors,
            file_size=self.size,
            data_offset=data_offset,
            _by_name={t.name: t for t in tensors},
        )


def _sized(
    infos: list[tuple[str, tuple[int, ...], int, int]], data_bytes: int
) -> tuple[TensorInfo, ...]:
    """Tensors with their byte sizes: from the type's block size where the type is known,
    else the distance to the next tensor's offset (or to the end of the file)."""
    offsets = sorted({offset for _, _, _, offset in infos})
    following = {a: b for a, b in zip(offsets, offsets[1:])}
    result = []
    for name, shape, type_id, offset in infos:
        elements = 1
        for dim in shape:
            elements *= dim
        known = GGML_TYPES.get(type_id)
        if known is not None:
            _, block, block_bytes = known
            nbytes = -(-elements // block) * block_bytes
        else:
            nbytes = following.get(offset, data_bytes) - offset
        result.append(TensorInfo(name, shape, type_id, offset, max(nbytes, 0)))
    return tuple(result)


# --------------------------------------------------------------------------- Gemma 3 plans

# gemma3.* key -> Arch field, all required to plan a file.
_ARCH_KEYS = {
    "hidden": "gemma3.embedding_length",
    "ffn": "gemma3.feed_forward_length",
    "layers": "gemma3.block_count",
    "heads": "gemma3.attention.head_count",
    "kv_heads": "gemma3.attention.head_count_kv",
    "head_dim": "gemma3.attention.key_length",
    "window": "gemma3.attention.sliding_window",
    "context_length": "gemma3.context_length",
}
# Ollama's gemma3 blobs carry the vision tower inline under these prefixes.
_VISION_PREFIXES = ("v.", "mm.")


def variant_from_gguf(
    path: str | os.PathLike[str], mmproj: str | os.PathLike[str] | None = None
) -> Variant:
    """A plannable :class:`~gemmatui.core.catalog.Variant` for any Gemma 3 GGUF file.

    The architecture comes from the file's ``gemma3.*`` keys, the weights from its
    tensor bytes (plus the projector file's, when given: llama-server loads both), the
    vocabulary from the tokenizer (or the embedding tensor), the token-embedding bytes
    from that tensor's real type. The variant's key is ``gguf`` and its tag
    ``gguf:<file name>``.

    Raises:
        GgufError: The file cannot be read, is not GGUF, or is not a Gemma 3 text model
            (a projector given as the model, another architecture, missing keys); or the
            projector file is not a Gemma 3 projector.
    """
    from dataclasses import replace

    from gemmatui.core.catalog import Arch, Variant

    model = read_gguf(path)
    arch_name = model.architecture
    if arch_name == "clip":
        raise GgufError(
            f"{model.path.name} is a vision projector (mmproj), not a model: pass the model "
            "file, and this one with --mmproj"
        )
    if arch_name != "gemma3":
        shown = f"a {arch_name!r} model" if arch_name else "a GGUF file with no architecture"
        raise GgufError(f"{model.path.name} is {shown}; gemmatui plans Gemma 3 (gemma3) models only")
    values: dict[str, int] = {}
    missing = []
    for field_name, key in _ARCH_KEYS.items():
        value = model.key_int(key)
        if value is None:
            missing.append(key)
        else:
            values[field_name] = value
    embedding = model.tensor("token_embd.weight")
    vocab = model.array_lengths.get("tokenizer.ggml.tokens") or (
        embedding.shape[1] if embedding is not None and len(embedding.shape) == 2 else 0
    )
    if not vocab:
        missing.append("tokenizer.ggml.tokens")
    if missing:
        raise GgufError(
            f"{model.path.name} lacks Gemma 3 keys needed for a plan: {', '.join(missing)}"
        )
    inline_vision = sum(t.nbytes for t in model.tensors if t.name.startswith(_VISION_PREFIXES))
    vision_bytes = inline_vision
    projector_note = ""
    if mmproj is not None:
        projector = read_gguf(mmproj)
        if projector.architecture != "clip":
            raise GgufError(
                f"{projector.path.name} is not a vision projector (its architecture is "
                f"{projector.architecture or 'missing'}, not clip)"
            )
        kind = projector.metadata.get("clip.projector_type")
        if isinstance(kind, str) and kind and kind != "gemma3":
            raise GgufError(
                f"{projector.path.name} is a {kind!r} projector, not Gemma 3's (gemma3)"
            )
        vision_bytes += projector.tensor_bytes
        projector_note = f" + {projector.path.name}"
    arch = Arch(**values, vocab=vocab, vision=vision_bytes > 0)
    name = model.metadata.get("general.name")
    size_label = model.metadata.get("general.size_label")
    variant = Variant(
        key="gguf",
        tag=f"gguf:{model.path.name}",
        # Header text is untrusted (GGUFs come from anywhere): shown as one clean line.
        label=(sanitize_line(name, 80) if isinstance(name, str) else "") or model.path.name,
        params=(sanitize_line(size_label, 20) if isinstance(size_label, str) else "") or "?",
        arch=arch,
        blob_bytes=model.tensor_bytes - inline_vision + vision_bytes,
        blob_source=f"GGUF tensors of {model.path.name}{projector_note}",
        vision_bytes=vision_bytes,
        arch_source=f"GGUF header of {model.path.name}",
    )
    if embedding is not None:
        variant = replace(variant, embedding_tensor_bytes=embedding.nbytes)
    return variant
