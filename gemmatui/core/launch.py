"""Start llama.cpp's ``llama-server`` with the settings the fit chose, and watch it.

The command line is the one Ollama would give llama-server for the same plan
(``shared/reference/gemma3-memory.md`` 3.1), so the memory model's figures apply:

``-m GGUF [--mmproj FILE] -c ctx×np -np np -ctk T -ctv T -fa on|off -b U -ub U -ngl N
[--chat-template gemma] -a NAME --host ADDR --port P``

* ``-ngl``: every layer (``layers + 1``, the output layer counted) when the plan fits
  fully on the GPU, the fit's share of the layers when it offloads part, 0 without a GPU;
* ``--chat-template gemma``: only when the GGUF has no ``tokenizer.chat_template`` (the
  270M base model, some community files): llama.cpp's built-in Gemma template;
* ``-a``: the model's name in the API (the file name without ``.gguf``).

The program is ``llama-server`` on ``PATH``, else the ``xllamacpp`` wheel (the optional
extra ``gemmatui[llamacpp]``) run through :mod:`gemmatui.core.launch_xllamacpp`, which
takes the same flags. It runs in its own session (Ctrl-C in the terminal reaches
gemmatui, which stops it in order), with its output in a log file in the user cache
dir; :func:`gemmatui.core.llama_log.parse_buffer_log` reads llama.cpp's own
allocations from that log for the plan-versus-actual table.

Only the standard library is imported here; the GGUF reader and the fit are the
callers' business.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gemmatui.core.errors import LaunchError, PortInUse, UsageError

if TYPE_CHECKING:
    from gemmatui.core.catalog import Variant
    from gemmatui.core.fit import Breakdown, FitReport, VariantFit
    from gemmatui.core.llama_log import BufferLog

#: llama-server's own default port and the address gemmatui binds unless told.
DEFAULT_PORT = 8080
DEFAULT_BIND = "127.0.0.1"
#: How long ``serve`` waits for the model to load (a 27B from a slow disk: minutes).
DEFAULT_LOAD_TIMEOUT = 600.0
#: The install hint when no llama-server can be found.
INSTALL_HINT = (
    "no llama-server found: install llama.cpp (its llama-server on PATH: "
    "https://github.com/ggml-org/llama.cpp), or the Python build: "
    "pip install 'gemmatui[llamacpp]'"
)
#: Cache types llama.cpp can only use with flash attention (a quantized V cache).
_QUANTIZED = ("q8_0", "q5_1", "q5_0", "q4_1", "iq4_nl", "q4_0")


@dataclass(frozen=True)
class LaunchSettings:
    """Everything that goes on llama-server's command line.

    Attributes:
        model: The GGUF file.
        mmproj: The vision projector file, if any.
        ctx: Context per sequence (``-c`` is ``ctx × parallel``, as Ollama passes it).
        parallel: Parallel sequences (``-np``).
        kv_type: Cache type of K and V (``-ctk``/``-ctv``).
        flash_attention: ``-fa on`` or ``off``.
        ubatch: ``-b`` and ``-ub`` (the micro-batch the fit planned with).
        gpu_layers: ``-ngl``.
        builtin_template: Pass ``--chat-template gemma`` (the GGUF has no template).
        host: The address to listen on.
        port: The port to listen on.
    """

    model: Path
    mmproj: Path | None
    ctx: int
    parallel: int
    kv_type: str
    flash_attention: bool
    ubatch: int
    gpu_layers: int
    builtin_template: bool
    host: str = DEFAULT_BIND
    port: int = DEFAULT_PORT

    @property
    def url(self) -> str:
        """Where a client reaches it (a bind-all address becomes loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


def check_cache_and_attention(kv_type: str, flash_attention: bool) -> None:
    """Refuse what llama-server refuses: a quantized cache without flash attention.

    Raises:
        UsageError: The combination llama-server would not start with (exit 2).

    >>> check_cache_and_attention("q8_0", True)
    >>> check_cache_and_attention("q8_0", False)
    Traceback (most recent call last):
    gemmatui.core.errors.UsageError: a q8_0 KV cache needs flash attention, and it is off: llama-server refuses to start with that; use --flash-attention on, or --kv-cache f16
    """
    if kv_type in _QUANTIZED and not flash_attention:
        raise UsageError(
            f"a {kv_type} KV cache needs flash attention, and it is off: llama-server "
            "refuses to start with that; use --flash-attention on, or --kv-cache f16"
        )


def gpu_layers(row: VariantFit, backend: str) -> int:
    """``-ngl`` for a planned row: all layers (and the output layer) when it fits on
    the GPU, the fit's share of the layers when it offloads part, else 0."""
    layers = row.variant.arch.layers
    if backend == "cpu" or row.verdict in ("cpu", "none"):
        return 0
    if row.verdict == "gpu":
        return layers + 1
    return int(row.gpu_layer_share * layers)


def settings_for(
    row: VariantFit,
    *,
    backend: str,
    model: Path,
    mmproj: Path | None,
    builtin_template: bool,
    host: str = DEFAULT_BIND,
    port: int = DEFAULT_PORT,
) -> LaunchSettings:
    """The launch settings of one planned row (``fit``'s breakdown decides them)."""
    bd: Breakdown = row.breakdown
    return LaunchSettings(
        model=model,
        mmproj=mmproj,
        ctx=bd.ctx,
        parallel=bd.num_parallel,
        kv_type=bd.kv_type,
        flash_attention=bd.flash_attention,
        ubatch=bd.ubatch,
        gpu_layers=gpu_layers(row, backend),
        builtin_template=builtin_template,
        host=host,
        port=port,
    )


def launch_plan(
    report: FitReport, *, model: Path, mmproj: Path | None, builtin_template: bool
) -> tuple[VariantFit, LaunchSettings]:
    """The row of a one-file fit report and the launch settings it gives, after refusing
    what llama-server would refuse or what cannot run here (``serve`` and the TUI).

    Raises:
        UsageError: A quantized cache without flash attention (exit 2).
        LaunchError: The model does not fit in this machine's memory (exit 1).
    """
    row = report.rows[0]
    check_cache_and_attention(row.breakdown.kv_type, row.breakdown.flash_attention)
    if row.verdict == "none":
        raise LaunchError(
            f"{row.variant.label} does not fit in this machine's memory: {report.reason}"
        )
    settings = settings_for(
        row,
        backend=report.hardware.backend,
        model=model,
        mmproj=mmproj,
        builtin_template=builtin_template,
    )
    return row, settings


def command_line(settings: LaunchSettings, program: Sequence[str] = ("llama-server",)) -> list[str]:
    """llama-server's argv for ``settings``.

    >>> s = LaunchSettings(Path("m.gguf"), None, 4096, 2, "q8_0", True, 512, 0, True, port=8081)
    >>> " ".join(command_line(s))  # doctest: +NORMALIZE_WHITESPACE
    'llama-server -m m.gguf -c 8192 -np 2 -ctk q8_0 -ctv q8_0 -fa on -b 512 -ub 512 -ngl 0
     --chat-template gemma -a m --host 127.0.0.1 --port 8081'
    """
    argv = [*program, "-m", str(settings.model)]
    if settings.mmproj is not None:
        argv += ["--mmproj", str(settings.mmproj)]
    argv += [
        "-c", str(settings.ctx * settings.parallel),
        "-np", str(settings.parallel),
        "-ctk", settings.kv_type,
        "-ctv", settings.kv_type,
        "-fa", "on" if settings.flash_attention else "off",
        "-b", str(settings.ubatch),
        "-ub", str(settings.ubatch),
        "-ngl", str(settings.gpu_layers),
    ]  # fmt: skip
    if settings.builtin_template:
        argv += ["--chat-template", "gemma"]
    argv += ["-a", settings.model.stem, "--host", settings.host, "--port", str(settings.port)]
    return argv


def shell_line(argv: Sequence[str]) -> str:
    """``argv`` as one line a POSIX shell runs as it is (paths with spaces quoted)."""
    return shlex.join(argv)


def has_chat_template(metadata: object) -> bool:
    """Whether a GGUF's metadata carries ``tokenizer.chat_template``."""
    value = metadata.get("tokenizer.chat_template") if isinstance(metadata, dict) else None
    return isinstance(value, str) and bool(value.strip())


# --------------------------------------------------------------------------- the program


def find_program() -> list[str]:
    """How to run llama-server here: ``llama-server`` on ``PATH``, else the xllamacpp
    wheel through :mod:`gemmatui.core.launch_xllamacpp`.

    Raises:
        LaunchError: Neither is installed; the message says how to get one (exit 1).
    """
    binary = shutil.which("llama-server")
    if binary:
        return [binary]
    import importlib.util

    if importlib.util.find_spec("xllamacpp") is not None:
        return [sys.executable, "-m", "gemmatui.core.launch_xllamacpp"]
    raise LaunchError(INSTALL_HINT)


def program_name(program: Sequence[str]) -> str:
    """``llama-server (/usr/local/bin/llama-server)`` or ``llama-server (xllamacpp)``."""
    if program and program[-1] == "gemmatui.core.launch_xllamacpp":
        return "llama-server (xllamacpp)"
    return f"llama-server ({program[0]})"


def free_port(host: str, port: int) -> int:
    """``port`` if it can be listened on at ``host``; a free one when ``port`` is 0.

    Raises:
        PortInUse: The port is taken (exit 1).
        LaunchError: The address cannot be used at all (not this machine's).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                raise PortInUse(
                    f"port {port} on {host} is in use (another server?): stop it, or choose "
                    "another with --port (0 picks a free one)",
                    port,
                ) from None
            raise LaunchError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
        return probe.getsockname()[1]


def log_path(port: int) -> Path:
    """``<user cache dir>/logs/llama-server-<port>.log`` (created on demand)."""
    import platformdirs

    folder = platformdirs.user_cache_path("gemmatui", appauthor=False) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"llama-server-{port}.log"


class EngineProcess:
    """One llama-server in its own process (and session), its output in ``log``.

    Use :meth:`start`, :meth:`wait_ready`, then :meth:`stop` (also run at exit).
    """

    def __init__(self, argv: Sequence[str], log: Path, url: str) -> None:
        self.argv = list(argv)
        self.log = log
        self.url = url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it; stopped again at interpreter exit whatever happens."""
        import atexit

        with open(self.log, "wb") as out:
            try:
                self.process = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as err:
                raise LaunchError(
                    f"cannot run {self.argv[0]}: {err.strerror or err}"
                ) from None
        atexit.register(self.stop)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def returncode(self) -> int | None:
        """Its exit status once it has ended, else ``None``."""
        return None if self.process is None else self.process.poll()

    def wait_ready(self, timeout: float = DEFAULT_LOAD_TIMEOUT) -> None:
        """Poll ``/health`` until it answers 200 (the model is loaded).

        Raises:
            PortInUse: It could not listen (its log says the address is in use).
            LaunchError: It exited while loading (the log's last words say why), or
                did not become ready within ``timeout`` seconds (it is stopped).
        """
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while True:
            code = self.returncode()
            if code is not None:
                raise self._failure(code)
            try:
                with opener.open(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except urllib.error.HTTPError:
                pass  # 503 while loading
            except (urllib.error.URLError, OSError):
                pass  # not listening yet
            if time.monotonic() > deadline:
                self.stop()
                raise LaunchError(
                    f"llama-server did not become ready within {timeout:g} s; its log: {self.log}"
                )
            time.sleep(0.2)

    def _failure(self, code: int) -> LaunchError:
        text = self.read_log()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        lowered = text.lower()
        if "address already in use" in lowered or "couldn't bind" in lowered:
            port = int(self.url.rsplit(":", 1)[1])
            return PortInUse(
                f"llama-server could not listen on port {port} (in use): choose another "
                f"with --port; its log: {self.log}",
                port,
            )
        reason = next(
            (line for line in reversed(lines) if "error" in line.lower() or "failed" in line.lower()),
            lines[-1] if lines else "no output",
        )
        from gemmatui.core.text import sanitize_line

        return LaunchError(
            f"llama-server exited (code {code}) while loading: {sanitize_line(reason, 200)}; "
            f"its log: {self.log}"
        )

    def read_log(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def buffers(self) -> BufferLog:
        """llama.cpp's buffer lines of this load (see :mod:`gemmatui.core.llama_log`)."""
        from gemmatui.core.llama_log import parse_buffer_log

        return parse_buffer_log(self.read_log())

    def wait(self) -> int:
        """Block until it ends; its exit status."""
        assert self.process is not None
        return self.process.wait()

    def stop(self, grace: float = 10.0) -> None:
        """Stop it and anything it started: SIGTERM to its session, SIGKILL after
        ``grace`` seconds. Safe to call more than once."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


# --------------------------------------------------------------------------- plan vs actual


def plan_vs_actual(bd: Breakdown, log: BufferLog) -> list[tuple[str, int, int]]:
    """``(what, planned bytes, allocated bytes)`` for weights, KV, compute and output,
    then the totals. Allocated bytes are llama.cpp's own buffer lines."""
    rows = [
        ("weights", bd.weights, log.weights),
        ("KV cache", bd.kv, log.kv),
        ("compute", bd.compute, log.compute),
        ("output", bd.output, log.output),
    ]
    rows.append(("total", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    return rows


def render_plan_vs_actual(bd: Breakdown, log: BufferLog) -> str:
    """The table ``serve`` prints: MiB planned, MiB allocated, and the plan's error.

    >>> from gemmatui.core.llama_log import parse_buffer_log
    >>> from gemmatui.core.fit import estimate
    >>> from gemmatui.core.catalog import get_variant
    >>> bd = estimate(get_variant("1b"), 4096, cuda=False, margin=0)
    >>> print(render_plan_vs_actual(bd, parse_buffer_log("")))
    llama-server's log has no buffer lines: no allocation to compare with
    """
    if not log:
        return "llama-server's log has no buffer lines: no allocation to compare with"
    mib = 1 << 20
    lines = [f"{'':<10}{'plan':>12}{'actual':>12}{'plan error':>12}"]
    for what, planned, actual in plan_vs_actual(bd, log):
        share = (planned - actual) / actual * 100 if actual else None
        error = "-" if share is None else "0.0 %" if abs(share) < 0.05 else f"{share:+.1f} %"
        lines.append(
            f"{what:<10}{planned / mib:>8.2f} MiB{actual / mib:>8.2f} MiB{error:>12}"
        )
    if log.repack:
        lines.append(
            f"(+ {log.repack / mib:.2f} MiB CPU_REPACK: weight copies the CPU backend re-lays "
            "for its kernels; not part of the plan)"
        )
    devices = ", ".join(d for d in log.devices if not d.endswith("_REPACK"))
    lines.append(f"actual: llama.cpp's buffer lines ({devices})")
    return "\n".join(lines)


def describe(variant: Variant) -> str:
    """``Gemma 3 270M (gguf:gemma3-270m.gguf)`` for messages."""
    return f"{variant.label} ({variant.tag})"
