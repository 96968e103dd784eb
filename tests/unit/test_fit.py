"""The memory model against the reference's worked examples, and the plan built on it."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemmatui.core.catalog import VARIANTS, get_variant, with_installed
from gemmatui.core.errors import UsageError
from gemmatui.core.fit import (
    FitSettings,
    choose_ubatch,
    estimate,
    layered_settings,
    ollama_default_ctx,
    ollama_preflight,
    plan,
    report_to_json,
    settings_from_env,
)
from gemmatui.core.types import GpuInfo, HardwareSnapshot
from gemmatui.core.units import GiB, MiB

# shared/reference/gemma3-memory.md §4: tag, num_ctx, kv, KV MiB and compute MiB at
# u=512, need GiB at u=512, the roomy ubatch, KV / compute MiB and need GiB at it.
WORKED = """
1b 4096 f16 38 57 2.02 512 38 57 2.02
1b 4096 q8_0 20 61 2.01 512 20 61 2.01
1b 32768 f16 150 85 2.16 1024 161 171 2.25
1b 32768 q8_0 80 117 2.12 1024 86 203 2.21
1b 131072 f16 150 85 2.16 1024 161 171 2.25
1b 131072 q8_0 80 117 2.12 1024 86 203 2.21
4b 4096 f16 254 91 5.07 512 254 91 5.07
4b 4096 q8_0 135 107 4.97 512 135 107 4.97
4b 32768 f16 814 119 5.64 1024 872 238 5.81
4b 32768 q8_0 432 247 5.39 1024 463 366 5.54
4b 131072 f16 2734 215 7.61 2048 2908 864 8.41
4b 131072 q8_0 1452 727 6.86 2048 1545 1376 7.58
12b 4096 f16 736 133 10.14 512 736 133 10.14
12b 4096 q8_0 391 165 9.83 512 391 165 9.83
12b 32768 f16 2528 161 11.92 1024 2688 323 12.23
12b 32768 q8_0 1343 417 11.01 1024 1428 579 11.25
12b 131072 f16 8672 257 18.01 2048 9152 1034 19.24
12b 131072 q8_0 4607 1281 15.04 2048 4862 2058 16.05
27b 4096 f16 944 184 18.86 512 944 184 18.86
27b 4096 q8_0 502 216 18.46 512 502 216 18.46
27b 32768 f16 3184 212 21.08 1024 3392 425 21.49
27b 32768 q8_0 1692 468 19.87 1024 1802 681 20.18
27b 131072 f16 10864 308 28.67 2048 11488 1238 30.19
27b 131072 q8_0 5772 1332 24.70 2048 6103 2262 25.93
"""
ROWS = [line.split() for line in WORKED.strip().splitlines()]


def close(actual: float, expected: float, rel: float = 0.01) -> bool:
    return abs(actual - expected) <= rel * expected


@pytest.mark.parametrize("row", ROWS, ids=[" ".join(r[:3]) for r in ROWS])
def test_worked_examples_within_one_percent(row):
    key, ctx, kv, kv512, c512, need512, ub, kv_ub, c_ub, need_ub = row
    variant = get_variant(key)
    small = estimate(variant, int(ctx), kv, ubatch=512)
    assert close(small.kv / MiB, float(kv512))
    assert close(small.compute / MiB, float(c512))
    assert close(small.need / GiB, float(need512))
    roomy = estimate(variant, int(ctx), kv, ubatch=int(ub))
    assert close(roomy.kv / MiB, float(kv_ub))
    assert close(roomy.compute / MiB, float(c_ub))
    assert close(roomy.need / GiB, float(need_ub))


@pytest.mark.parametrize("row", ROWS, ids=[" ".join(r[:3]) for r in ROWS])
def test_ubatch_ollama_picks_when_roomy_matches_the_table(row):
    key, ctx, *_rest = row
    ub = int(row[6])
    assert choose_ubatch(get_variant(key), int(ctx), free_bytes=200 * GiB) == ub


def test_27b_worked_detail():
    bd = estimate(get_variant("27b"), 32768, "f16", ubatch=512)
    assert (bd.cells_global, bd.cells_sliding) == (32768, 1536)
    assert bd.kv == (10 * 32768 + 52 * 1536) * 8192  # exactly 3,184 MiB
    assert bd.compute == 4 * 512 * (3 * 21504 + 5 * 5376) + 2 * 512 * (32768 + 1536) + 56 * 512


def test_cross_checks_with_real_ollama_logs():
    # ollama #10341: 12b-it-qat at num_ctx 2048 -> kv 608.0 MiB (batch 512).
    assert estimate(get_variant("12b"), 2048, ubatch=512).kv == 608 * MiB
    # ollama #12303: 4B at 8192 -> kv 334.0 MiB.
    assert estimate(get_variant("4b"), 8192, ubatch=512).kv == 334 * MiB


def test_preflight_overstates_like_ollama():
    assert close(ollama_preflight(get_variant("27b"), 32768) / GiB, 37.1)
    assert close(ollama_preflight(get_variant("12b"), 32768) / GiB, 19.5)
    assert close(ollama_preflight(get_variant("4b"), 32768) / GiB, 9.0)


def test_tight_gpu_keeps_ubatch_512():
    assert choose_ubatch(get_variant("27b"), 32768, free_bytes=23 * GiB) == 512


def test_flash_attention_off_small_gpu_uses_256():
    v = get_variant("4b")
    assert choose_ubatch(v, 8192, flash_attention=False, smallest_gpu_total=8 * GiB) == 256
    assert choose_ubatch(v, 4096, flash_attention=False, smallest_gpu_total=8 * GiB) == 512
    assert choose_ubatch(v, 8192, flash_attention=False, smallest_gpu_total=24 * GiB) == 512


def test_flash_attention_off_compute_matches_reference():
    v = get_variant("27b")
    assert close(estimate(v, 32768, flash_attention=False).compute / GiB, 2.2, rel=0.05)
    assert close(estimate(v, 131072, flash_attention=False).compute / GiB, 8.3, rel=0.05)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.key)
@given(a=st.integers(1, 131072), b=st.integers(1, 131072))
def test_need_is_monotonic_in_context(variant, a, b):
    lo, hi = sorted((a, b))
    for kv in ("f16", "q8_0", "q4_0"):
        assert estimate(variant, lo, kv).need <= estimate(variant, hi, kv).need


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.key)
@given(ctx=st.integers(1, 131072))
def test_quantized_kv_is_smaller(variant, ctx):
    f16, q8, q4 = (estimate(variant, ctx, kv).kv for kv in ("f16", "q8_0", "q4_0"))
    assert q4 < q8 < f16


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.key)
def test_sliding_layers_are_capped_at_window_plus_ubatch(variant):
    small = estimate(variant, 16384)
    large = estimate(variant, variant.arch.context_length)
    assert small.kv_sliding == large.kv_sliding
    assert large.cells_sliding == -(-(variant.arch.window + 512) // 256) * 256
    naive = variant.arch.layers * large.cells_global * 2 * variant.arch.kv_heads * variant.arch.head_dim * 2
    assert large.kv < naive / 3


def test_context_is_capped_at_the_models_maximum():
    bd = estimate(get_variant("1b"), 131072)
    assert bd.ctx == 32768 and bd.ctx_capped
    assert estimate(get_variant("27b"), 1 << 20).ctx == 131072


def test_vision_models_get_at_least_2048():
    assert estimate(get_variant("4b"), 512).ctx == 2048
    assert estimate(get_variant("1b"), 512).ctx == 512


def test_parallel_multiplies_the_global_cache():
    one = estimate(get_variant("12b"), 8192)
    two = estimate(get_variant("12b"), 8192, num_parallel=2)
    assert two.cells_global == 2 * one.cells_global
    assert two.kv_sliding >= 2 * one.kv_sliding


def test_installed_model_info_overrides_the_catalogue():
    v = with_installed(
        get_variant("27b"),
        size_bytes=17_000_000_000,
        model_info={"gemma3.attention.sliding_window": 2048, "gemma3.block_count": "bad"},
    )
    assert v.blob_bytes == 17_000_000_000 and v.arch.window == 2048 and v.arch.layers == 62
    assert v.arch_source == "installed (/api/show)"


# --------------------------------------------------------------------------- settings


def test_settings_from_ollama_env():
    s = settings_from_env(
        {
            "OLLAMA_KV_CACHE_TYPE": "Q8_0",
            "OLLAMA_FLASH_ATTENTION": "1",
            "OLLAMA_NUM_PARALLEL": "2",
            "OLLAMA_CONTEXT_LENGTH": "8192",
        },
        "ollama serve, pid 7",
    )
    assert (s.kv_type, s.flash_attention, s.num_parallel, s.num_ctx) == ("q8_0", True, 2, 8192)
    assert s.sources["kv_type"] == "OLLAMA_KV_CACHE_TYPE of ollama serve, pid 7"


@pytest.mark.parametrize(
    ("name", "value", "effect"),
    [
        ("OLLAMA_KV_CACHE_TYPE", "q9_9", ("kv_type", "f16")),
        ("OLLAMA_FLASH_ATTENTION", "maybe", ("flash_attention", True)),  # Go: not false = on
        ("OLLAMA_NUM_PARALLEL", "0", ("num_parallel", 1)),
        ("OLLAMA_CONTEXT_LENGTH", "lots", ("num_ctx", None)),
    ],
)
def test_odd_ollama_env_is_taken_as_ollama_takes_it(name, value, effect):
    """The server's settings are facts, not our input: warn, never refuse."""
    s = settings_from_env({name: value}, "ollama serve, pid 9")
    field, expected = effect
    assert getattr(s, field) == expected
    assert len(s.warnings) == 1 and name in s.warnings[0] and "pid 9" in s.warnings[0]
    report = plan(machine(RTX3090), s)
    assert s.warnings[0] in report.warnings


