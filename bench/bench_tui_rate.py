"""What does the chat cost the machine while a reply streams at a steady, real rate?

Issue #11, item 1. On a CPU-only laptop the model and the app share a few cores, so
every core-second the app spends drawing is taken from generation. This benchmark
runs the REAL app (``python -m gemmatui --host URL``) in a REAL pseudo-terminal, as a
user runs it, against the fake Ollama (``tests/fake_ollama.py``, its own process, so
its CPU is not counted) streaming at fixed rates, by default 10, 30 and 100 tokens/s.

How
---
For each rate, a fresh fake Ollama (``--rate R --installed 1b --load-seconds 0``) and a
fresh app process with its own config and data dir (``GEMMATUI_CONFIG`` ->
``model = "gemma3:1b-it-qat"``, ``num_ctx = 8192``; ``GEMMATUI_DATA_DIR`` empty, so the
app opens straight on an empty chat) are started. The app's stdin, stdout and stderr
are the slave side of a pty (``os.openpty``; 140x40 set with ``TIOCSWINSZ``;
``TERM=xterm-256color``; the pty is its controlling terminal). A thread of this script
plays the terminal: it drains the master side continuously (the app never blocks on
output), keeps every byte with the time it was read, and answers Textual's one query
that changes how it draws: ``CSI ? 2026 $ p`` (synchronized output supported?) gets
``CSI ? 2026 ; 2 $ y`` (yes), as tmux, kitty, WezTerm, iTerm2 or Windows Terminal
answer. The in-band resize query (``?2048``) and the kitty keyboard protocol are
left unanswered, as xterm leaves them.

Then, per rate:

1. wait for the chat (its prompt's placeholder appears on screen), let it settle 2 s,
   and measure **idle** for ``--idle-seconds`` (panels polling: the hardware probe
   every 1-2 s, ``/api/ps`` every 5 s; the prompt's cursor blinks for the first 10 s,
   so the default 15 s window holds both, as a person who opened the chat and
   stepped away pays them);
2. type a prompt and Enter; the fake streams a Markdown document (headings,
   paragraphs with bold and code, lists, a code fence) cycled for as long as needed;
3. the window starts when the reply's first word (``Zephyrus``) is seen on screen
   and lasts ``--seconds``; over it: the app's **CPU % of one core** (utime + stime of
   all its threads from ``/proc/PID/stat``, delta / CLK_TCK / wall seconds), **frames/s**
   (how many ``ESC [ ? 2026 h`` the app wrote: Textual's ``App._display`` writes exactly
   one ``SYNC_START`` per frame it paints, see ``textual/app.py`` ``_begin_update``, once
   the terminal said it supports mode 2026) and output bytes/s;
4. at the key rate (default: the highest rate), still during the stream: **key
   latency**, ``--presses`` times: write ``@`` into the pty (it goes into the focused
   prompt), time until an ``@`` is read back from the app (the next frame that paints
   it), then Backspace and a pause of 0.4-0.5 s (jittered so presses do not lock to the
   app's timers). Median and max are reported. ``@`` is not in the reply, the prompt
   or the panels (checked: it must not appear before the first press);
5. **peak RSS** of the app process (``VmHWM`` from ``/proc/PID/status``) at the end.

Beside it, in the same run and the same kind of pty, the **floor**: a minimal Textual
app (``--floor-app``, defined below) that streams the same fake's ``/api/chat`` with
httpx (NDJSON) and appends each chunk, as it arrives, to a ``Markdown`` widget through
``Markdown.get_stream`` (``await stream.write(chunk)``); the Markdown sits in an
anchored ``VerticalScroll`` so the view follows the reply, as a chat does. Its CPU %,
frames/s and peak RSS are measured the same way, so each app figure reads as a ratio to
Textual's own Markdown floor (issue: 52 % at 30 tokens/s, 16-17 % at 10).

Last, ``fit``'s start: ``gemmatui fit --json`` (the venv's console script, else
``python -m gemmatui``; OLLAMA_HOST pointed at a closed
port on 127.0.0.1) against ``python -c pass``, side by side (alternating), byte-code
cached (``PYTHONPYCACHEPREFIX`` in a temp dir, written by an untimed first run of each),
median of ``--runs``; the ratio's goal is <= 6x.

Everything listens and connects on 127.0.0.1 only. Every process started here (fakes,
apps) is killed at the end, on an error or on Ctrl-C.

Goals (issue #11): app CPU <= 5 % at 10 tokens/s, <= 10 % at 30, <= 15 % at 100, idle
<= 1 %; key latency <= 100 ms at 100 tokens/s; ``fit --json`` start <= 6x ``python -c pass``.

Usage::

    .venv/bin/python bench/bench_tui_rate.py                      # 10,30,100 tok/s, 20 s each
    .venv/bin/python bench/bench_tui_rate.py --seconds 5 --rates 10,100 --runs 5
    .venv/bin/python bench/bench_tui_rate.py --no-floor --json    # one JSON object on stdout
    .venv/bin/python bench/bench_tui_rate.py --rates 30 --profile /tmp/prof  # py-spy stacks

With the defaults a rate takes about a minute (app ~33 s: start, 2 s settling, idle,
the window, the key presses; floor ~23 s), the whole run under 3 minutes.

Results
-------
Quiet host (2 cores, load average < 0.5), Python 3.11.7, Textual 8.2.8, defaults,
after issue #11 (commit e62bc08)::

    tok/s  app CPU  floor CPU  ratio  app fr/s  floor fr/s  app RSS  floor RSS  key ms
       10    5.5 %     16.7 %  0.33x       9.7        13.8   74 MiB     59 MiB       -
       30    9.3 %     45.6 %  0.20x      10.4        30.9   76 MiB     69 MiB       -
      100   14.0 %     83.2 %  0.17x      10.8        18.9   78 MiB     88 MiB  21 (max 25)
    idle in the chat (15 s): 0.6-0.7 % of one core, 1.1-1.2 frames/s
    fit --json: 58 ms vs python -c pass 12 ms = 4.9x (median of 20)

Before issue #11 (busy shared host): 25.7 / 35.8 / 65.6 % at 10 / 30 / 100 tokens/s,
idle 2.0-2.4 %, key latency at 100 tokens/s 109 ms, fit 5.5-7.2x.

More runs, and the profile of what is left, are in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COLS, ROWS = 140, 40
MODEL = "gemma3:1b-it-qat"
NUM_CTX = 8192
CLK_TCK = os.sysconf("SC_CLK_TCK")
SYNC_START = b"\x1b[?2026h"
SYNC_QUERY = b"\x1b[?2026$p"
SYNC_REPLY = b"\x1b[?2026;2$y"
CHAT_READY = b"Message Gemma"  # the prompt's placeholder
FIRST_WORD = b"Zephyrus"
KEY = b"@"
BACKSPACE = b"\x7f"
PROMPT = "Write a long guide, please."

#: The reply; the fake cycles through its words (whitespace kept), one word a token. It
#: starts with blank lines so that the next cycle starts a new paragraph.
REPLY = """

