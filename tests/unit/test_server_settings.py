"""Reading the running server's settings, with its fallbacks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gemmatui.core.server_settings import ServerEnv, models_dir, read_server_env

LOCAL = "http://127.0.0.1:11434"


@dataclass
class FakeProcess:
    pid: int
    name: str
    cmdline: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    error: type[Exception] | None = None

    def environ(self) -> Mapping[str, str]:
        if self.error is not None:
            raise self.error(self.pid)
        return self.env


def listing(*procs: FakeProcess):
    return lambda: list(procs)


SERVER_ENV = {
    "OLLAMA_KV_CACHE_TYPE": "q8_0",
    "OLLAMA_FLASH_ATTENTION": "1",
    "PATH": "/usr/bin",
    "OLLAMA_NUM_PARALLEL": " ",
}


def test_reads_the_serve_process_environment() -> None:
    procs = listing(
        FakeProcess(10, "bash", ("bash",)),
        FakeProcess(
            11,
            "ollama",
            ("/usr/local/bin/ollama", "run", "gemma3"),
            {"OLLAMA_KV_CACHE_TYPE": "f16"},
        ),
        FakeProcess(1234, "ollama", ("/usr/local/bin/ollama", "serve"), SERVER_ENV),
    )
    found = read_server_env(LOCAL, processes=procs, env={"OLLAMA_KV_CACHE_TYPE": "q4_0"})
    assert found == ServerEnv(
        {"OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_FLASH_ATTENTION": "1"},
        "ollama serve, pid 1234",
        1234,
    )


def test_windows_executable_name_is_recognised() -> None:
    procs = listing(
        FakeProcess(
            7, "ollama.exe", ("C:\\Ollama\\ollama.exe", "serve"), {"OLLAMA_NUM_PARALLEL": "2"}
        )
    )
    assert read_server_env(LOCAL, processes=procs, env={}).values == {"OLLAMA_NUM_PARALLEL": "2"}


def test_a_server_on_another_port_is_not_ours() -> None:
    other = FakeProcess(
        5,
        "ollama",
        ("ollama", "serve"),
        {"OLLAMA_HOST": "0.0.0.0:11500", "OLLAMA_CONTEXT_LENGTH": "8192"},
    )
    ours = FakeProcess(6, "ollama", ("ollama", "serve"), {"OLLAMA_CONTEXT_LENGTH": "32768"})
    found = read_server_env(LOCAL, processes=listing(other, ours), env={})
    assert (found.pid, found.values) == (6, {"OLLAMA_CONTEXT_LENGTH": "32768"})
    on_11500 = read_server_env("http://localhost:11500", processes=listing(other, ours), env={})
    assert on_11500.pid == 5


def test_permission_denied_falls_back_to_this_shell() -> None:
    procs = listing(FakeProcess(99, "ollama", ("/usr/bin/ollama", "serve"), error=PermissionError))
    found = read_server_env(
        LOCAL, processes=procs, env={"OLLAMA_KV_CACHE_TYPE": "q8_0", "HOME": "/root"}
    )
    assert found.values == {"OLLAMA_KV_CACHE_TYPE": "q8_0"}
    assert (
        found.source == "this shell's environment (could not read the server's: permission denied)"
    )
    assert found.pid is None


def test_nothing_anywhere_means_ollama_defaults() -> None:
    procs = listing(FakeProcess(99, "ollama", ("ollama", "serve"), error=ProcessLookupError))
    found = read_server_env(LOCAL, processes=procs, env={})
    assert found == ServerEnv(
        {}, "Ollama defaults (no `ollama serve` process for port 11434 found)"
    )


def test_remote_hosts_are_not_read() -> None:
    def explode():
        raise AssertionError("must not scan processes for a remote host")

    found = read_server_env(
        "http://192.0.2.7:11434", processes=explode, env={"OLLAMA_KV_CACHE_TYPE": "q8_0"}
    )
    assert found == ServerEnv({}, "assumed (remote host)")


def test_real_process_scan_does_not_fail() -> None:
    found = read_server_env(LOCAL)
    assert found.source


def test_models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert models_dir(ServerEnv({"OLLAMA_MODELS": "/data/models"}, "x")) == Path("/data/models")
    (tmp_path / ".ollama" / "models").mkdir(parents=True)
    assert models_dir(ServerEnv({}, "x"), home=tmp_path) == tmp_path / ".ollama" / "models"


@pytest.mark.skipif(not Path("/proc/self/comm").exists(), reason="Linux /proc only")
def test_a_real_ollama_serve_process_is_found_through_proc(tmp_path: Path) -> None:
    """A real process named `ollama` started as `ollama ... serve`: its environment is read."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fake = tmp_path / "ollama"
    fake.symlink_to(sys.executable)  # the kernel names the process after the link
    env = {"OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_KV_CACHE_TYPE": "q8_0", "PATH": "/usr/bin"}
    proc = subprocess.Popen(
        [str(fake), "-c", "import time; time.sleep(30)", "serve"], env=env
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            found = read_server_env(f"http://127.0.0.1:{port}", env={})
            if found.pid == proc.pid or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert found.pid == proc.pid
        assert found.values["OLLAMA_KV_CACHE_TYPE"] == "q8_0"
        assert found.source == f"ollama serve, pid {proc.pid}"
    finally:
        proc.kill()
        proc.wait()
