"""Which settings the running ``ollama serve`` was started with.

The fit depends on environment variables of the *server* process (KV cache type,
flash attention, parallel slots, default context, GPU overhead) and ``pull`` needs its
models directory. When Ollama runs on this machine we read them from that process's
environment; when that is not allowed (the Linux service runs as user ``ollama``) we
fall back to this shell's environment, and failing that to Ollama's defaults. For a
remote server nothing can be read, so Ollama's defaults are assumed.

:func:`read_server_env` returns a :class:`ServerEnv` whose ``source`` says which of
these happened, in words a person can check.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Protocol
from urllib.parse import urlsplit

from gemmatui.core.errors import UsageError
from gemmatui.core.hosts import DEFAULT_PORT, is_local, parse_host

#: The server variables gemmatui cares about.
SERVER_ENV_KEYS: tuple[str, ...] = (
    "OLLAMA_KV_CACHE_TYPE",
    "OLLAMA_FLASH_ATTENTION",
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_GPU_OVERHEAD",
    "OLLAMA_MODELS",
)

REMOTE_SOURCE = "assumed (remote host)"


@dataclass(frozen=True)
class ServerEnv:
    """Server settings and where they were read.

    Attributes:
        values: Only the :data:`SERVER_ENV_KEYS` that are set (blank values dropped).
            Missing keys mean Ollama's defaults apply.
        source: For people, e.g. ``"ollama serve, pid 1234"``,
            ``"this shell's environment (could not read the server's: permission denied)"``
            or ``"assumed (remote host)"``.
        pid: The server process read, if any.
    """

    values: dict[str, str]
    source: str
    pid: int | None = None


class ServerProcess(Protocol):
    """What :func:`read_server_env` needs to know about a process.

    ``environ()`` raises :class:`PermissionError` when the process may not be read
    and :class:`ProcessLookupError` when it has exited.
    """

    @property
    def pid(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def cmdline(self) -> tuple[str, ...]: ...

    def environ(self) -> Mapping[str, str]: ...


def read_server_env(
    host_url: str,
    *,
    processes: Callable[[], Iterable[ServerProcess]] | None = None,
    env: Mapping[str, str] = os.environ,
) -> ServerEnv:
    """Find the settings the Ollama server at ``host_url`` runs with.

    Args:
        host_url: The server's base URL (as :func:`gemmatui.core.hosts.parse_host` gives).
        processes: Lists the machine's processes; defaults to a scan of ``/proc`` on
            Linux (fast: only processes named ``ollama`` are read further) and psutil
            elsewhere. Tests pass their own.
        env: This shell's environment, the fallback.

    Returns:
        The settings and their source. Never raises.
    """
    if not is_local(host_url):
        return ServerEnv({}, REMOTE_SOURCE)
    port = _port(host_url)
    listing = processes or (_proc_processes if _PROC.joinpath("self", "comm").exists() else _psutil_processes)
    denied = False
    try:
        candidates = [p for p in listing() if _is_ollama_serve(p)]
    except OSError:
        candidates = []
    for process in candidates:
        try:
            server_env = dict(process.environ())
        except PermissionError:
            denied = True
            continue
        except (ProcessLookupError, OSError):
            continue
        if _server_port(server_env) != port:
            continue  # another server on this machine
        # No parentheses: a setting's source reads "OLLAMA_KV_CACHE_TYPE of <this>",
        # and that often stands in parentheses itself.
        return ServerEnv(_pick(server_env), f"ollama serve, pid {process.pid}", process.pid)
    why = (
        "could not read the server's: permission denied"
        if denied
        else f"no `ollama serve` process for port {port} found"
    )
    own = _pick(env)
    if own:
        return ServerEnv(own, f"this shell's environment ({why})")
    return ServerEnv({}, f"Ollama defaults ({why})")


def models_dir(server: ServerEnv, *, home: Path | None = None) -> Path:
    """Where the local server keeps its models.

    ``OLLAMA_MODELS`` from the server's settings, else ``~/.ollama/models`` if it
    exists, else the Linux service's ``/usr/share/ollama/.ollama/models`` if that
    exists, else ``~/.ollama/models`` (Ollama creates it on the first pull).
    """
    if server.values.get("OLLAMA_MODELS"):
        return Path(server.values["OLLAMA_MODELS"]).expanduser()
    user_dir = (home or Path.home()) / ".ollama" / "models"
    service_dir = Path("/usr/share/ollama/.ollama/models")
    if not user_dir.exists() and os.name == "posix" and service_dir.exists():
        return service_dir
    return user_dir


def _pick(env: Mapping[str, str]) -> dict[str, str]:
    return {key: env[key].strip() for key in SERVER_ENV_KEYS if env.get(key, "").strip()}


def _port(url: str) -> int | None:
    return urlsplit(url).port


def _server_port(server_env: Mapping[str, str]) -> int | None:
    """The port a server with this environment listens on (Ollama's fallback on a bad value)."""
    try:
        return _port(parse_host(server_env.get("OLLAMA_HOST")))
    except UsageError:
        return DEFAULT_PORT


def _is_ollama_serve(process: ServerProcess) -> bool:
    """``ollama serve`` (also ``ollama.exe serve``, any path), not ``ollama run``."""
    args = list(process.cmdline)
    program = PureWindowsPath(args[0]).name if args else process.name  # splits on "/" and backslash
    program = program.lower().removesuffix(".exe")
    return program == "ollama" and "serve" in args[1:]


@dataclass(frozen=True)
class _PsutilProcess:
    pid: int
    name: str
    cmdline: tuple[str, ...]

    def environ(self) -> Mapping[str, str]:
        import psutil

        try:
            return psutil.Process(self.pid).environ()
        except psutil.AccessDenied:
            raise PermissionError(f"pid {self.pid}") from None
        except psutil.NoSuchProcess:
            raise ProcessLookupError(self.pid) from None


def _psutil_processes() -> Iterator[ServerProcess]:
    import psutil

    for proc in psutil.process_iter(["name", "cmdline"]):
        info = proc.info
        yield _PsutilProcess(proc.pid, info.get("name") or "", tuple(info.get("cmdline") or ()))


_PROC = Path("/proc")


@dataclass(frozen=True)
class _ProcProcess:
    pid: int
    name: str
    cmdline: tuple[str, ...]

    def environ(self) -> Mapping[str, str]:
        raw = (_PROC / str(self.pid) / "environ").read_bytes()  # PermissionError if not ours
        pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
        return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def _proc_processes() -> Iterator[ServerProcess]:
    """Linux: read ``/proc`` directly, the command line only of processes named ollama.

    The name of every process is read (hundreds on a desktop), so that loop uses plain
    ``os`` calls: with ``pathlib`` it took twice as long, a part of ``fit``'s start-up.
    """
    for pid in os.listdir(_PROC):
        if not pid.isdigit():
            continue
        try:
            with open(f"{_PROC}/{pid}/comm", "rb") as comm:
                name = comm.read().decode(errors="replace").strip()
            if not name.lower().startswith("ollama"):
                continue
            raw = (_PROC / pid / "cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile, or not ours to read
        args = tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)
        yield _ProcProcess(int(pid), name, args)

