"""Reading llama.cpp's buffer lines from a llama-server log."""

from __future__ import annotations

from pathlib import Path

from gemmatui.core.llama_log import parse_buffer_log

MiB = 1 << 20
FIXTURE = Path(__file__).parent.parent / "fixtures" / "llama_server"


def test_real_log_keeps_the_load_after_the_fit_pass() -> None:
    """A real llama-server log (the 270M, -c 8192 -np 2, q8_0, flash attention): the
    --fit dry run prints the same lines with 0.00 MiB first; the real load wins."""
    log = parse_buffer_log((FIXTURE / "gemma3-270m-c8192-np2-q8_0-fa.log").read_text())
    assert log.complete
    assert log.model == round(235.16 * MiB) + round(12.66 * MiB)
    assert log.total("model") == log.model
    assert log.weights == round(235.16 * MiB)  # the file's tensor bytes: 246,587,904
    assert log.repack == round(12.66 * MiB)
    assert log.output == 2 * MiB  # np x vocab x 4 bytes
    assert len(log.kv_buffers) == 2  # global layers, then sliding layers
    assert log.kv_buffers[0] == round(12.75 * MiB)
    assert log.compute > 20 * MiB
    assert log.devices == ("CPU", "CPU_Mapped", "CPU_REPACK")


def test_gpu_lines_and_several_devices() -> None:
    text = """
load_tensors: offloaded 63/63 layers to GPU
load_tensors:        CUDA0 model buffer size = 15000.50 MiB
load_tensors:   CPU_Mapped model buffer size =  1050.00 MiB
llama_context:  CUDA_Host  output buffer size =     1.00 MiB
llama_kv_cache:      CUDA0 KV buffer size =  2560.00 MiB
llama_kv_cache:      CUDA0 KV buffer size =   624.00 MiB
sched_reserve:      CUDA0 compute buffer size =   212.03 MiB
sched_reserve:  CUDA_Host compute buffer size =    26.01 MiB
"""
    log = parse_buffer_log(text)
    assert log.devices == ("CPU_Mapped", "CUDA0", "CUDA_Host")
    assert log.kv == (2560 + 624) * MiB
    assert log.compute == round(212.03 * MiB) + round(26.01 * MiB)


def test_a_restart_in_the_same_log_counts_once() -> None:
    one = "CPU model buffer size = 10.00 MiB\nCPU KV buffer size = 1.00 MiB\n"
    two = "CPU model buffer size = 20.00 MiB\nCPU KV buffer size = 2.00 MiB\n"
    log = parse_buffer_log(one + "CPU compute buffer size = 3.00 MiB\n" + two)
    assert (log.model, log.kv, log.complete) == (20 * MiB, 2 * MiB, False)


def test_nothing_to_read() -> None:
    assert not parse_buffer_log("main: server is listening\n")
    assert parse_buffer_log([]).kv == 0
