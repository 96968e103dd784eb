"""Does a streamed reply cost the same per token at 20k tokens as at 1k?

For each N (default 1k, 5k, 20k) a fresh process runs the real app headless
(``App.run_test``), opens the chat, sends one message and lets the fake Ollama
(``tests/fake_ollama.py``, in its own process so its CPU is not counted) stream N
tokens of Markdown as fast as it can: headings, paragraphs with bold and code, lists
and code fences. It reports, for the stream alone:

* CPU seconds of the app's process (``time.process_time``) and per 1,000 tokens;
* wall seconds;
* the process's peak RSS (``resource.getrusage``), app and all.

Goal (issue #4): the per-1k-token cost at 20k within 1.5x of the cost at 1k.

A second measurement is the cold start: a fresh ``python`` process that imports the
app the way ``python -m gemmatui`` does, builds it with ``build_app`` (config,
client, hardware probe, store, server settings) and runs it headless until the chat
screen has mounted and painted; the time is from process spawn to that point,
median of a few runs.

Usage: python bench/bench_tui_stream.py [--tokens 1000,5000,20000] [--cold-runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODEL = "gemma3:4b-it-qat"
NUM_CTX = 32768
#: One "document" of Markdown; the fake cycles through its words (whitespace kept).
REPLY = """## Step {n}

Quantization-aware training keeps **most of the quality** at `Q4_0`, so the
27B model needs about 18 GB instead of 54 GB. The KV cache grows with the context:

- sliding-window layers keep only the last 1024 tokens
- global layers keep the *whole* context
- a `q8_0` cache halves it again

```python
def kv_bytes(ctx: int, layers: int = 62) -> int:
    return 2 * layers * ctx * 16 * 128 * 2
```

1. pull the model
2. pick the context
3. chat

"""


def start_fake(tokens: int) -> tuple[subprocess.Popen[str], str]:
    """The fake Ollama in its own process, streaming ``tokens`` tokens flat out."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_ollama",
            "--port",
            "0",
            "--installed",
            "4b",
            "--tokens",
            str(tokens),
            "--rate",
            "0",
            "--load-seconds",
            "0",
            "--reply",
            REPLY,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _app(url: str, data: Path):  # type: ignore[no-untyped-def]
    from gemmatui.core.config import Settings
    from gemmatui.core.hardware import StaticProbe
    from gemmatui.core.ollama import OllamaClient
    from gemmatui.core.storage import ConversationStore
    from gemmatui.core.types import HardwareSnapshot
    from gemmatui.tui.app import GemmaApp

    machine = HardwareSnapshot(
        gpus=(),
        ram_total_bytes=64 << 30,
        ram_available_bytes=48 << 30,
        backend="cpu",
        source="bench",
    )
    return GemmaApp(
        client=OllamaClient(url, read_timeout=120),
        probe=StaticProbe(machine),
        settings=Settings(model=MODEL, num_ctx=NUM_CTX),
        store=ConversationStore(data),
        config_path=data / "config.toml",
    )


