"""Start llama.cpp's server (from the xllamacpp wheel of the test extra) on the real
Gemma 3 270M, in its own process, the way Ollama starts it (``-c ctx×np -np np``, no
unified KV cache), and read what llama.cpp allocated.

A ``xllamacpp.Server`` serves until its process ends (destroying it can hang), so each
server lives in a child process: :func:`load_buffers` loads and exits at once;
:class:`RunningServer` keeps serving until stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gemmatui.core.llama_log import BufferLog, parse_buffer_log

# The child: settings as JSON in argv[1]; prints the address, then serves or exits.
_CHILD = r"""
import json, os, sys, time
import xllamacpp as x
cfg = json.loads(sys.argv[1])
p = x.CommonParams()
p.model.path = cfg["model"]
p.n_ctx = cfg["ctx"] * cfg["np"]
p.n_parallel = cfg["np"]
p.n_batch = p.n_ubatch = cfg["ubatch"]
p.kv_unified = False
p.swa_full = False
kv = getattr(x.ggml_type, "GGML_TYPE_" + cfg["kv"].upper())
p.cache_type_k = p.cache_type_v = kv
fa = x.llama_flash_attn_type
p.flash_attn_type = fa.LLAMA_FLASH_ATTN_TYPE_ENABLED if cfg["fa"] else fa.LLAMA_FLASH_ATTN_TYPE_DISABLED
p.n_gpu_layers = 0
p.hostnames = ["127.0.0.1"]
p.port = 0
p.cpuparams.n_threads = cfg.get("threads", 2)
p.warmup = False
p.chat_template = "gemma"
p.use_jinja = False
p.model_alias = {"gemma3-270m"}
p.endpoint_props = True
p.endpoint_slots = True
p.verbosity = 10
p.n_predict = cfg.get("n_predict", -1)
server = x.Server(p)
print("LISTENING " + server.listening_address, flush=True)
if cfg.get("serve"):
    while True:
        time.sleep(3600)
os._exit(0)
"""


@dataclass(frozen=True)
class Setting:
    ctx: int
    np: int = 1
    ubatch: int = 512
    kv: str = "f16"
    fa: bool = True

    def label(self) -> str:
        return f"ctx{self.ctx // 1024}k-np{self.np}-u{self.ubatch}-{self.kv}-fa{'on' if self.fa else 'off'}"


def _config(model: Path, setting: Setting, *, serve: bool, n_predict: int = -1) -> str:
    return json.dumps(
        {
            "n_predict": n_predict,
            "model": str(model),
            "ctx": setting.ctx,
            "np": setting.np,
            "ubatch": setting.ubatch,
            "kv": setting.kv,
            "fa": setting.fa,
            "serve": serve,
        }
    )


def load_buffers(model: Path, setting: Setting, timeout: float = 120) -> BufferLog:
    """Load the model with ``setting`` and return llama.cpp's buffer lines."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, _config(model, setting, serve=False)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0 or "LISTENING" not in done.stdout:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise RuntimeError(f"llama-server did not start ({done.returncode}):\n{tail}")
    return parse_buffer_log(done.stderr)


class RunningServer:
    """A llama-server serving the 270M on 127.0.0.1 (any free port) until :meth:`stop`.

    ``n_predict``: the most tokens a reply that sets no limit gets (-1: until the
    context is full); the base model rarely stops by itself.
    """

    def __init__(
        self,
        model: Path,
        setting: Setting,
        log_path: Path,
        timeout: float = 120,
        *,
        n_predict: int = -1,
    ) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, _config(model, setting, serve=True, n_predict=n_predict)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        line = ""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("LISTENING ") or not line:
                break
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"llama-server did not start; see {log_path}")
        self.url = line.split(" ", 1)[1].strip()

    def buffers(self) -> BufferLog:
        self._log.flush()
        return parse_buffer_log(self.log_path.read_text(errors="replace"))

    def kill(self) -> None:
        """Kill the server as a crash would (SIGKILL), leaving no chance to clean up."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