def test_every_llama_server_cache_type_is_sized():
    v = get_variant("12b")
    sizes = {kv: estimate(v, 32768, kv).kv for kv in ("f32", "bf16", "f16", "q8_0", "q5_1", "q5_0", "q4_1", "iq4_nl", "q4_0")}
    assert sizes["f32"] == 2 * sizes["f16"] == 2 * sizes["bf16"]
    assert sizes["q8_0"] > sizes["q5_1"] > sizes["q5_0"] > sizes["q4_1"] > sizes["q4_0"] == sizes["iq4_nl"]
    assert estimate(v, 32768, "bf16").kv_f16_copy == 0 and estimate(v, 32768, "q5_0").kv_f16_copy > 0


def test_flags_beat_config_beats_env():
    env = {"OLLAMA_CONTEXT_LENGTH": "4096", "OLLAMA_KV_CACHE_TYPE": "q4_0"}
    s = layered_settings(env, config_ctx=16384)
    assert s.num_ctx == 16384 and s.sources["num_ctx"] == "config"
    s = layered_settings(env, config_ctx=16384, ctx=8192, kv_type="f16")
    assert (s.num_ctx, s.kv_type) == (8192, "f16")
    assert layered_settings(env, config_kv="q8_0").kv_type == "q4_0"
    assert layered_settings({}, config_kv="q8_0").kv_type == "q8_0"