Zephyrus says: quantization-aware training keeps **most of the quality** at `Q4_0`.

## Step one

The 27B model needs about 18 GB instead of 54 GB. The KV cache grows with the
context, so a *longer* chat costs more memory:

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


# ----------------------------------------------------------------------- processes

_LIVE: list[subprocess.Popen[bytes]] = []


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Stop one process this script started (its own session: the whole group)."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)  # started with start_new_session: pgid == pid
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    if proc in _LIVE:
        _LIVE.remove(proc)


def _kill_all() -> None:
    for proc in list(_LIVE):
        _kill(proc)


def start_fake(rate: float, tokens: int) -> tuple[subprocess.Popen[bytes], str]:
    """The fake Ollama on 127.0.0.1, streaming ``tokens`` tokens at ``rate`` a second."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_ollama",
            "--port",
            "0",
            "--installed",
            "1b",
            "--rate",
            str(rate),
            "--tokens",
            str(tokens),
            "--load-seconds",
            "0",
            "--reply",
            REPLY,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _LIVE.append(proc)
    assert proc.stdout is not None
    url = proc.stdout.readline().decode().strip()
    if not url.startswith("http://127.0.0.1:"):
        _kill(proc)
        raise RuntimeError(f"the fake Ollama did not start (said {url!r})")
    return proc, url


def _make_controlling_tty() -> None:  # runs in the child, after setsid
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyApp:
    """A process in a pseudo-terminal, and the terminal: drains, records, answers."""

    def __init__(self, argv: list[str], env: dict[str, str], cols: int = COLS, rows: int = ROWS):
        import fcntl
        import struct
        import termios

        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.master = master
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.eof = False
        self._scanned = 0
        self.sync_answered = False
        try:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=REPO,
                env=env,
                start_new_session=True,
                preexec_fn=_make_controlling_tty,
            )
        finally:
            os.close(slave)
        _LIVE.append(self.proc)
        self.pid = self.proc.pid
        self._thread = threading.Thread(target=self._drain, name="pty-drain", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:  # EIO: the slave side is closed (the app exited)
                data = b""
            with self.cond:
                if not data:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.buf += data
                start = max(0, self._scanned - len(SYNC_QUERY))
                if not self.sync_answered and self.buf.find(SYNC_QUERY, start) >= 0:
                    self.sync_answered = True
                    os.write(self.master, SYNC_REPLY)
                self._scanned = len(self.buf)
                self.cond.notify_all()

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    @property
    def offset(self) -> int:
        with self.cond:
            return len(self.buf)

    def wait_for(self, needle: bytes, start: int, timeout: float) -> tuple[float, int] | None:
        """Wait until ``needle`` is read at or after byte ``start``.

        Returns:
            ``(time it was read, its offset)``, or ``None`` on timeout or end of output.
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                at = self.buf.find(needle, start)
                if at >= 0:
                    return time.monotonic(), at
                start = max(start, len(self.buf) - len(needle) + 1)
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    return None
                self.cond.wait(min(left, 0.05))

    def count(self, needle: bytes, start: int, end: int) -> int:
        with self.cond:
            return self.buf.count(needle, start, end)

    def cpu_seconds(self) -> float:
        """utime + stime of the process (all its threads), in seconds."""
        with open(f"/proc/{self.pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14, 15 of stat(5)

    def status_kib(self, key: str) -> int:
        with open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    def screen_tail(self, size: int = 3000) -> str:
        """The last bytes written, escape sequences stripped (for error messages)."""
        with self.cond:
            tail = bytes(self.buf[-size:])
        text = re.sub(rb"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b.", b"", tail)
        return text.decode("utf-8", "replace")

    def close(self) -> None:
        _kill(self.proc)
        self._thread.join(2)
        try:
            os.close(self.master)
        except OSError:
            pass


# ----------------------------------------------------------------------- measuring


def _host_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs together, from ``/proc/stat``."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest times are already inside user and nice
    return total - idle, total


class Window:
    """CPU and output of a PtyApp between ``start()`` and ``stop()``."""

    def __init__(self, app: PtyApp):
        self.app = app

    def start(self) -> None:
        self.host0 = _host_jiffies()
        self.t0, self.cpu0, self.off0 = time.monotonic(), self.app.cpu_seconds(), self.app.offset

    def stop(self) -> dict[str, float]:
        t1, cpu1, off1 = time.monotonic(), self.app.cpu_seconds(), self.app.offset
        host1 = _host_jiffies()
        busy, total = host1[0] - self.host0[0], host1[1] - self.host0[1]
        wall = t1 - self.t0
        return {
            # the whole machine (every process, all cores): near 100 % means the app
            # competed for CPU and its own figures are capped by what it could get
            "host_busy_pct": round(busy / total * 100, 1) if total else None,
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu1 - self.cpu0, 3),
            "cpu_pct": round((cpu1 - self.cpu0) / wall * 100, 1),
            "frames": self.app.count(SYNC_START, self.off0, off1),
            "frames_per_s": round(self.app.count(SYNC_START, self.off0, off1) / wall, 1),
            "out_kib_per_s": round((off1 - self.off0) / wall / 1024, 1),
        }


