"""Will it fit? The memory model of Gemma 3 under current Ollama (llama-server), and the
recommendation built on it. Pure: no I/O, no imports beyond the standard library.

The formulas are those of ``shared/reference/gemma3-memory.md`` (section 3), explained
in plain words in ``docs/fit.md``:

* **weights** = the GGUF blob (Q4_0 text weights, F16 embeddings, the vision tower);
* **KV cache** = (global layers x cells(ctx) + sliding layers x cells(window + ubatch))
  x 2 x KV heads x head dim x bytes per element, cells padded to 256;
* **compute** = one layer's FFN block and the attention masks for one micro-batch
  (flash attention on), or the f32 score matrix of a global layer (flash attention off);
* **margin** = the 1 GiB llama-server's ``--fit`` keeps free on each GPU (none on a
  machine without a GPU: there ``need`` is the system RAM the model takes).

The model fits fully on a GPU when ``weights + KV + compute + margin`` is at most what
llama-server sees free: NVML's free memory minus the runner's CUDA context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Literal, Mapping

from gemmatui.core.catalog import VARIANTS, Variant
from gemmatui.core.errors import UsageError
from gemmatui.core.machine import KV_TYPES, HardwareSnapshot, KvType
from gemmatui.core.units import GiB, MiB, format_bytes, format_ctx

#: llama-server's ``--fit`` target: memory it leaves free on every GPU.
FIT_MARGIN = 1 * GiB
#: What the runner's own CUDA/ROCm context takes before llama-server measures free
#: memory (Ollama's ``MinimumMemory`` per GPU). NVML's free figure is read before it exists.
RUNNER_CONTEXT = 457 * MiB
#: Share of peak memory bandwidth a decode step reaches in practice (assumption,
#: see docs/fit.md: measured llama.cpp decode runs at 60-80 % of the datasheet figure).
BANDWIDTH_EFFICIENCY = 0.7
#: Context tiers Ollama picks when nothing sets num_ctx (server/routes.go, >= 0.15.5).
CONTEXT_TIERS = ((47 * GiB, 262144), (23 * GiB, 32768), (0, 4096))
CTX_PAD = 256
#: A quantized cache adds this much to llama.cpp's compute buffer (measured on the real
#: 270M: +0.53 MiB at ubatch 512, +0.54 MiB at 1024; "under 1 MiB" on full-size models).
QUANTIZED_KV_COMPUTE = 566_272  # 0.54 MiB

Verdict = Literal["gpu", "partial", "cpu", "none"]
VERDICT_TEXT: dict[str, str] = {
    "gpu": "fits on GPU",
    "partial": "partial offload",
    "cpu": "CPU only",
    "none": "does not fit",
}


def _pad(cells: int) -> int:
    return -(-cells // CTX_PAD) * CTX_PAD


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class FitSettings:
    """What Ollama will run with. ``None`` = let Ollama decide (its own default).

    ``sources`` says where each value came from (``--ctx``, ``OLLAMA_KV_CACHE_TYPE of
    ollama serve, pid 42``, ``Ollama default`` …) so the output can say so.
    """

    num_ctx: int | None = None
    kv_type: KvType = "f16"
    num_parallel: int = 1
    flash_attention: bool | None = None  # None: Ollama's "auto"
    num_batch: int | None = None  # None: Ollama picks (automaticGenerationBatch)
    gpu_overhead: int = 0  # OLLAMA_GPU_OVERHEAD, bytes
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # settings we could not take as they were

    def with_source(self, key: str, value: object, source: str) -> FitSettings:
        return replace(self, **{key: value}, sources={**self.sources, key: source})


_TRUE = {"1", "t", "true"}
_FALSE = {"0", "f", "false"}

#: Cache types llama-server accepts for ``--cache-type-k/v``, as bytes per element
#: (GGML block sizes: q8_0 34 bytes per 32 values, q5_1 24, q5_0 22, q4_1 20, q4_0 and
#: iq4_nl 18). ``fit``'s table compares the three Ollama documents: f16, q8_0, q4_0.
KV_BYTES_PER_ELEMENT: dict[str, float] = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q5_1": 24 / 32,
    "q5_0": 22 / 32,
    "q4_1": 20 / 32,
    "iq4_nl": 18 / 32,
    "q4_0": 18 / 32,
}
#: Quantized caches: llama.cpp needs flash attention for them.
QUANTIZED_KV = frozenset(KV_BYTES_PER_ELEMENT) - {"f32", "f16", "bf16"}


def parse_kv_type(value: str, *, what: str = "KV cache type") -> KvType:
    """A cache type llama-server accepts (case-insensitive), else :class:`UsageError`."""
    text = value.strip().lower()
    if text not in KV_BYTES_PER_ELEMENT:
        raise UsageError(
            f"invalid {what} {value!r}: choose f16, q8_0 or q4_0 "
            f"(llama-server also takes {', '.join(k for k in KV_BYTES_PER_ELEMENT if k not in KV_TYPES)})"
        )
    return text


def parse_count(value: str, what: str, minimum: int = 1, maximum: int | None = None) -> int:
    """A whole number in range, else :class:`UsageError` naming ``what`` and the value."""
    try:
        number = int(value.strip())
    except ValueError:
        raise UsageError(f"invalid {what} {value!r}: use a whole number") from None
    if number < minimum or (maximum is not None and number > maximum):
        limit = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise UsageError(f"invalid {what} {value!r}: must be {limit}")
    return number


def settings_from_env(env: Mapping[str, str], source: str = "environment") -> FitSettings:
    """Ollama's own settings, read from the server's (or our) environment.

    Only what is set counts; the rest stays at Ollama's defaults. ``source`` labels
    where the environment came from (``ollama serve, pid 42``, ``this shell``); a
    setting's source reads ``OLLAMA_KV_CACHE_TYPE of ollama serve, pid 42``.
    A value Ollama itself would not understand never stops us: we do what Ollama does
    with it (a non-boolean flash-attention value counts as on, a bad number as unset)
    and say so in :attr:`FitSettings.warnings`.
    """
    settings = FitSettings(
        sources={
            "num_ctx": "Ollama default",
            "kv_type": "Ollama default",
            "num_parallel": "Ollama default",
            "flash_attention": "Ollama default (auto)",
        }
    )
    warnings: list[str] = []

    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value is not None and value.strip() else None

    def number(name: str, value: str, minimum: int) -> int | None:
        try:
            return parse_count(value, name, minimum)
        except UsageError as err:
            warnings.append(f"{err}; it comes from {source}, and Ollama ignores it, so do we")
            return None

    if (v := get("OLLAMA_KV_CACHE_TYPE")) is not None:
        try:
            kv = parse_kv_type(v, what="OLLAMA_KV_CACHE_TYPE")
            settings = settings.with_source("kv_type", kv, f"OLLAMA_KV_CACHE_TYPE of {source}")
        except UsageError:
            warnings.append(
                f"OLLAMA_KV_CACHE_TYPE={v!r} of {source} is no cache type llama-server knows: "
                "it will refuse to load models; planned with f16"
            )
    if (v := get("OLLAMA_FLASH_ATTENTION")) is not None:
        text = v.strip().lower()
        fa = text not in _FALSE  # Go's envconfig.Bool: anything but a false value is true
        if text not in _TRUE | _FALSE:
            warnings.append(
                f"OLLAMA_FLASH_ATTENTION={v!r} of {source} is no boolean: Ollama reads it as on"
            )
        settings = settings.with_source(
            "flash_attention", fa, f"OLLAMA_FLASH_ATTENTION of {source}"
        )
    if (v := get("OLLAMA_NUM_PARALLEL")) is not None:
        if (n := number("OLLAMA_NUM_PARALLEL", v, 1)) is not None:
            settings = settings.with_source("num_parallel", n, f"OLLAMA_NUM_PARALLEL of {source}")
    if (v := get("OLLAMA_CONTEXT_LENGTH")) is not None:
        if (n := number("OLLAMA_CONTEXT_LENGTH", v, 1)) is not None:
            settings = settings.with_source("num_ctx", n, f"OLLAMA_CONTEXT_LENGTH of {source}")
    if (v := get("OLLAMA_GPU_OVERHEAD")) is not None:
        if (n := number("OLLAMA_GPU_OVERHEAD", v, 0)) is not None:
            settings = replace(settings, gpu_overhead=n)
    return replace(settings, warnings=tuple(warnings))


def layered_settings(
    env: Mapping[str, str],
    env_source: str = "environment",
    *,
    config_ctx: int | None = None,
    config_kv: str | None = None,
    ctx: int | None = None,
    kv_type: str | None = None,
    num_parallel: int | None = None,
    flash_attention: bool | None = None,
) -> FitSettings:
    """All sources in order. Flags win; then, for the context, gemmatui's config (every
    chat request carries it as ``num_ctx``, which beats the server's
    ``OLLAMA_CONTEXT_LENGTH``); then the server's environment; then the config's
    ``kv_cache_type``; then Ollama's defaults."""
    s = settings_from_env(env, env_source)
    if config_kv is not None and "OLLAMA_KV_CACHE_TYPE" not in s.sources.get("kv_type", ""):
        s = s.with_source("kv_type", parse_kv_type(config_kv), "config")
    if config_ctx is not None:
        s = s.with_source("num_ctx", config_ctx, "config")
    if ctx is not None:
        s = s.with_source("num_ctx", ctx, "--ctx")
    if kv_type is not None:
        s = s.with_source("kv_type", parse_kv_type(kv_type), "--kv-cache")
    if num_parallel is not None:
        if num_parallel < 1:
            raise UsageError(f"invalid --parallel {num_parallel}: must be at least 1")
        s = s.with_source("num_parallel", num_parallel, "--parallel")
    if flash_attention is not None:
        s = s.with_source("flash_attention", flash_attention, "--flash-attention")
    return s