# --------------------------------------------------------------------------- plan


def gpu(total_gib: float, free_gib: float | None = None, name: str = "GPU", **kw) -> GpuInfo:
    total = int(total_gib * GiB)
    free = total if free_gib is None else int(free_gib * GiB)
    return GpuInfo(index=kw.pop("index", 0), vendor="nvidia", name=name, total_bytes=total, free_bytes=free, **kw)


def machine(*gpus: GpuInfo, ram_gib: float = 64) -> HardwareSnapshot:
    return HardwareSnapshot(
        gpus=tuple(gpus),
        ram_total_bytes=int(ram_gib * GiB),
        ram_available_bytes=int(ram_gib * GiB * 0.75),
        backend="cuda" if gpus else "cpu",
        source="test",
    )


RTX3090 = gpu(24, 23.5, "NVIDIA GeForce RTX 3090", bus_width_bits=384, max_mem_clock_mhz=9751)


def test_24gib_card_at_32k_recommends_27b():
    report = plan(machine(RTX3090), FitSettings(num_ctx=32768))
    assert report.recommended is not None and report.recommended.variant.key == "27b"
    row = report.row("27b")
    assert row.verdict == "gpu" and row.breakdown.ubatch == 512
    assert "27B fits fully" in report.reason
    assert row.tokens_per_s is not None and 30 < row.tokens_per_s < 50