def _env(tmp: Path, url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TMUX", "TEXTUAL", "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR"))
    }
    env.update(
        TERM="xterm-256color",
        COLORTERM="truecolor",
        GEMMATUI_CONFIG=str(tmp / "config.toml"),
        GEMMATUI_DATA_DIR=str(tmp / "data"),
        OLLAMA_HOST=url,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.pop("TERM_PROGRAM", None)
    return env


def key_latency(app: PtyApp, presses: int) -> dict[str, Any]:
    """Median and max ms from writing ``@`` into the pty until the app paints it."""
    results: list[float] = []
    misses = 0
    for _ in range(presses):
        start = app.offset
        t0 = time.monotonic()
        app.write(KEY)
        seen = app.wait_for(KEY, start, timeout=3.0)
        if seen is None:
            misses += 1
        else:
            results.append((seen[0] - t0) * 1000)
        app.write(BACKSPACE)
        time.sleep(0.4 + random.random() * 0.1)
    return {
        "key_ms_median": round(statistics.median(results), 1) if results else None,
        "key_ms_max": round(max(results), 1) if results else None,
        "key_ms_all": [round(r, 1) for r in results],
        "key_misses": misses,
    }


def run_app(
    rate: float, args: argparse.Namespace, *, floor: bool, with_keys: bool
) -> dict[str, Any]:
    """One process (the app, or the floor) against a fresh fake streaming at ``rate``."""
    stream_s = args.seconds + (args.presses * 0.6 + 4 if with_keys else 0) + 20
    fake, url = start_fake(rate, max(50, int(rate * stream_s)))
    app: PtyApp | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tui-rate-") as tmp_name:
            tmp = Path(tmp_name)
            (tmp / "data").mkdir()
            (tmp / "config.toml").write_text(f'model = "{MODEL}"\nnum_ctx = {NUM_CTX}\n')
            env = _env(tmp, url)
            if floor:
                argv = [sys.executable, str(Path(__file__).resolve()), "--floor-app", url]
            else:
                argv = [sys.executable, "-m", "gemmatui", "--host", url]
            app = PtyApp(argv, env)
            row: dict[str, Any] = {"rate": rate, "what": "floor" if floor else "app"}
            if not floor:
                if app.wait_for(CHAT_READY, 0, timeout=60) is None:
                    raise RuntimeError(f"the chat did not open; screen:\n{app.screen_tail()}")
                time.sleep(2.0)  # settle: first polls, history, first /api/ps
                spy = _start_profiler(app.pid, args, rate, "idle", args.idle_seconds)
                idle = Window(app)
                idle.start()
                time.sleep(args.idle_seconds)
                row["idle"] = idle.stop()
                _stop_profiler(spy)
                before = app.offset
                app.write(PROMPT.encode())
                time.sleep(0.3)
                app.write(b"\r")
            else:
                before = 0
            seen = app.wait_for(FIRST_WORD, before, timeout=60)
            if seen is None:
                raise RuntimeError(f"no streamed text on screen; screen:\n{app.screen_tail()}")
            if not app.sync_answered:
                raise RuntimeError("the app never asked for synchronized output: no frame count")
            spy = _start_profiler(app.pid, args, rate, "floor" if floor else "app", args.seconds)
            window = Window(app)
            window.start()
            time.sleep(args.seconds)
            row["stream"] = window.stop()
            _stop_profiler(spy)
            if with_keys:
                if app.count(KEY, 0, app.offset):
                    raise RuntimeError(f"{KEY!r} is already on screen: cannot time key presses")
                row.update(key_latency(app, args.presses))
            row["peak_rss_mib"] = round(app.status_kib("VmHWM") / 1024, 1)
            row["sync_output"] = app.sync_answered
            if fake.poll() is not None or app.proc.poll() is not None:
                raise RuntimeError("the fake or the app exited during the measurement")
            return row
    finally:
        if app is not None:
            app.close()
        _kill(fake)


def _start_profiler(
    pid: int, args: argparse.Namespace, rate: float, what: str, seconds: float
) -> subprocess.Popen[bytes] | None:
    """With ``--profile DIR``: py-spy samples ``pid`` over the stream window.

    The collapsed stacks (``--format raw``, one line per stack with its sample count,
    idle samples left out) go to ``DIR/{what}-{rate}.txt`` (``what``: ``app``,
    ``floor``, or ``idle`` for the app's idle window). py-spy runs in its own
    process (its CPU is not the app's) and needs ``pip install py-spy`` and the right
    to trace the app (root, or ``ptrace_scope`` 0).
    """
    if not args.profile:
        return None
    out = Path(args.profile) / f"{what}-{rate:g}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    proc = subprocess.Popen(
        [
            str(spy) if spy.exists() else "py-spy",
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _LIVE.append(proc)
    return proc


def _stop_profiler(spy: subprocess.Popen[bytes] | None) -> None:
    """Wait for py-spy to write its file (it stops after its ``--duration``)."""
    if spy is None:
        return
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        pass
    _kill(spy)


def fit_start(runs: int) -> dict[str, Any]:
    """``gemmatui fit --json`` vs ``python -c pass``: median ms, byte-code cached."""
    import socket

    with socket.socket() as sock:  # a port nothing listens on: Ollama "not running"
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp_name:
        tmp = Path(tmp_name)
        env = _env(tmp, closed)
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        entry = Path(sys.executable).parent / "gemmatui"  # the installed console script
        fit_argv = [str(entry)] if entry.exists() else [sys.executable, "-m", "gemmatui"]
        commands = {
            "pass": [sys.executable, "-c", "pass"],
            "fit": [*fit_argv, "fit", "--json"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for i in range(runs + 1):  # run 0 writes the byte-code and warms the disk cache
            for name, argv in commands.items():
                start = time.perf_counter()
                out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, timeout=60)
                elapsed = time.perf_counter() - start
                if name == "fit":
                    try:
                        json.loads(out.stdout)
                    except ValueError:
                        raise RuntimeError(
                            f"fit --json failed (rc {out.returncode}):\n"
                            f"{out.stderr.decode(errors='replace')[-2000:]}"
                        ) from None
                if i:
                    times[name].append(elapsed * 1000)
    fit_ms, pass_ms = statistics.median(times["fit"]), statistics.median(times["pass"])
    return {
        "runs": runs,
        "command": " ".join(commands["fit"]),
        "fit_ms": round(fit_ms, 1),
        "pass_ms": round(pass_ms, 1),
        "ratio": round(fit_ms / pass_ms, 2),
        "fit_ms_all": [round(t, 1) for t in times["fit"]],
        "pass_ms_all": [round(t, 1) for t in times["pass"]],
    }


# ----------------------------------------------------------------------- the floor app


def floor_app(url: str) -> None:
    """Textual's Markdown floor: each chunk of ``/api/chat`` into ``Markdown.get_stream``."""
    import httpx
    from textual.app import App, ComposeResult
    from textual.containers import VerticalScroll
    from textual.widgets import Markdown

    class Floor(App[None]):
        def compose(self) -> ComposeResult:
            with VerticalScroll():
                yield Markdown()

        def on_mount(self) -> None:
            self.query_one(VerticalScroll).anchor()
            self.run_worker(self.stream_reply(), exclusive=True)

        async def stream_reply(self) -> None:
            stream = Markdown.get_stream(self.query_one(Markdown))
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": PROMPT}],
                "stream": True,
                "options": {"num_ctx": NUM_CTX},
            }
            try:
                async with httpx.AsyncClient(timeout=None, trust_env=False) as client:
                    async with client.stream("POST", f"{url}/api/chat", json=body) as response:
                        async for line in response.aiter_lines():
                            if not line.strip():
                                continue
                            item = json.loads(line)
                            chunk = item.get("message", {}).get("content", "")
                            if chunk:
                                await stream.write(chunk)
                            if item.get("done"):
                                break
            finally:
                await stream.stop()

    Floor().run()


# ----------------------------------------------------------------------- report


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def render(result: dict[str, Any]) -> str:
    lines = [
        f"Streaming into the chat at fixed rates: real app in a {COLS}x{ROWS} pty, "
        f"{result['seconds']:g} s per rate, model {MODEL}, Python {result['python']}, "
        f"Textual {result['textual']}, {result['cpus']} CPUs",
        "",
    ]
    head = (
        "tok/s",
        "app CPU",
        "floor CPU",
        "ratio",
        "app fr/s",
        "floor fr/s",
        "app KiB/s",
        "app RSS",
        "floor RSS",
        "key ms",
        "host busy",
    )
    lines.append("  ".join(f"{h:>10}" for h in head))
    for row in result["rows"]:
        app, floor = row["app"], row.get("floor")
        a_cpu = app["stream"]["cpu_pct"]
        f_cpu = floor["stream"]["cpu_pct"] if floor else None
        key = None
        if app.get("key_ms_median") is not None:
            key = f"{app['key_ms_median']:.0f} (max {app['key_ms_max']:.0f})"
        cells = (
            f"{row['rate']:g}",
            _fmt(a_cpu, ".1f", " %"),
            _fmt(f_cpu, ".1f", " %"),
            _fmt(a_cpu / f_cpu if f_cpu else None, ".2f", "x"),
            _fmt(app["stream"]["frames_per_s"], ".1f"),
            _fmt(floor["stream"]["frames_per_s"] if floor else None, ".1f"),
            _fmt(app["stream"]["out_kib_per_s"], ".0f"),
            _fmt(app["peak_rss_mib"], ".0f", " MiB"),
            _fmt(floor["peak_rss_mib"] if floor else None, ".0f", " MiB"),
            key or "-",
            _fmt(app["stream"]["host_busy_pct"], ".0f", " %"),
        )
        lines.append("  ".join(f"{c:>10}" for c in cells))
    idle = [row["app"]["idle"] for row in result["rows"]]
    lines += [
        "",
        "idle in the chat, no stream ({:g} s, after 2 s settling; one per rate): CPU {} "
        "of one core, {} frames/s".format(
            idle[0]["wall_s"] if idle else 0,
            ", ".join(f"{i['cpu_pct']:.1f} %" for i in idle),
            ", ".join(f"{i['frames_per_s']:.1f}" for i in idle),
        ),
    ]
    fit = result.get("fit")
    if fit:
        lines.append(
            f"fit --json cold start, byte-code cached, median of {fit['runs']}: "
            f"{fit['fit_ms']:.0f} ms vs python -c pass {fit['pass_ms']:.0f} ms = "
            f"{fit['ratio']:.1f}x"
        )
    lines += [
        "",
        "CPU: utime+stime of the process over the window, % of one core. fr/s: frames "
        "(ESC[?2026h) written per second. RSS: VmHWM. key ms: '@' written to the pty until "
        "the app paints it, median of the presses, during the stream. host busy: all cores, "
        "every process, during the app's window (near 100 %: the figures are capped). Goals: <= 5/10/15 % "
        "at 10/30/100 tok/s, idle <= 1 %, key <= 100 ms, fit <= 6x.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="10,30,100", help="tokens per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="stream window per rate")
    parser.add_argument("--idle-seconds", type=float, default=15.0, help="idle window per rate")
    parser.add_argument("--presses", type=int, default=7, help="key presses for the latency")
    parser.add_argument(
        "--key-rate", type=float, help="rate at which to time key presses (default: the highest)"
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the Markdown floor app")
    parser.add_argument("--runs", type=int, default=10, help="fit --json start runs (0: skip)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy the stream windows into DIR (collapsed stacks)"
    )
    parser.add_argument("--floor-app", metavar="URL", help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.floor_app:
        floor_app(args.floor_app)
        return 0

    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    key_rate = args.key_rate if args.key_rate is not None else max(rates)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell that starts the script in the background ignores it otherwise.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_term)
    import textual

    result: dict[str, Any] = {
        "seconds": args.seconds,
        "idle_seconds": args.idle_seconds,
        "size": f"{COLS}x{ROWS}",
        "model": MODEL,
        "python": sys.version.split()[0],
        "textual": getattr(textual, "__version__", "?"),
        "cpus": os.cpu_count(),
        "load_avg_at_start": os.getloadavg(),
        "rows": [],
    }
    try:
        for rate in rates:
            if not args.json:
                print(f"rate {rate:g} tok/s ...", file=sys.stderr, flush=True)
            row: dict[str, Any] = {"rate": rate}
            row["app"] = run_app(rate, args, floor=False, with_keys=rate == key_rate)
            if not args.no_floor:
                row["floor"] = run_app(rate, args, floor=True, with_keys=False)
            result["rows"].append(row)
        if args.runs > 0:
            if not args.json:
                print("fit --json start ...", file=sys.stderr, flush=True)
            result["fit"] = fit_start(args.runs)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except RuntimeError as err:
        print(f"bench_tui_rate: error: {err}", file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not stop the clean-up
        _kill_all()
    result["load_avg_at_end"] = os.getloadavg()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