# --------------------------------------------------------------------------- estimate


@dataclass(frozen=True)
class Breakdown:
    """Bytes one variant needs on the GPU for a full offload."""

    ctx: int  # tokens per sequence actually used (after capping)
    requested_ctx: int
    ubatch: int
    kv_type: KvType
    num_parallel: int
    flash_attention: bool
    cells_global: int
    cells_sliding: int
    weights: int
    kv_global: int
    kv_sliding: int
    compute: int  # includes kv_f16_copy
    kv_f16_copy: int  # CUDA flash attention on a quantized cache: f16 copy of one global layer
    margin: int
    output: int = 0  # logits of one token per sequence: np x vocab x 4 bytes

    @property
    def kv(self) -> int:
        return self.kv_global + self.kv_sliding

    @property
    def allocated(self) -> int:
        """What the runner allocates (what Ollama's ``/api/ps`` reports as ``size``)."""
        return self.weights + self.kv + self.compute + self.output

    @property
    def need(self) -> int:
        """Free memory llama-server must see for 100 % GPU: the allocation plus margin.

        Without a GPU the margin is 0, so this is the system RAM the model takes.
        """
        return self.allocated + self.margin

    @property
    def ctx_capped(self) -> bool:
        return self.ctx < self.requested_ctx


def used_ctx(variant: Variant, num_ctx: int) -> int:
    """Ollama caps num_ctx at the trained length; vision models get at least 2048."""
    return variant.usable_ctx(num_ctx)


