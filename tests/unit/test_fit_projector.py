"""``fit`` and the vision projector: Ollama's rule, written out independently here.

Ollama (>= 0.30) starts llama-server for a Gemma 3 model that reads images with the blob
as ``--mmproj`` too and, when every GPU has the projector's size + 1 GiB free, sets
``LLAMA_ARG_FIT_TARGET`` to that sum: llama-server's fit then places the text model in
what is left and the projector loads into the kept-free room. With less free, the
projector stays on the CPU (``--no-mmproj-offload``) and the target is llama.cpp's
default 1 GiB (``shared/reference/gemma3-memory.md`` 3.6, ``llama-server.md``).
"""

from __future__ import annotations

import math

import pytest

from gemmatui.core.catalog import VARIANTS, get_variant
from gemmatui.core.fit import FIT_MARGIN, FitSettings, VariantFit, plan, projector_on_gpu
from gemmatui.core.types import GpuInfo, HardwareSnapshot
from gemmatui.core.units import GiB


def machine(free: float) -> HardwareSnapshot:
    gpu = GpuInfo(0, "nvidia", "GPU", total_bytes=int(free) + GiB // 2, free_bytes=int(free),
                  compute_capability=(8, 6))
    return HardwareSnapshot(gpus=(gpu,), ram_total_bytes=64 * GiB, ram_available_bytes=60 * GiB,
                            backend="cuda", source="simulated", simulated=True)


def row(key: str, free: float, ctx: int = 4096) -> tuple[VariantFit, int]:
    report = plan(machine(free), FitSettings(num_ctx=ctx, flash_attention=True), [get_variant(key)])
    return report.rows[0], report.budgets[0].usable


def ollama(key: str, free: float, ctx: int) -> tuple[str, float]:
    """Verdict and GPU share by Ollama's rule, from fit's own byte breakdown."""
    fit_row, usable = row(key, free, ctx)
    v, bd = fit_row.variant, fit_row.breakdown
    on_gpu = v.vision_bytes > 0 and usable >= v.vision_bytes + FIT_MARGIN
    target = (v.vision_bytes if on_gpu else 0) + FIT_MARGIN  # LLAMA_ARG_FIT_TARGET
    text = v.blob_bytes - v.vision_bytes
    if text + bd.kv + bd.compute + bd.output <= usable - target:
        return "gpu", 1.0
    room = usable - target - bd.compute - v.embedding_bytes
    per_layer = (text - v.embedding_bytes + bd.kv) / v.arch.layers
    layers = 0 if room <= 0 else min(v.arch.layers, math.floor(room / per_layer))
    return ("partial" if layers else "cpu"), layers / v.arch.layers


@pytest.mark.parametrize("key", [v.key for v in VARIANTS])
@pytest.mark.parametrize("ctx", [4096, 32768])
def test_fit_agrees_with_the_fit_target_rule_on_every_card_size(key: str, ctx: int) -> None:
    for quarter in range(2, 100):  # 0.5 .. 24.75 GiB free
        free = quarter * GiB / 4
        fit_row, _ = row(key, free, ctx)
        verdict, share = ollama(key, free, ctx)
        assert (fit_row.verdict, fit_row.gpu_layer_share) == pytest.approx((verdict, share)), (
            key, ctx, free / GiB)


def test_a_card_that_holds_the_text_model_but_not_the_projector_too_is_partial() -> None:
    v = get_variant("4b")
    # find a card where text + KV + compute + output + 1 GiB fits, but not with the projector
    for quarter in range(8, 40):
        fit_row, usable = row("4b", quarter * GiB / 4)
        bd = fit_row.breakdown
        text_need = bd.need - v.vision_bytes
        if text_need <= usable < bd.need:
            break
    else:
        pytest.fail("no such card size in the sweep")
    assert fit_row.verdict == "partial" and 0.5 < fit_row.gpu_layer_share < 1.0
    assert projector_on_gpu(v, plan(machine(quarter * GiB / 4), FitSettings(num_ctx=4096)).budgets)


def test_the_projector_stays_on_the_cpu_below_its_size_plus_1_gib() -> None:
    v = get_variant("12b")
    small = plan(machine(1.5 * GiB), FitSettings(num_ctx=4096, flash_attention=True), [v])
    large = plan(machine(3.0 * GiB), FitSettings(num_ctx=4096, flash_attention=True), [v])
    assert not projector_on_gpu(v, small.budgets) and projector_on_gpu(v, large.budgets)
    assert "vision projector on the CPU (less than it + 1 GiB free on a GPU)" in small.rows[0].notes
    assert not any("projector" in n for n in large.rows[0].notes)
    assert not projector_on_gpu(get_variant("1b"), large.budgets)  # text only: nothing to place
    assert not projector_on_gpu(v, ())  # no GPU
