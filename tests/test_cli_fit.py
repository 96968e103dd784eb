"""`gemmatui fit` as a user runs it: a subprocess, its output and its exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run_fit(*args: str, tmp_path, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OLLAMA_") and k not in ("NO_COLOR", "FORCE_COLOR")
    }
    env.update(
        GEMMATUI_CONFIG=str(tmp_path / "config.toml"),
        GEMMATUI_DATA_DIR=str(tmp_path / "data"),
        OLLAMA_HOST="127.0.0.1:9",  # nothing listens: fit must not need Ollama
        **(extra_env or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "gemmatui", "fit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_24gib_gpu_at_32k_recommends_27b_table(tmp_path):
    out = run_fit("--vram", "24G", "--ctx", "32k", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Recommended: Gemma 3 27B fits fully" in out.stdout
    assert "gemmatui pull 27b" in out.stdout and "ollama pull gemma3:27b-it-qat" in out.stdout
    marked = [line for line in out.stdout.splitlines() if line.startswith(" ▶")]
    assert len(marked) == 1 and "27B" in marked[0] and "fits on GPU" in marked[0]
    assert "\x1b[" not in out.stdout  # no colour when piped
    assert out.stderr == ""


def test_24gib_gpu_json(tmp_path):
    out = run_fit("--vram", "24G", "--ctx", "32k", "--json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    assert obj["recommendation"] == {"key": "27b", "tag": "gemma3:27b-it-qat"}
    assert obj["settings"]["num_ctx"] == 32768 and obj["settings"]["kv_cache_type"] == "f16"
    assert obj["hardware"]["simulated"] is True
    row = {v["key"]: v for v in obj["variants"]}["27b"]
    assert row["verdict"] == "gpu"
    assert abs(row["bytes"]["need"] / 2**30 - 21.08) < 0.2
    assert obj["exit_code"] == 0


def test_8gib_gpu_recommends_4b(tmp_path):
    out = run_fit("--vram", "8G", "--ctx", "32k", "--json", tmp_path=tmp_path)
    assert out.returncode == 0
    obj = json.loads(out.stdout)
    assert obj["recommendation"]["key"] == "4b"
    verdicts = {v["key"]: v["verdict"] for v in obj["variants"]}
    assert verdicts["12b"] == "partial" and verdicts["27b"] == "partial"


def test_model_flag_checks_one_and_sets_the_exit_code(tmp_path):
    out = run_fit("--vram", "8G", "--model", "12b", tmp_path=tmp_path)
    assert out.returncode == 1
    assert "partial offload" in out.stdout and "global layers" in out.stdout
    ok = run_fit("--vram", "24GiB", "--model", "27B", "--ctx", "32768", tmp_path=tmp_path)
    assert ok.returncode == 0


def test_no_gpu_is_cpu_only(tmp_path):
    out = run_fit("--ram", "32G", "--json", tmp_path=tmp_path)
    obj = json.loads(out.stdout)
    if obj["hardware"]["gpus"]:
        pytest.skip("this machine has a GPU")
    assert out.returncode == 1
    assert obj["recommendation"] is None
    assert {v["verdict"] for v in obj["variants"]} <= {"cpu", "none"}
    assert obj["settings"]["num_ctx"] == 4096
    table = run_fit("--ram", "32G", tmp_path=tmp_path)
    assert "CPU only" in table.stdout


def test_ollama_env_is_honoured_and_flags_override(tmp_path):
    env = {"OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_CONTEXT_LENGTH": "8192"}
    obj = json.loads(run_fit("--vram", "24G", "--json", tmp_path=tmp_path, extra_env=env).stdout)
    assert obj["settings"]["kv_cache_type"] == "q8_0" and obj["settings"]["num_ctx"] == 8192
    obj = json.loads(
        run_fit("--vram", "24G", "--json", "--kv-cache", "f16", "--ctx", "16k", tmp_path=tmp_path, extra_env=env).stdout
    )
    assert obj["settings"]["kv_cache_type"] == "f16" and obj["settings"]["num_ctx"] == 16384


def test_context_above_a_models_maximum_is_capped_per_row(tmp_path):
    out = run_fit("--vram", "48G", "--ctx", "128k", tmp_path=tmp_path)
    assert "1B reads at most 32k: context capped" in out.stdout
    obj = json.loads(run_fit("--vram", "48G", "--ctx", "256k", "--json", tmp_path=tmp_path).stdout)
    assert {v["key"]: v["ctx"] for v in obj["variants"]} == {
        "1b": 32768, "4b": 131072, "12b": 131072, "27b": 131072
    }


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--ctx", "abc"], "'abc'"),
        (["--ctx", "0"], "'0'"),
        (["--ctx", "-5"], "'-5'"),
        (["--ctx", "1e9"], "'1e9'"),
        (["--ctx", "99999999999"], "'99999999999'"),
        (["--vram", "0"], "'0'"),
        (["--vram", "lots"], "'lots'"),
        (["--ram=-1G"], "'-1G'"),
        (["--model", "70b"], "'70b'"),
        (["--kv-cache", "q9_9"], "'q9_9'"),
        (["--vram", "1.5"], "bare number"),
        (["--parallel", "zero"], "'zero'"),
        (["--flash-attention", "maybe"], "maybe"),
        (["--bogus"], "--bogus"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    out = run_fit(*args, tmp_path=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert needle in lines[0] and "Traceback" not in out.stderr


def test_odd_ollama_env_is_a_warning_not_an_error(tmp_path):
    out = run_fit("--vram", "24G", "--ctx", "32k", tmp_path=tmp_path, extra_env={"OLLAMA_NUM_PARALLEL": "many"})
    assert out.returncode == 0
    assert "Warning:" in out.stdout and "OLLAMA_NUM_PARALLEL" in out.stdout


def test_broken_config_is_one_line(tmp_path):
    (tmp_path / "config.toml").write_text("num_ctx = [", encoding="utf-8")
    out = run_fit("--vram", "24G", tmp_path=tmp_path)
    assert out.returncode == 2
    assert "config.toml" in out.stderr and "Traceback" not in out.stderr


def test_closed_stdout_is_one_line_not_a_traceback(tmp_path):
    env = {**os.environ, "GEMMATUI_CONFIG": str(tmp_path / "c.toml")}
    out = subprocess.run(
        [sys.executable, "-m", "gemmatui", "fit", "--vram", "8G"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )
    assert out.returncode == 1
    assert out.stderr.strip() == "gemmatui: error: standard output is closed"


def test_vision_models_say_their_context_was_raised(tmp_path):
    out = run_fit("--vram", "24G", "--ctx", "1k", tmp_path=tmp_path)
    assert "at least 2k of context" in out.stdout


def _paren_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    return deepest


def test_labels_share_one_column_simulated_included(tmp_path):
    """"Simulated GPU 0:" read as one label: every label now ends in spaces before the
    column where "Recommended:" and "Next:" put their text."""
    out = run_fit("--vram", "24G", "--ctx", "32k", tmp_path=tmp_path)
    lines = out.stdout.splitlines()
    labelled = lines[: lines.index("")] + [
        line for line in lines if line.startswith(("Recommended:", "Next:"))
    ]
    assert labelled[0].startswith("Simulated    GPU 0: ")
    for line in labelled:
        assert line[12] == " " and line[13] != " ", line


def test_settings_line_does_not_nest_parentheses(tmp_path):
    out = run_fit(
        "--vram", "24G", tmp_path=tmp_path, extra_env={"OLLAMA_CONTEXT_LENGTH": "8192"}
    )
    settings = next(line for line in out.stdout.splitlines() if line.startswith("Settings"))
    assert "context 8k from OLLAMA_CONTEXT_LENGTH of this shell's environment" in settings
    assert _paren_depth(settings) <= 1, settings


def test_cpu_only_table_and_json_show_the_same_need(tmp_path):
    """One truth: without a GPU there is no GPU margin in "need", nor in the table."""
    import re

    obj = json.loads(run_fit("--ram", "32G", "--ctx", "8k", "--json", tmp_path=tmp_path).stdout)
    if obj["hardware"]["gpus"]:
        pytest.skip("this machine has a GPU")
    from gemmatui.core.units import format_bytes

    table = run_fit("--ram", "32G", "--ctx", "8k", tmp_path=tmp_path).stdout
    shown = dict(re.findall(r"^ . (\d+B) +(\S+ \S+)  ", table, re.M))  # MODEL -> NEED
    for v in obj["variants"]:
        assert v["bytes"]["margin"] == 0
        assert shown[v["key"].upper()] == format_bytes(v["bytes"]["need"]), v["key"]


def test_ascii_only_output_falls_back_to_ascii_glyphs(tmp_path):
    out = run_fit(
        "--vram", "24G", "--ctx", "32k", tmp_path=tmp_path, extra_env={"PYTHONIOENCODING": "ascii"}
    )
    assert out.returncode == 0 and out.stderr == ""
    out.stdout.encode("ascii")
    marked = [line for line in out.stdout.splitlines() if line.startswith(" >")]
    assert len(marked) == 1 and "27B" in marked[0] and "###" in marked[0]
    assert "?" not in out.stdout  # each glyph has its ASCII look-alike, none is lost