def kv_cells(variant: Variant, ctx: int, num_parallel: int, ubatch: int) -> tuple[int, int]:
    """(cells per global layer, cells per sliding layer) of llama.cpp's iSWA cache.

    With several parallel sequences, Ollama starts llama-server without ``--kv-unified``:
    each sequence has its own cells (measured on the real 270M: exactly ``np`` times the
    one-sequence cache). The unified layout (one shared sliding cache of
    ``pad(window × np + ubatch)``) is never larger, so the larger of the two is what
    either mode needs.
    """
    arch = variant.arch
    cells_global = _pad(ctx * num_parallel)
    per_seq = min(_pad(ctx), _pad(arch.window + ubatch))
    if num_parallel == 1:
        sliding = per_seq
    else:
        sliding = max(num_parallel * per_seq, _pad(arch.window * num_parallel + ubatch))
    return cells_global, min(cells_global, sliding)


def estimate(
    variant: Variant,
    num_ctx: int,
    kv_type: KvType = "f16",
    *,
    num_parallel: int = 1,
    ubatch: int = 512,
    flash_attention: bool = True,
    cuda: bool = True,
    margin: int = FIT_MARGIN,
) -> Breakdown:
    """Byte breakdown for ``variant`` at ``num_ctx`` (capped at the model's maximum).

    ``cuda``: the backend is CUDA/ROCm, where flash attention on a quantized cache
    works on an f16 copy of one global layer's K and V. ``margin``: what is kept free
    beside the allocation (llama-server's 1 GiB per GPU; 0 when there is no GPU).
    """
    kv_type = parse_kv_type(kv_type)
    if num_parallel < 1 or ubatch < 1 or num_ctx < 1:
        raise UsageError("num_ctx, num_parallel and ubatch must be at least 1")
    arch = variant.arch
    ctx = used_ctx(variant, num_ctx)
    c_g, c_s = kv_cells(variant, ctx, num_parallel, ubatch)
    per_cell = 2 * arch.kv_heads * arch.head_dim * KV_BYTES_PER_ELEMENT[kv_type]
    kv_global = int(arch.global_layers * c_g * per_cell)
    kv_sliding = int(arch.sliding_layers * c_s * per_cell)
    u = ubatch
    # The graph is reserved for one sequence's stream even when np > 1 (measured on
    # the real 270M at np 2): its attention terms use one sequence's cells.
    g1, s1 = kv_cells(variant, ctx, 1, ubatch)
    if flash_attention:
        compute = 4 * u * (3 * arch.ffn + 5 * arch.hidden) + 2 * u * (g1 + s1) + 56 * u
    else:
        compute = 4 * u * arch.heads * g1 + 4 * u * (g1 + s1) + 40 * u * arch.hidden
    if kv_type in QUANTIZED_KV:
        compute += QUANTIZED_KV_COMPUTE
    f16_copy = 0
    if cuda and flash_attention and kv_type in QUANTIZED_KV:
        f16_copy = 4 * c_g * arch.kv_heads * arch.head_dim
    return Breakdown(
        ctx=ctx,
        requested_ctx=num_ctx,
        ubatch=u,
        kv_type=kv_type,
        num_parallel=num_parallel,
        flash_attention=flash_attention,
        cells_global=c_g,
        cells_sliding=c_s,
        weights=variant.blob_bytes,
        kv_global=kv_global,
        kv_sliding=kv_sliding,
        compute=compute + f16_copy,
        kv_f16_copy=f16_copy,
        margin=margin,
        output=num_parallel * arch.vocab * 4,
    )


