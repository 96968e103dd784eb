"""The Gemma 3 QAT catalogue: one table of the four Ollama tags and their architecture.

Sources (see ``docs/fit.md`` and the reference ``gemma3-memory.md``):

* architecture: google/gemma_pytorch ``gemma/config.py`` (``get_config_for_*_v3``),
  cross-checked with ollama ``convert/convert_gemma3.go`` and llama.cpp
  ``llama-model.cpp`` (``set_swa_pattern(6)``: every 6th layer is global);
* blob sizes: ``ollama list`` for the ``*-it-qat`` tags (decimal GB, rounded as
  Ollama prints them). When a model is installed, the exact byte size from
  ``/api/tags`` and the architecture keys of ``/api/show`` replace these values
  (:func:`with_installed`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping

from gemmatui.core.errors import UsageError

if TYPE_CHECKING:
    from gemmatui.core.types import InstalledModel, ModelDetails


@dataclass(frozen=True)
class Arch:
    """Text-model shape; field names follow the GGUF ``gemma3.*`` keys."""

    hidden: int  # gemma3.embedding_length
    ffn: int  # gemma3.feed_forward_length
    layers: int  # gemma3.block_count
    heads: int  # gemma3.attention.head_count
    kv_heads: int  # gemma3.attention.head_count_kv
    head_dim: int  # gemma3.attention.key_length (= value_length)
    window: int  # gemma3.attention.sliding_window
    context_length: int  # gemma3.context_length (trained maximum)
    vocab: int  # len(tokenizer.ggml.tokens)
    vision: bool  # SigLIP tower inside the blob
    swa_pattern: int = 6  # every 6th layer is global (5 local : 1 global)

    @property
    def global_layers(self) -> int:
        return self.layers // self.swa_pattern

    @property
    def sliding_layers(self) -> int:
        return self.layers - self.global_layers


@dataclass(frozen=True)
class Variant:
    key: str  # "27b"
    tag: str  # "gemma3:27b-it-qat"
    label: str  # "Gemma 3 27B"
    params: str  # "27B" (for people)
    arch: Arch
    blob_bytes: int  # the single GGUF blob Ollama loads (text + F16 embeddings + vision)
    blob_source: str  # where blob_bytes came from
    vision_bytes: int  # SigLIP tower + projector inside the blob (0 for text-only)
    arch_source: str = "catalogue"
    # The token-embedding tensor's real size when a GGUF header gave it.
    embedding_tensor_bytes: int | None = None

    @property
    def embedding_bytes(self) -> int:
        """Token-embedding table (also the tied output projection): F16 in Ollama's QAT
        blobs, or the size the GGUF file gives."""
        if self.embedding_tensor_bytes is not None:
            return self.embedding_tensor_bytes
        return self.arch.vocab * self.arch.hidden * 2

    def usable_ctx(self, num_ctx: int) -> int:
        """The context Ollama runs this model at for ``num_ctx``: capped at the trained
        length, and at least :data:`VISION_MIN_CTX` for a model that reads images."""
        ctx = min(num_ctx, self.arch.context_length)
        if self.arch.vision:
            ctx = max(ctx, VISION_MIN_CTX)
        return ctx

    @property
    def bytes_read_per_token(self) -> int:
        """Weights one decode step reads: every text weight once (the embedding table
        as the output projection); the vision tower is not touched."""
        return max(1, self.blob_bytes - self.vision_bytes)


#: Ollama gives a model that reads images at least this much context (``llm/server.go``).
VISION_MIN_CTX = 2048
_VISION_BYTES = 850_000_000  # SigLIP-So400m + projector in F16, about 0.85 GB
_LIST_SIZES = "rounded `ollama list` size"

VARIANTS: tuple[Variant, ...] = (
    Variant(
        key="1b",
        tag="gemma3:1b-it-qat",
        label="Gemma 3 1B",
        params="1B",
        arch=Arch(1152, 6912, 26, 4, 1, 256, 512, 32768, 262144, vision=False),
        blob_bytes=1_000_000_000,
        blob_source=_LIST_SIZES,
        vision_bytes=0,
    ),
    Variant(
        key="4b",
        tag="gemma3:4b-it-qat",
        label="Gemma 3 4B",
        params="4B",
        arch=Arch(2560, 10240, 34, 8, 4, 256, 1024, 131072, 262208, vision=True),
        blob_bytes=4_000_000_000,
        blob_source=_LIST_SIZES,
        vision_bytes=_VISION_BYTES,
    ),
    Variant(
        key="12b",
        tag="gemma3:12b-it-qat",
        label="Gemma 3 12B",
        params="12B",
        arch=Arch(3840, 15360, 48, 16, 8, 256, 1024, 131072, 262208, vision=True),
        blob_bytes=8_900_000_000,
        blob_source=_LIST_SIZES,
        vision_bytes=_VISION_BYTES,
    ),
    Variant(
        key="27b",
        tag="gemma3:27b-it-qat",
        label="Gemma 3 27B",
        params="27B",
        arch=Arch(5376, 21504, 62, 32, 16, 128, 1024, 131072, 262208, vision=True),
        blob_bytes=18_000_000_000,
        blob_source=_LIST_SIZES,
        vision_bytes=_VISION_BYTES,
    ),
)

_BY_KEY = {v.key: v for v in VARIANTS}
_BY_TAG = {v.tag: v for v in VARIANTS}


def variant_names() -> str:
    return ", ".join(v.key for v in VARIANTS)


def get_variant(name: str) -> Variant:
    """Find a variant by ``27b``, ``27B`` or its tag ``gemma3:27b-it-qat``.

    ``gemma3:27b`` is *not* a QAT variant: it is Ollama's other (non-QAT) build.

    >>> get_variant("27B").tag, get_variant("gemma3:12b-it-qat").key
    ('gemma3:27b-it-qat', '12b')
    """
    text = name.strip().lower()
    found = _BY_TAG.get(text) or _BY_KEY.get(text)
    if found is None:
        raise UsageError(
            f"unknown model {name!r}: choose one of {variant_names()} "
            "(or a full tag like gemma3:27b-it-qat)"
        )
    return found


def model_tag(name: str) -> str:
    """A catalogue name (``27b``, ``gemma3:27b-it-qat``) as its tag; another full
    ``name:tag`` as written.

    >>> model_tag("27B"), model_tag("llama3.2:3b"), model_tag("gemma3:12b")
    ('gemma3:27b-it-qat', 'llama3.2:3b', 'gemma3:12b')

    Raises:
        UsageError: Neither a catalogue name nor a ``name:tag``.
    """
    try:
        return get_variant(name).tag
    except UsageError:
        if ":" in name.strip():
            return name.strip()
        raise


def find_variant(name: str) -> Variant | None:
    """Like :func:`get_variant` but ``None`` for names outside the catalogue."""
    try:
        return get_variant(name)
    except UsageError:
        return None


# GGUF metadata key -> Arch field
_MODEL_INFO_KEYS = {
    "gemma3.embedding_length": "hidden",
    "gemma3.feed_forward_length": "ffn",
    "gemma3.block_count": "layers",
    "gemma3.attention.head_count": "heads",
    "gemma3.attention.head_count_kv": "kv_heads",
    "gemma3.attention.key_length": "head_dim",
    "gemma3.attention.sliding_window": "window",
    "gemma3.context_length": "context_length",
}


def arch_from_model_info(model_info: Mapping[str, Any], base: Arch) -> Arch:
    """Override ``base`` with the architecture keys of ``/api/show``'s ``model_info``.

    Every key is optional (older blobs lack some); values that are not positive
    integers are ignored. ``tokenizer.ggml.tokens`` counts only when it is a
    non-empty list (the server blanks long arrays unless asked for ``verbose``).
    """
    changes: dict[str, Any] = {}
    for key, field_name in _MODEL_INFO_KEYS.items():
        value = model_info.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            changes[field_name] = value
    tokens = model_info.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list) and tokens:
        changes["vocab"] = len(tokens)
    if any(str(k).startswith("gemma3.vision.") for k in model_info):
        changes["vision"] = True
    return replace(base, **changes)


def with_installed(
    variant: Variant,
    *,
    size_bytes: int | None = None,
    model_info: Mapping[str, Any] | None = None,
) -> Variant:
    """The variant as actually installed: exact blob size and architecture from Ollama."""
    result = variant
    if size_bytes and size_bytes > 0:
        result = replace(result, blob_bytes=size_bytes, blob_source="installed (/api/tags)")
    if model_info:
        arch = arch_from_model_info(model_info, result.arch)
        if arch != result.arch:
            result = replace(result, arch=arch, arch_source="installed (/api/show)")
    return result


def variants_as_installed(
    installed: Mapping[str, InstalledModel] | None = None,
    details: Mapping[str, ModelDetails] | None = None,
) -> tuple[Variant, ...]:
    """The catalogue, each variant as Ollama has it installed (by tag): the exact blob
    size from ``/api/tags`` and the architecture from ``/api/show`` where known."""
    installed = installed or {}
    details = details or {}
    return tuple(
        with_installed(
            v,
            size_bytes=installed[v.tag].size_bytes if v.tag in installed else None,
            model_info=details[v.tag].model_info if v.tag in details else None,
        )
        for v in VARIANTS
    )


def capped_context(model: str, requested: int, variants: tuple[Variant, ...] = VARIANTS) -> int:
    """The context a chat with ``model`` runs at: ``requested`` as Ollama applies it
    (:meth:`Variant.usable_ctx`) when the model is one of the catalogue's.

    ``variants`` gives the maximum as installed (:func:`variants_as_installed`, from
    ``/api/show``) where known; a model outside the catalogue keeps ``requested``.

    >>> capped_context("1b", 131072), capped_context("gemma3:1b-it-qat", 8192)
    (32768, 8192)
    >>> capped_context("gemma3:27b-it-qat", 1048576), capped_context("llama3.2:3b", 131072)
    (131072, 131072)
    """
    found = find_variant(model)
    if found is None:
        return requested
    as_installed = next((v for v in variants if v.key == found.key), found)
    return as_installed.usable_ctx(requested)