def test_default_context_follows_ollama_vram_tiers():
    assert ollama_default_ctx(machine(RTX3090)) == 32768
    assert ollama_default_ctx(machine(gpu(8))) == 4096
    assert ollama_default_ctx(machine(gpu(48))) == 262144
    assert ollama_default_ctx(machine()) == 4096
    assert plan(machine(RTX3090), FitSettings()).settings.num_ctx == 32768


def test_8gib_card_recommends_4b_and_12b_is_partial():
    report = plan(machine(gpu(8, 7.6)), FitSettings(num_ctx=32768))
    assert report.recommended.variant.key == "4b"
    twelve = report.row("12b")
    assert twelve.verdict == "partial" and 0 < twelve.gpu_layer_share < 1


def test_no_gpu_means_cpu_only_and_no_recommendation():
    report = plan(machine(ram_gib=32), FitSettings())
    assert report.recommended is None
    assert {r.verdict for r in report.rows} <= {"cpu", "none"}
    assert report.fallback is not None
    assert "no GPU" in report.reason


def test_cpu_only_need_is_one_figure_in_the_table_and_the_json():
    """Without a GPU there is no GPU margin: ``need`` (JSON, and ``models --json``'s
    ``need_bytes``) is the RAM the model takes, the figure the table shows."""
    from gemmatui.commands.fit_render import render_report
    from gemmatui.core.units import format_bytes

    report = plan(machine(ram_gib=32), FitSettings(num_ctx=8192))
    obj = report_to_json(report)
    table = render_report(report)
    shown = dict(re.findall(r"^ . (\d+B) +(\S+ \S+)  ", table, re.M))  # MODEL -> NEED
    assert len(shown) == 4
    for row, v in zip(report.rows, obj["variants"]):
        b = v["bytes"]
        assert b["margin"] == 0
        assert b["output"] == row.variant.arch.vocab * 4
        assert (
            b["need"]
            == b["weights"] + b["kv"] + b["compute"] + b["output"]
            == row.breakdown.allocated
        )
        if v["verdict"] == "cpu":
            assert b["need"] == v["ram_need_bytes"]
        assert shown[row.variant.params] == format_bytes(b["need"])
    assert "compute + margin" not in table


def test_settings_line_says_where_each_setting_came_from_without_nesting():
    from gemmatui.commands.fit_render import render_report

    env = {"OLLAMA_CONTEXT_LENGTH": "8192", "OLLAMA_KV_CACHE_TYPE": "q8_0"}
    s = layered_settings(env, "ollama serve, pid 42")
    text = render_report(plan(machine(RTX3090), s))
    line = next(x for x in text.splitlines() if x.startswith("Settings"))
    assert "context 8k from OLLAMA_CONTEXT_LENGTH of ollama serve, pid 42" in line
    assert "KV cache q8_0 from OLLAMA_KV_CACHE_TYPE of ollama serve, pid 42" in line
    assert "(" not in line, line


def test_gpu_need_keeps_its_margin():
    row = plan(machine(RTX3090), FitSettings(num_ctx=32768)).row("27b")
    assert row.breakdown.margin == GiB and row.breakdown.need == row.breakdown.allocated + GiB


