"""How much does ``gemmatui ask`` add over a bare HTTP request? And what dominates it?

Starts the fake Ollama (tests/fake_ollama.py) on loopback with a short reply, then
times, median of N runs each:

* ``curl -sN`` posting the same chat request (a fresh process, like ``ask``); without
  curl, a raw-socket request made in this process (no process start) — said so in
  the output;
* ``python -m gemmatui ask --model 1b --ctx 4k hi`` (model and context given: no
  hardware probe, no fit);
* ``python -m gemmatui ask hi`` (nothing given: lists the models, probes the
  hardware and plans the fit to choose model and context);
* ``python -c pass`` (the interpreter's own start-up).

The overhead is ask minus curl. One extra ``python -X importtime`` run of ask says
which imports it goes to.

With ``--real`` it then does the same against a real engine: llama.cpp's llama-server
(the ``xllamacpp`` wheel of the test extra) serving the real Gemma 3 270M GGUF on
loopback, every reply capped at 24 tokens by the server (``n_predict``): ``curl -sN``
posting the same ``/v1/chat/completions`` request against ``gemmatui ask --host URL hi``
(engine detection, the served model, the SSE stream). The difference is ask's overhead
next to a real engine, whose own generation time is in both.

Usage: python bench/bench_ask.py [--runs 15] [--real]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fake_ollama import FakeOllama  # noqa: E402

REPLY = "Blue, from Rayleigh scattering."
ASK_EXPLICIT = ["ask", "--model", "1b", "--ctx", "4k", "hi"]
ASK_DEFAULT = ["ask", "hi"]


def median_ms(action: Callable[[], None], runs: int) -> tuple[float, float]:
    """(median, min) wall time of ``action`` in milliseconds, after one warm-up run."""
    action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def run_process(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
        )


def chat_body() -> bytes:
    return json.dumps(
        {
            "model": "gemma3:1b-it-qat",
            "messages": [{"role": "user", "content": "hi"}],
            "options": {"num_ctx": 4096},
            "keep_alive": "10m",
        }
    ).encode()


def raw_socket_chat(url: str) -> None:
    """POST /api/chat over a plain socket and read until the final chunk."""
    parts = urlsplit(url)
    body = chat_body()
    request = (
        f"POST /api/chat HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        while sock.recv(65536):
            pass


def import_breakdown(env: dict[str, str], runs: int) -> list[tuple[str, float]]:
    """Median cumulative import time (ms) of each top-level import made by ``ask``,
    over ``runs`` runs of ``python -X importtime``, largest first."""
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "gemmatui", *ASK_EXPLICIT],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        totals: dict[str, float] = defaultdict(float)
        for line in done.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
            if m and len(m.group(2)) == 1:  # one space of indent: a top-level import
                totals[m.group(3).split(".")[0]] += int(m.group(1)) / 1000
        for name, ms in totals.items():
            samples[name].append(ms)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return sorted(medians.items(), key=lambda item: item[1], reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=15, help="timed runs per measurement (median reported)"
    )
    parser.add_argument(
        "--real", action="store_true", help="also time ask against a real llama-server (270M)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home, FakeOllama(installed=["1b"], reply=REPLY) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "GEMMATUI_"))}
        # Measure what an installed copy does: byte-code cached (pip compiles it), here in
        # a temporary cache so that nothing is written into the checkout.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            PYTHONPYCACHEPREFIX=str(Path(home) / "pycache"),
            OLLAMA_HOST=fake.url,
            HOME=home,
            GEMMATUI_CONFIG=str(Path(home) / "config.toml"),
            GEMMATUI_DATA_DIR=str(Path(home) / "data"),
            PYTHONPATH=str(REPO),
        )
        gemmatui = [sys.executable, "-m", "gemmatui"]
        curl = shutil.which("curl")
        if curl:
            baseline_label = "curl -sN (new process)"
            argv = [curl, "-sN", f"{fake.url}/api/chat", "-d", chat_body().decode()]
            baseline = median_ms(lambda: run_process(argv, env), args.runs)
        else:
            baseline_label = (
                "raw socket request in this process (curl not found: no process start counted)"
            )
            baseline = median_ms(lambda: raw_socket_chat(fake.url), args.runs)
        python = median_ms(lambda: run_process([sys.executable, "-c", "pass"], env), args.runs)
        explicit = median_ms(lambda: run_process(gemmatui + ASK_EXPLICIT, env), args.runs)
        default = median_ms(lambda: run_process(gemmatui + ASK_DEFAULT, env), args.runs)
        imports = import_breakdown(env, max(3, args.runs // 3))

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"gemmatui ask against the fake Ollama on loopback; {os.cpu_count()} CPUs, load {load}")
    print(f"wall time in ms, median / min of {args.runs} runs:")
    rows = [
        (baseline_label, baseline),
        ("python -c pass", python),
        ("gemmatui " + " ".join(ASK_EXPLICIT), explicit),
        ("gemmatui " + " ".join(ASK_DEFAULT) + "  (+ list models, probe hardware, fit)", default),
    ]
    for label, (med, low) in rows:
        print(f"  {med:7.0f} / {low:5.0f}  {label}")
    print(
        f"overhead of ask over the baseline: {explicit[0] - baseline[0]:.0f} ms median, "
        f"{explicit[1] - baseline[1]:.0f} ms best; choosing model and context adds "
        f"{default[0] - explicit[0]:.0f} ms median"
    )
    total_imports = sum(ms for _, ms in imports)
    print(f"imports of `ask` (-X importtime, top level, median per module): {total_imports:.0f} ms")
    for name, ms in imports[:8]:
        print(f"  {ms:7.1f}  {name}  ({ms / explicit[0]:.0%} of ask's median)")
    rest = explicit[0] - python[0] - total_imports
    print(
        f"left for the rest (event loop, the HTTP request, output): about {max(0.0, rest):.0f} ms "
        "(-X importtime inflates imports a little, so this is a lower bound)"
    )
    if args.real:
        real_engine(args.runs, curl)
    return 0


def real_engine(runs: int, curl: str | None) -> None:
    """``ask`` against llama-server on the real 270M, beside curl posting the same chat."""
    from tests.engine.llama_harness import RunningServer, Setting
    from tests.real_model import model_path

    with tempfile.TemporaryDirectory() as home:
        server = RunningServer(
            model_path(), Setting(4096), Path(home) / "llama-server.log", n_predict=24
        )
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "GEMMATUI_"))}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env.update(
                PYTHONPYCACHEPREFIX=str(Path(home) / "pycache"),
                HOME=home,
                GEMMATUI_CONFIG=str(Path(home) / "config.toml"),
                GEMMATUI_DATA_DIR=str(Path(home) / "data"),
                PYTHONPATH=str(REPO),
            )
            body = json.dumps(
                {"messages": [{"role": "user", "content": "hi"}], "stream": True, "seed": 1}
            )
            if curl:
                label = "curl -sN /v1/chat/completions (new process)"
                argv = [curl, "-sN", f"{server.url}/v1/chat/completions", "-d", body]
                baseline = median_ms(lambda: run_process(argv, env), runs)
            else:  # pragma: no cover - curl is on every machine this runs on
                raise SystemExit("--real needs curl")
            ask = [sys.executable, "-m", "gemmatui", "ask", "--host", server.url, "hi"]
            timed = median_ms(lambda: run_process(ask, env), runs)
        finally:
            server.stop()
    print()
    print("against a real engine: llama-server (xllamacpp, CPU) with the Gemma 3 270M, 24 tokens")
    print(f"wall time in ms, median / min of {runs} runs:")
    print(f"  {baseline[0]:7.0f} / {baseline[1]:5.0f}  {label}")
    print(f"  {timed[0]:7.0f} / {timed[1]:5.0f}  gemmatui ask --host URL hi")
    print(
        f"overhead of ask over curl on the real engine: {timed[0] - baseline[0]:.0f} ms median, "
        f"{timed[1] - baseline[1]:.0f} ms best"
    )


if __name__ == "__main__":
    raise SystemExit(main())