async def stream_once(url: str, data: Path) -> dict[str, float]:
    """Run the app headless, send one prompt, measure the streamed reply."""
    import resource

    from gemmatui.tui.screens.chat import ChatScreen

    app = _app(url, data)
    async with app.run_test(size=(120, 36)) as pilot:
        while not isinstance(app.screen, ChatScreen):
            await pilot.pause(0.01)
        screen = app.screen
        await pilot.pause(0.2)
        screen.prompt.insert("Write a long guide.")
        cpu, wall = time.process_time(), time.perf_counter()
        await pilot.press("enter")
        worker = screen.reply_worker
        assert worker is not None
        await worker.wait()
        await pilot.pause()  # the final paint
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        reply = screen.query("AssistantMessage").last()
        # The reply's Markdown pieces (MarkdownView; Markdown widgets before issue #11)
        # and every widget inside the reply, so that the table reads before and after.
        pieces = [w for w in reply.children if "Markdown" in type(w).__name__]
        result = {
            "cpu_s": cpu,
            "wall_s": wall,
            "chars": len(reply.text),  # type: ignore[attr-defined]
            "documents": len(pieces),
            "widgets": len(reply.query("*")),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    await app.client.aclose()
    app.store.close()
    return result


def one(tokens: int) -> dict[str, float]:
    """Measure one N in this process (called in a child process by :func:`main`)."""
    import asyncio

    fake, url = start_fake(tokens)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["GEMMATUI_DATA_DIR"] = tmp
            os.environ["GEMMATUI_CONFIG"] = str(Path(tmp) / "config.toml")
            result = asyncio.run(stream_once(url, Path(tmp)))
    finally:
        fake.terminate()
        fake.wait()
    return {"tokens": tokens, **result}


_COLD = """
import time, sys, asyncio, argparse
sys.path.insert(0, {repo!r})
from gemmatui.cli import build_parser
from gemmatui.tui.app import build_app
from gemmatui.tui.screens.chat import ChatScreen

args = build_parser().parse_args(["--model", "4b", "--ctx", "8k"])
app = build_app(args)

async def auto_pilot(pilot):
    while not (isinstance(app.screen, ChatScreen) and app.screen.is_mounted):
        await pilot.pause(0.005)
    await pilot.pause()  # one paint of the chat
    print("painted", flush=True)
    app.exit()

app.run(headless=True, size=(120, 36), auto_pilot=auto_pilot)
"""


def cold_start(runs: int) -> dict[str, float]:
    """Spawn-to-first-paint of the app, median and min of ``runs`` fresh processes."""
    fake, url = start_fake(10)
    times = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "OLLAMA_HOST": url,
                "GEMMATUI_DATA_DIR": tmp,
                "GEMMATUI_CONFIG": str(Path(tmp) / "config.toml"),
                # an installed copy has its byte-code cached; some shells forbid writing it
                "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"),
            }
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            code = _COLD.format(repo=str(REPO))
            for _ in range(runs + 1):  # the first run warms the disk cache and .pyc files
                start = time.perf_counter()
                out = subprocess.run(
                    [sys.executable, "-c", code],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                if "painted" not in out.stdout:
                    raise SystemExit(f"cold start run failed:\n{out.stderr[-2000:]}")
                times.append(time.perf_counter() - start)
    finally:
        fake.terminate()
        fake.wait()
    times = times[1:]
    return {"median_ms": statistics.median(times) * 1000, "min_ms": min(times) * 1000, "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", default="1000,5000,20000", help="comma-separated token counts")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold-start runs (0: skip)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one)))
        return 0

    rows = []
    for tokens in (int(t) for t in args.tokens.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(tokens)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))

    python = sys.version.split()[0]
    print(f"Streaming Markdown into the chat: headless 120x36, Python {python}")
    columns = ("tokens", "chars", "widgets", "pieces", "CPU s", "CPU s/1k", "wall s", "peak RSS")
    print(" ".join(f"{name:>9}" for name in columns))
    for r in rows:
        cells = (
            f"{r['tokens']}",
            f"{r['chars']}",
            f"{r['widgets']}",
            f"{r['documents']}",
            f"{r['cpu_s']:.2f}",
            f"{r['cpu_s'] / r['tokens'] * 1000:.3f}",
            f"{r['wall_s']:.2f}",
            f"{r['peak_rss_mib']:.0f} MiB",
        )
        print(" ".join(f"{cell:>9}" for cell in cells))
    first, last = rows[0], rows[-1]
    ratio = (last["cpu_s"] / last["tokens"]) / (first["cpu_s"] / first["tokens"])
    verdict = "within" if ratio <= 1.5 else "NOT within"
    print(f"per-1k cost at {last['tokens']} / at {first['tokens']}: {ratio:.2f}x ({verdict} 1.5x)")

    if args.cold_runs:
        cold = cold_start(args.cold_runs)
        print(
            "cold start, process spawn to the chat's first paint (headless, build_app): "
            f"median {cold['median_ms']:.0f} ms, min {cold['min_ms']:.0f} ms, {cold['runs']} runs"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