def ollama_preflight(variant: Variant, num_ctx: int, num_parallel: int = 1) -> int:
    """Ollama's own (over-)estimate ``PredictServerVRAM``: every layer at full context,
    f16, hidden/heads as the head size. Used only to pick the micro-batch and the GPU."""
    a = variant.arch
    ctx = used_ctx(variant, num_ctx) * num_parallel
    return variant.blob_bytes + 2 * a.layers * a.kv_heads * (a.hidden // a.heads) * ctx * 2


def choose_ubatch(
    variant: Variant,
    num_ctx: int,
    *,
    num_parallel: int = 1,
    flash_attention: bool = True,
    backend: str = "cuda",
    free_bytes: int = 0,
    smallest_gpu_total: int | None = None,
    num_batch: int | None = None,
) -> int:
    """The micro-batch Ollama passes as ``-b/-ub`` (``automaticGenerationBatch``).

    Starts at 512 (ctx <= 4096), 1024 (<= 32768) or 2048 and steps down to 512 unless
    Ollama's preflight P leaves room: P <= 60 % (2048) / 75 % (1024) of free memory and
    P plus the batch's surcharge (2 GiB / 768 MiB) <= 80 % of free.
    """
    if num_batch:
        return num_batch
    window = used_ctx(variant, num_ctx) * num_parallel
    if backend == "cuda" and not flash_attention:
        small = smallest_gpu_total is not None and smallest_gpu_total <= 8 * GiB
        return 256 if window > 4096 and small else 512
    p = ollama_preflight(variant, num_ctx, num_parallel)
    for batch, share, surcharge in ((2048, 0.60, 2 * GiB), (1024, 0.75, 768 * MiB)):
        start = 2048 if window > 32768 else 1024 if window > 4096 else 512
        if batch > start:
            continue
        if free_bytes and p <= share * free_bytes and p + surcharge <= 0.8 * free_bytes:
            return batch
    return 512


# --------------------------------------------------------------------------- hardware


@dataclass(frozen=True)
class GpuBudget:
    index: int
    name: str
    free: int  # NVML free (or equivalent)
    usable: int  # what llama-server will see: free minus the runner's context
    total: int
    bandwidth: float | None


def gpu_budgets(hw: HardwareSnapshot) -> tuple[GpuBudget, ...]:
    out = []
    for gpu in hw.gpus:
        total = gpu.total_bytes or 0
        free = gpu.free_bytes if gpu.free_bytes is not None else total
        runner = RUNNER_CONTEXT if hw.backend in ("cuda", "rocm") else 0
        out.append(
            GpuBudget(gpu.index, gpu.name, free, max(0, free - runner), total, gpu.bandwidth_bytes_per_s)
        )
    return tuple(out)


def flash_attention_supported(hw: HardwareSnapshot) -> bool:
    """Ollama's auto: off when any NVIDIA GPU has compute capability < 6.0 or 7.2."""
    if hw.backend != "cuda":
        return True
    for gpu in hw.gpus:
        cc = gpu.compute_capability
        if cc is not None and (cc < (6, 0) or cc == (7, 2)):
            return False
    return True


def ollama_default_ctx(hw: HardwareSnapshot, gpu_overhead: int = 0) -> int:
    """num_ctx Ollama uses when nothing sets it: by total VRAM (4k / 32k / 256k)."""
    vram = sum(max(0, (g.total_bytes or 0) - gpu_overhead) for g in hw.gpus)
    return next(ctx for threshold, ctx in CONTEXT_TIERS if vram >= threshold)


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class VariantFit:
    variant: Variant
    breakdown: Breakdown
    verdict: Verdict
    gpu_layer_share: float  # 0..1, layers on the GPU(s)
    gpus_used: int  # 1, or several when the layers are split
    max_ctx: Mapping[str, int | None]  # kv type -> largest ctx that still fits fully on GPU
    tokens_per_s: float | None  # predicted decode speed (memory-bandwidth bound)
    ram_need: int  # system RAM for the part not on a GPU
    notes: tuple[str, ...] = ()

    @property
    def verdict_text(self) -> str:
        if self.verdict == "partial":
            return f"partial offload ({self.gpu_layer_share:.0%} on GPU)"
        return VERDICT_TEXT[self.verdict]

    @property
    def fits_gpu(self) -> bool:
        return self.verdict == "gpu"


@dataclass(frozen=True)
class FitReport:
    hardware: HardwareSnapshot
    settings: FitSettings  # resolved: num_ctx and flash_attention are never None here
    budgets: tuple[GpuBudget, ...]
    rows: tuple[VariantFit, ...]
    recommended: VariantFit | None  # largest that fits fully on the GPU
    fallback: VariantFit | None  # when nothing fits fully: the largest that still runs
    reason: str
    hint: str | None
    warnings: tuple[str, ...]

    @property
    def budget(self) -> int:
        return sum(b.usable for b in self.budgets)

    def row(self, key: str) -> VariantFit:
        for r in self.rows:
            if r.variant.key == key or r.variant.tag == key:
                return r
        raise KeyError(key)


def _fits_fully(bd: Breakdown, budgets: tuple[GpuBudget, ...]) -> tuple[bool, int]:
    """(fits, GPUs used). One GPU if any holds it all, else split across all of them:
    each GPU keeps its own margin and compute buffer, the layers (weights + KV) split."""
    if not budgets:
        return False, 0
    if any(b.usable >= bd.need for b in budgets):
        return True, 1
    if len(budgets) > 1:
        room = sum(max(0, b.usable - bd.margin - bd.compute) for b in budgets)
        if room >= bd.weights + bd.kv:
            return True, len(budgets)
    return False, 0


def projector_on_gpu(variant: Variant, budgets: tuple[GpuBudget, ...]) -> bool:
    """Whether Ollama puts the vision projector on the GPU: only when every GPU has the
    projector's size + 1 GiB free as llama-server sees it (it then passes that sum as
    ``LLAMA_ARG_FIT_TARGET``, so the text model fits around it); otherwise the projector
    stays on the CPU (``--no-mmproj-offload``) and images are encoded there."""
    if not variant.vision_bytes or not budgets:
        return False
    return all(b.usable >= variant.vision_bytes + FIT_MARGIN for b in budgets)


def _gpu_share(variant: Variant, bd: Breakdown, budgets: tuple[GpuBudget, ...]) -> float:
    """Share of the repeating layers that llama-server's fit would put on the GPUs.

    The output projection (the F16 embedding table, tied) stays on the GPU first; the
    vision projector takes its place beside it when :func:`projector_on_gpu` (inside
    the fit target, so the layers get that much less), else it goes to the CPU.
    """
    fixed = variant.embedding_bytes
    projector = variant.vision_bytes if projector_on_gpu(variant, budgets) else 0
    room = sum(max(0, b.usable - bd.margin - bd.compute) for b in budgets) - fixed - projector
    per_layer = (variant.blob_bytes - variant.vision_bytes - fixed + bd.kv) / variant.arch.layers
    if room <= 0 or per_layer <= 0:
        return 0.0
    layers = min(variant.arch.layers, math.floor(room / per_layer))
    return layers / variant.arch.layers


def _speed(variant: Variant, share: float, budgets: tuple[GpuBudget, ...], gpus_used: int) -> float | None:
    """Decode tokens/s when memory bandwidth bounds it: weights read once per token."""
    if share < 1.0 or not budgets:
        return None  # CPU memory bandwidth is unknown: no honest number to give
    used = sorted(budgets, key=lambda b: b.usable, reverse=True)[:gpus_used]
    bandwidths = [b.bandwidth for b in used]
    if not bandwidths or any(bw is None for bw in bandwidths):
        return None
    bw = min(bw for bw in bandwidths if bw is not None)
    return bw * BANDWIDTH_EFFICIENCY / variant.bytes_read_per_token


def _estimate_for(
    variant: Variant, settings: FitSettings, hw: HardwareSnapshot, budgets: tuple[GpuBudget, ...], kv_type: KvType, num_ctx: int
) -> Breakdown:
    fa = bool(settings.flash_attention)
    free = max((b.free for b in budgets), default=0)
    smallest = min((b.total for b in budgets), default=None)
    ub = choose_ubatch(
        variant,
        num_ctx,
        num_parallel=settings.num_parallel,
        flash_attention=fa,
        backend=hw.backend,
        free_bytes=free,
        smallest_gpu_total=smallest,
        num_batch=settings.num_batch,
    )
    return estimate(
        variant,
        num_ctx,
        kv_type,
        num_parallel=settings.num_parallel,
        ubatch=ub,
        flash_attention=fa,
        cuda=hw.backend in ("cuda", "rocm"),
        # llama-server keeps its margin free on a GPU; without one nothing is kept
        # back, and the need is what the model takes in system RAM.
        margin=FIT_MARGIN if budgets else 0,
    )


def max_fitting_ctx(
    variant: Variant, settings: FitSettings, hw: HardwareSnapshot, kv_type: KvType, step: int = 1024
) -> int | None:
    """Largest context (a multiple of ``step``) at which ``variant`` fits fully on the GPU.

    The need grows with the context at a fixed micro-batch, but the micro-batch Ollama
    picks is not monotonic in the context (it rises above 4k and 32k where memory is
    plentiful, and falls back to 512 as Ollama's own estimate grows). So: bisect with
    the smallest micro-batch Ollama could pick (an upper bound: nothing larger can
    fit), then step down from there with the micro-batch it really picks.
    """
    budgets = gpu_budgets(hw)
    if not budgets or (kv_type in QUANTIZED_KV and not settings.flash_attention):
        return None
    smallest_ubatch = settings.num_batch or (512 if settings.flash_attention else 256)

    def fits(ctx: int, ubatch: int | None) -> bool:
        if ubatch is None:
            bd = _estimate_for(variant, settings, hw, budgets, kv_type, ctx)
        else:
            bd = estimate(
                variant,
                ctx,
                kv_type,
                num_parallel=settings.num_parallel,
                ubatch=ubatch,
                flash_attention=bool(settings.flash_attention),
                cuda=hw.backend in ("cuda", "rocm"),
            )
        return _fits_fully(bd, budgets)[0]

    lo, hi, bound = 1, variant.arch.context_length // step, 0
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(mid * step, smallest_ubatch):
            bound, lo = mid, mid + 1
        else:
            hi = mid - 1
    for steps in range(bound, 0, -1):
        if fits(steps * step, None):
            return steps * step
    return None


def resolve_settings(hw: HardwareSnapshot, settings: FitSettings) -> tuple[FitSettings, list[str]]:
    """Fill in what Ollama would decide itself: default context, flash attention."""
    warnings: list[str] = []
    if settings.num_ctx is None:
        settings = settings.with_source(
            "num_ctx", ollama_default_ctx(hw, settings.gpu_overhead), "Ollama default for this VRAM"
        )
    if settings.flash_attention is None:
        supported = flash_attention_supported(hw)
        settings = settings.with_source(
            "flash_attention", supported, "Ollama auto" + ("" if supported else " (GPU too old)")
        )
    warnings.extend(settings.warnings)
    if settings.kv_type in QUANTIZED_KV and not settings.flash_attention:
        warnings.append(
            f"a {settings.kv_type} KV cache needs flash attention, which is off here: "
            "llama-server refuses to start; use --kv-cache f16"
        )
    if settings.kv_type in QUANTIZED_KV and settings.flash_attention and hw.backend in ("cuda", "rocm"):
        warnings.append(
            f"{settings.kv_type} on CUDA counts an f16 copy of one global layer's KV for flash "
            "attention (read from llama.cpp's code, not measured: errs on the safe side)"
        )
    return settings, warnings


def plan(
    hw: HardwareSnapshot, settings: FitSettings, variants: Iterable[Variant] = VARIANTS
) -> FitReport:
    """Estimate every variant on ``hw`` and pick the largest that fits fully on the GPU."""
    settings, warnings = resolve_settings(hw, settings)
    assert settings.num_ctx is not None
    budgets = gpu_budgets(hw)
    blocked = settings.kv_type in QUANTIZED_KV and not settings.flash_attention
    rows = []
    for variant in sorted(variants, key=lambda v: v.blob_bytes):
        bd = _estimate_for(variant, settings, hw, budgets, settings.kv_type, settings.num_ctx)
        notes = []
        if bd.ctx_capped:
            notes.append(f"{variant.params} reads at most {format_ctx(variant.arch.context_length)}: context capped")
        elif bd.ctx > bd.requested_ctx:
            notes.append(f"Ollama gives vision models at least {format_ctx(bd.ctx)} of context")
        fits, gpus_used = _fits_fully(bd, budgets)
        cpu_part = bd.allocated
        if blocked:
            verdict, share, ram_need = "none", 0.0, 0
            notes.append("will not start: quantized KV cache without flash attention")
        elif fits:
            verdict, share, ram_need = "gpu", 1.0, 0
            if gpus_used > 1:
                notes.append(f"layers split across {gpus_used} GPUs")
        else:
            share = _gpu_share(variant, bd, budgets) if budgets else 0.0
            if budgets and variant.vision_bytes and not projector_on_gpu(variant, budgets):
                notes.append("vision projector on the CPU (less than it + 1 GiB free on a GPU)")
            ram_need = int(cpu_part * (1 - share)) + (variant.embedding_bytes if share else 0)
            if ram_need > hw.ram_available_bytes:
                verdict = "none"
            else:
                verdict = "partial" if share > 0 else "cpu"
        max_ctx = {kv: max_fitting_ctx(variant, settings, hw, kv) for kv in KV_TYPES}
        rows.append(
            VariantFit(
                variant=variant,
                breakdown=bd,
                verdict=verdict,  # type: ignore[arg-type]
                gpu_layer_share=share,
                gpus_used=gpus_used,
                max_ctx=max_ctx,
                tokens_per_s=_speed(variant, share, budgets, max(1, gpus_used)),
                ram_need=ram_need,
                notes=tuple(notes),
            )
        )
    rows_t = tuple(rows)
    recommended = next((r for r in reversed(rows_t) if r.verdict == "gpu"), None)
    fallback = None if recommended is not None else _fallback(rows_t)
    reason = _reason(settings, budgets, recommended, fallback)
    hint = _hint(rows_t, recommended, settings)
    return FitReport(hw, settings, budgets, rows_t, recommended, fallback, reason, hint, tuple(warnings))


#: Decoding on the CPU reads every weight from system RAM once per token; desktop memory
#: moves 50-100 GB/s, so above about 5 GB per token a reply crawls (under ~10 tokens/s).
CPU_INTERACTIVE_BYTES = 5_000_000_000


def _fallback(rows: tuple[VariantFit, ...]) -> VariantFit | None:
    """When nothing fits fully: the largest variant with at least half its layers on the
    GPU, else the largest that stays interactive on the CPU, else the smallest that runs."""
    runs = [r for r in reversed(rows) if r.verdict in ("partial", "cpu")]
    for row in runs:
        if row.verdict == "partial" and row.gpu_layer_share >= 0.5:
            return row
    for row in runs:
        if row.variant.bytes_read_per_token <= CPU_INTERACTIVE_BYTES:
            return row
    return runs[-1] if runs else None


def _where(budgets: tuple[GpuBudget, ...]) -> str:
    if not budgets:
        return "this machine (no GPU)"
    if len(budgets) == 1:
        return f"the {budgets[0].name}"
    return f"{len(budgets)} GPUs"


def _reason(
    settings: FitSettings,
    budgets: tuple[GpuBudget, ...],
    rec: VariantFit | None,
    fallback: VariantFit | None,
) -> str:
    ctx = format_ctx(settings.num_ctx or 0)
    kv = settings.kv_type
    if rec is not None:
        bd = rec.breakdown
        room = max(b.usable for b in budgets) if rec.gpus_used == 1 else sum(b.usable for b in budgets)
        return (
            f"{rec.variant.label} fits fully on {_where(budgets)}: needs {format_bytes(bd.need)} "
            f"of {format_bytes(room)} usable at {format_ctx(bd.ctx)} context ({kv} KV cache)"
        )
    if not budgets:
        if fallback is not None:
            return (
                f"no GPU found: {fallback.variant.label} is the largest that stays usable on the "
                f"CPU (needs {format_bytes(fallback.ram_need)} of RAM; larger variants crawl)"
            )
        return "no GPU found, and no variant fits in the available system RAM"
    if fallback is not None:
        return (
            f"no variant fits fully on {_where(budgets)} at {ctx} ({kv} KV cache); "
            f"{fallback.variant.label} runs with {fallback.verdict_text}"
        )
    return f"no variant fits on {_where(budgets)} at {ctx} ({kv} KV cache), nor in system RAM"


def _hint(rows: tuple[VariantFit, ...], rec: VariantFit | None, settings: FitSettings) -> str | None:
    """Would a quantized KV cache or a shorter context let a larger variant fit?"""
    larger = [r for r in reversed(rows) if rec is None or r.variant.blob_bytes > rec.variant.blob_bytes]
    ctx = settings.num_ctx or 0
    for row in larger:
        if settings.kv_type not in QUANTIZED_KV and settings.flash_attention:
            for kv in ("q8_0", "q4_0"):
                max_kv = row.max_ctx.get(kv)
                if max_kv is not None and max_kv >= min(ctx, row.variant.arch.context_length):
                    return (
                        f"{row.variant.label} would fit at {format_ctx(ctx)} with a {kv} KV cache "
                        f"(start Ollama with OLLAMA_KV_CACHE_TYPE={kv}; check: gemmatui fit --kv-cache {kv})"
                    )
        max_same = row.max_ctx.get(settings.kv_type)
        if max_same and max_same >= 2048:
            return (
                f"{row.variant.label} would fit with up to {format_ctx(max_same)} context "
                f"(gemmatui fit --ctx {format_ctx(max_same)})"
            )
    return None


# --------------------------------------------------------------------------- JSON


def report_to_json(report: FitReport) -> dict:
    """The stable ``gemmatui fit --json`` object (schema documented in docs/fit.md)."""
    hw = report.hardware
    s = report.settings
    return {
        "schema": 1,
        "hardware": {
            "backend": hw.backend,
            "source": hw.source,
            "simulated": hw.simulated,
            "ram_total_bytes": hw.ram_total_bytes,
            "ram_available_bytes": hw.ram_available_bytes,
            "notes": list(hw.notes),
            "gpus": [
                {
                    "index": g.index,
                    "vendor": g.vendor,
                    "name": g.name,
                    "total_bytes": g.total_bytes,
                    "free_bytes": g.free_bytes,
                    "usable_bytes": b.usable,
                    "driver_version": g.driver_version,
                    "cuda_version": g.cuda_version,
                    "bandwidth_bytes_per_s": g.bandwidth_bytes_per_s,
                }
                for g, b in zip(hw.gpus, report.budgets)
            ],
        },
        "settings": {
            "num_ctx": s.num_ctx,
            "kv_cache_type": s.kv_type,
            "num_parallel": s.num_parallel,
            "flash_attention": s.flash_attention,
            "num_batch": s.num_batch,
            "sources": dict(s.sources),
        },
        "variants": [
            {
                "key": r.variant.key,
                "tag": r.variant.tag,
                "verdict": r.verdict,
                "gpu_layer_share": round(r.gpu_layer_share, 4),
                "gpus_used": r.gpus_used,
                "ctx": r.breakdown.ctx,
                "ctx_capped": r.breakdown.ctx_capped,
                "ubatch": r.breakdown.ubatch,
                "bytes": {
                    "weights": r.breakdown.weights,
                    "kv": r.breakdown.kv,
                    "kv_global": r.breakdown.kv_global,
                    "kv_sliding": r.breakdown.kv_sliding,
                    "compute": r.breakdown.compute,
                    "output": r.breakdown.output,
                    "margin": r.breakdown.margin,
                    "need": r.breakdown.need,
                },
                "ram_need_bytes": r.ram_need,
                "max_ctx": dict(r.max_ctx),
                "tokens_per_s": None if r.tokens_per_s is None else round(r.tokens_per_s, 1),
                "notes": list(r.notes),
            }
            for r in report.rows
        ],
        "recommendation": None
        if report.recommended is None
        else {"key": report.recommended.variant.key, "tag": report.recommended.variant.tag},
        "fallback": None
        if report.fallback is None
        else {"key": report.fallback.variant.key, "tag": report.fallback.variant.tag},
        "reason": report.reason,
        "hint": report.hint,
        "warnings": list(report.warnings),
    }
