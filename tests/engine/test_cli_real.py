"""The CLI against the real engine (llama-server from xllamacpp, the real Gemma 3 270M):
``ask`` (text, ``--json``, the engine killed mid-reply), ``serve`` (plan vs actual, Ctrl-C),
``fit --gguf`` and the command ``fit --engine llama-server`` prints, run for real.

The model is a base model that writes nonsense: only plumbing, counts and memory are
checked, never wording.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.engine.llama_harness import RunningServer
from tests.real_model import model_path

REPO = Path(__file__).resolve().parents[2]
MIB = 2**20


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "GEMMATUI_"))}
    return {
        **base,
        "GEMMATUI_CONFIG": str(tmp_path / "config.toml"),
        "GEMMATUI_DATA_DIR": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHONPATH": str(REPO),
        "NO_COLOR": "1",
    }


def gemmatui(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gemmatui", *args],
        env=env, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_ask_streams_real_tokens_and_stats(llama_server: RunningServer, env) -> None:
    done = gemmatui(env, "ask", "--host", llama_server.url, "--stats", "--seed", "3",
                    "Tell me about Gemma.")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    stats = done.stderr.strip().splitlines()[-1]
    # The fixture's server ends a reply after 40 tokens.
    assert re.match(r"gemma3-270m at 4k: 40 tokens, [0-9.]+ tok/s; prompt \d+ tokens", stats), stats
    assert "done: length" in stats


def test_ask_json_against_the_real_engine(llama_server: RunningServer, env) -> None:
    done = gemmatui(env, "ask", "--host", llama_server.url, "--json", "--model", "27b",
                    "--ctx", "32k", "hi")  # fmt: skip
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert (obj["engine"], obj["model"], obj["num_ctx"]) == ("llama-server", "gemma3-270m", 4096)
    assert obj["response"] and obj["error"] is None and obj["exit_code"] == 0
    stats = obj["stats"]
    assert stats["eval_count"] == 40 and stats["eval_rate"] > 0 and stats["prompt_eval_count"] > 1
    assert stats["done_reason"] == "length"
    # --model and --ctx cannot change what a llama-server serves: said once each.
    assert "serves gemma3-270m (the model it was started with), not gemma3:27b-it-qat" in done.stderr
    assert "runs 4k of context per slot (fixed when it started: -c); --ctx 32k" in done.stderr


def test_the_engine_killed_mid_reply_keeps_the_partial_text(own_llama_server: RunningServer, env) -> None:
    ask = subprocess.Popen(
        [sys.executable, "-m", "gemmatui", "ask", "--host", own_llama_server.url, "Write a long story."],
        env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert ask.stdout is not None
    got = b""
    while len(got) < 40:
        chunk = ask.stdout.read1(4096)
        assert chunk, ask.stderr.read() if ask.stderr else ""
        got += chunk
    own_llama_server.kill()
    rest, err = ask.communicate(timeout=60)
    assert ask.returncode == 5
    assert len(got + rest) >= 40  # what came before the kill is all printed
    assert err.decode().strip() == "gemmatui: error: the connection to llama-server dropped during the reply"


def test_fit_gguf_on_the_real_file(env) -> None:
    path = model_path()
    text = gemmatui(env, "fit", "--gguf", str(path), "--ctx", "4k")
    assert text.returncode == 1  # no GPU here: it runs on the CPU, not fully on a GPU
    assert "gguf:gemma3-270m-q4_k_m.gguf" in text.stdout and "CPU only" in text.stdout
    assert f"Next:        gemmatui serve {path} --ctx 4k" in text.stdout
    obj = json.loads(gemmatui(env, "fit", "--gguf", str(path), "--ctx", "4k", "--json").stdout)
    (row,) = obj["variants"]
    assert row["tag"] == "gguf:gemma3-270m-q4_k_m.gguf" and row["file"] == path.name
    # What llama.cpp allocates for this file at 4k (its log: 27.00 / 235.16 / 1.00 MiB).
    assert row["bytes"]["kv"] == 27 * MIB and row["bytes"]["output"] == 1 * MIB
    assert abs(row["bytes"]["weights"] - 235.16 * MIB) < 0.01 * MIB


def _wait_health(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never became ready")


def test_the_command_fit_prints_is_one_llama_server_accepts(env, tmp_path: Path) -> None:
    path = model_path()
    done = gemmatui(env, "fit", "--gguf", str(path), "--engine", "llama-server", "--ctx", "8k",
                    "--kv-cache", "q8_0", "--json")  # fmt: skip
    argv = shlex.split(json.loads(done.stdout)["llama_server_command"]["line"])
    assert argv[0] == "llama-server"
    from gemmatui.core.launch import find_program, free_port

    port = free_port("127.0.0.1", 0)
    argv[argv.index("--port") + 1] = str(port)
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen([*find_program(), *argv[1:]], stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_health(url)
        with urllib.request.urlopen(f"{url}/props", timeout=5) as answer:
            props = json.load(answer)
        assert props["default_generation_settings"]["n_ctx"] == 8192
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def test_serve_prints_plan_vs_actual_and_stops_its_engine_on_ctrl_c(env, tmp_path: Path) -> None:
    serve = subprocess.Popen(
        [sys.executable, "-m", "gemmatui", "serve", str(model_path()), "--port", "0", "--ctx", "8k"],
        env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert serve.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = serve.stdout.readline()
            assert line, f"serve ended early: {serve.stderr.read() if serve.stderr else ''}"
            lines.append(line.rstrip("\n"))
            if line.startswith("serving "):
                break
        url = re.search(r"at (http://127\.0\.0\.1:\d+) ", lines[-1]).group(1)
        table = {ln.split()[0]: ln for ln in lines if re.match(r"(weights|KV|compute|output|total) ", ln)}
        for what in ("weights", "KV", "compute", "output"):
            plan, actual = (float(x) for x in re.findall(r"([0-9.]+) MiB", table[what]))
            assert abs(plan - actual) <= 0.03 * actual, table[what]
        children = psutil.Process(serve.pid).children(recursive=True)
        assert children, "no llama-server child"
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            assert answer.status == 200
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
    err = serve.stderr.read() if serve.stderr else ""
    assert f"stopped llama-server at {url}" in err
    assert "has no chat template" in err and "--chat-template gemma" in err
    log = next(Path(env["XDG_CACHE_HOME"]).glob("gemmatui/logs/llama-server-*.log"))
    assert "compute buffer size" in log.read_text(errors="replace")
    time.sleep(0.5)
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
