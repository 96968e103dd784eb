"""The memory model against llama.cpp's own allocations, on a real Gemma 3 (the 270M).

Each setting starts llama-server (xllamacpp, CPU) exactly as Ollama starts it
(``-c ctx×np -np np``, no unified KV cache), reads the buffer lines it logs, and compares
them with :func:`gemmatui.core.fit.estimate` for the variant that ``fit --gguf`` reads
from the same file: KV exact, compute within 3 %, output buffer exact, weights exact.
"""

from __future__ import annotations

import itertools

import pytest

from gemmatui.core.fit import estimate
from gemmatui.core.gguf import variant_from_gguf
from tests.engine.llama_harness import Setting, load_buffers
from tests.real_model import model_path

SETTINGS = [
    Setting(ctx, np, u, kv, fa)
    for ctx, np, u, kv, fa in itertools.product(
        (4096, 32768), (1, 2), (512, 1024), ("f16", "q8_0"), (True, False)
    )
    if fa or kv == "f16"  # llama.cpp refuses a quantized V cache without flash attention
]


@pytest.mark.parametrize("setting", SETTINGS, ids=Setting.label)
def test_estimate_matches_llama_cpp(setting: Setting) -> None:
    path = model_path()
    log = load_buffers(path, setting)
    assert log.complete, "no compute buffer line in the log"
    bd = estimate(
        variant_from_gguf(path),
        setting.ctx,
        setting.kv,  # type: ignore[arg-type]
        num_parallel=setting.np,
        ubatch=setting.ubatch,
        flash_attention=setting.fa,
        cuda=False,
    )
    # The log prints MiB with two decimals: equal to within 0.005 MiB per buffer.
    tolerance = 2 * 0.005 * 2**20
    assert abs(bd.kv - log.kv) <= tolerance, (bd.kv, log.kv_buffers)
    assert abs(bd.kv_global - log.kv_buffers[0]) <= tolerance
    assert abs(bd.kv_sliding - log.kv_buffers[1]) <= tolerance
    assert bd.compute >= log.compute * 0.999, "the compute estimate must not be low"
    assert bd.compute <= log.compute * 1.03, (bd.compute, log.compute)
    assert bd.output == log.output
    assert abs(bd.weights - log.weights) <= tolerance