def test_tiny_machine_fits_nothing():
    report = plan(machine(ram_gib=1), FitSettings(num_ctx=4096))
    assert report.recommended is None and report.fallback is None
    assert all(r.verdict == "none" for r in report.rows)


def test_hint_suggests_q8_0_when_it_lets_27b_fit():
    # 27B at 32k needs 21.1 GiB with f16, 19.9 GiB with q8_0.
    report = plan(machine(gpu(21, 20.9)), FitSettings(num_ctx=32768))
    assert report.recommended.variant.key == "12b"
    assert report.hint is not None and "q8_0" in report.hint and "27B" in report.hint


def test_max_ctx_per_kv_type():
    row = plan(machine(RTX3090), FitSettings(num_ctx=32768)).row("27b")
    f16, q8, q4 = row.max_ctx["f16"], row.max_ctx["q8_0"], row.max_ctx["q4_0"]
    assert 32768 <= f16 < q8 <= q4
    # at the boundary it still fits, one step later it does not
    s = FitSettings(num_ctx=f16)
    assert plan(machine(RTX3090), s).row("27b").verdict == "gpu"
    if f16 + 1024 <= 131072:
        assert plan(machine(RTX3090), replace(s, num_ctx=f16 + 1024)).row("27b").verdict != "gpu"


def test_quantized_kv_without_flash_attention_will_not_start():
    report = plan(machine(RTX3090), FitSettings(num_ctx=8192, kv_type="q8_0", flash_attention=False))
    assert report.recommended is None
    assert any("flash attention" in w for w in report.warnings)


def test_old_gpu_turns_flash_attention_off():
    old = gpu(24, name="Tesla K80", compute_capability=(3, 7))
    report = plan(machine(old), FitSettings(num_ctx=32768))
    assert report.settings.flash_attention is False
    assert report.row("27b").breakdown.compute > 2 * GiB


def test_two_gpus_split_the_layers():
    report = plan(machine(gpu(12, index=0), gpu(12, index=1)), FitSettings(num_ctx=32768))
    row = report.row("27b")
    assert row.verdict == "gpu" and row.gpus_used == 2


def test_json_report_is_stable_and_complete():
    obj = report_to_json(plan(machine(RTX3090), FitSettings(num_ctx=32768)))
    assert obj["schema"] == 1
    assert obj["recommendation"] == {"key": "27b", "tag": "gemma3:27b-it-qat"}
    assert [v["key"] for v in obj["variants"]] == ["1b", "4b", "12b", "27b"]
    need = obj["variants"][3]["bytes"]
    assert need["need"] == (
        need["weights"] + need["kv"] + need["compute"] + need["output"] + need["margin"]
    )
    assert obj["settings"]["num_ctx"] == 32768


def _brute_force_max_ctx(variant, settings, hw, kv):
    from gemmatui.core.fit import _estimate_for, _fits_fully, gpu_budgets, resolve_settings

    settings, _ = resolve_settings(hw, settings)
    budgets = gpu_budgets(hw)
    best = None
    for steps in range(1, variant.arch.context_length // 1024 + 1):
        bd = _estimate_for(variant, settings, hw, budgets, kv, steps * 1024)
        if _fits_fully(bd, budgets)[0]:
            best = steps * 1024
    return best


@pytest.mark.parametrize("vram_mib", [2304, 2560, 3072, 6144, 8192, 12288, 24576, 32768])
def test_max_ctx_matches_a_brute_force_scan(vram_mib):
    """The micro-batch Ollama picks makes the need non-monotonic in the context: the
    maximum must still be the true one (a 2.5 GiB card and 1B with q8_0 once showed
    "fits" at 12k beside a maximum of 4k)."""
    hw = machine(gpu(vram_mib / 1024))
    report = plan(hw, FitSettings(num_ctx=4096))
    for row in report.rows:
        for kv in ("f16", "q8_0", "q4_0"):
            expected = _brute_force_max_ctx(row.variant, report.settings, hw, kv)
            assert row.max_ctx[kv] == expected, (row.variant.key, kv)
