"""A tiny GGUF writer for tests: real headers, written by the documented format, so the
reader is tested against files it did not make itself (and against broken ones)."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# value type ids (ggml/docs/gguf.md)
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# ggml tensor types used here: id, elements per block, bytes per block
F32_T, F16_T, Q4_0_T, Q8_0_T = (0, 1, 4), (1, 1, 2), (2, 32, 18), (8, 32, 34)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _value(value: Any, type_id: int | None = None) -> tuple[int, bytes]:
    if isinstance(value, bool):
        return BOOL, struct.pack("<?", value)
    if isinstance(value, int):
        return (type_id or U32), struct.pack("<I" if (type_id or U32) == U32 else "<Q", value)
    if isinstance(value, float):
        return F32, struct.pack("<f", value)
    if isinstance(value, str):
        return STRING, _string(value)
    if isinstance(value, list):
        item_type = (ARRAY if isinstance(value[0], list) else _value(value[0])[0]) if value else U32
        body = b"".join(_value(v)[1] for v in value)
        return ARRAY, struct.pack("<IQ", item_type, len(value)) + body
    raise TypeError(value)


def gguf_bytes(
    metadata: Mapping[str, Any],
    tensors: Sequence[tuple[str, tuple[int, ...], tuple[int, int, int]]] = (),
    *,
    alignment: int = 32,
    version: int = 3,
    with_data: bool = True,
) -> bytes:
    """A GGUF file: ``metadata`` keys, then ``tensors`` as (name, shape, ggml type)."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    for key, value in metadata.items():
        type_id, raw = _value(value)
        head += _string(key) + struct.pack("<I", type_id) + raw
    offset = 0
    sizes = []
    for name, shape, (type_id, block, block_bytes) in tensors:
        elements = 1
        for dim in shape:
            elements *= dim
        nbytes = -(-elements // block) * block_bytes
        head += _string(name) + struct.pack("<I", len(shape))
        head += b"".join(struct.pack("<Q", d) for d in shape)
        head += struct.pack("<IQ", type_id, offset)
        sizes.append(nbytes)
        offset += -(-nbytes // alignment) * alignment
    head += b"\0" * (-len(head) % alignment)
    return head + (b"\0" * offset if with_data else b"")


def gemma3_metadata(**overrides: Any) -> dict[str, Any]:
    """The keys of a small Gemma 3 model (the 270M's shape with a tiny vocabulary)."""
    meta: dict[str, Any] = {
        "general.architecture": "gemma3",
        "general.name": "Tiny Gemma",
        "general.size_label": "1M",
        "gemma3.context_length": 32768,
        "gemma3.embedding_length": 64,
        "gemma3.block_count": 6,
        "gemma3.feed_forward_length": 128,
        "gemma3.attention.head_count": 4,
        "gemma3.attention.head_count_kv": 1,
        "gemma3.attention.key_length": 16,
        "gemma3.attention.value_length": 16,
        "gemma3.attention.sliding_window": 512,
        "tokenizer.ggml.tokens": [f"t{i}" for i in range(100)],
    }
    meta.update(overrides)
    return {k: v for k, v in meta.items() if v is not None}


def gemma3_tensors(vocab: int = 100, hidden: int = 64) -> list:
    return [
        ("token_embd.weight", (hidden, vocab), Q8_0_T),
        ("blk.0.attn_q.weight", (hidden, hidden), Q4_0_T),
        ("output_norm.weight", (hidden,), F32_T),
    ]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
