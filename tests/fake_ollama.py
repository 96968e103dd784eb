"""A protocol-faithful fake Ollama server, for tests and for driving gemmatui by hand.

Test code only: the product never imports it. It speaks the REST API subset described
in ``/work/shared/reference/ollama-api.md`` with the same shapes as the real server:
HTTP/1.1 with keep-alive, chunked ``application/x-ndjson`` streams, ``omitempty``
fields left out, durations in nanoseconds, Go-style plain-text 404/405 pages.

In tests::

    from tests.fake_ollama import FakeOllama

    with FakeOllama(installed=["4b"], reply="Hello there.") as fake:
        ...  # point the client at fake.url (or OLLAMA_HOST=fake.url for a subprocess)
        fake.add_fault("/api/chat", "error_line", after=2)   # next chat breaks mid-stream
        assert fake.chat_requests()[-1]["options"]["num_ctx"] == 8192
        assert fake.wait_for_disconnect(timeout=2)

By hand (prints the URL on the first line, then serves until Ctrl-C)::

    python -m tests.fake_ollama --port 0 --installed 4b,27b --rate 30 --tokens 200
    OLLAMA_HOST=http://127.0.0.1:PORT gemmatui ask "why is the sky blue?"

Fault kinds (``FakeOllama.add_fault(endpoint, kind, ...)``; each applies to the next
``count`` requests to that endpoint):

=====================  ==============================================================
kind                   effect
=====================  ==============================================================
``http_error``         answer ``status`` with ``{"error": message}`` before streaming
                       (a model that fails to load: 500)
``error_line``         after ``after`` items, an in-band ``{"error": message}`` line,
                       then the stream ends (status stays 200)
``drop``               after ``after`` items, close the socket mid-stream
``stall``              after ``after`` items, send nothing for ``seconds``
                       (``after=0``: not even the response headers)
``malformed``          after ``after`` items, a line that is not JSON
``slow_first_token``   wait ``seconds`` before the first byte, then answer normally
=====================  ==============================================================

"Items" are reply tokens for ``/api/chat`` and progress lines after
``pulling manifest`` for ``/api/pull``. Pulls are resumable: bytes "downloaded" before
a drop or an error are kept per blob digest, and a new pull continues from them. A tag
that is not in the fake registry fails like the real one
(``pulling manifest`` then ``{"error":"pull model manifest: file does not exist"}``).
Use :func:`closed_port_url` for "connection refused", and :class:`FakeLlamaServer` for
a server that is not Ollama (llama.cpp's llama-server: 404 with an error object to every
``/api/*`` path).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

FAULT_KINDS = ("http_error", "error_line", "drop", "stall", "malformed", "slow_first_token")
DEFAULT_REPLY = (
    "The sky looks blue because air molecules scatter short blue wavelengths of "
    "sunlight much more strongly than long red ones."
)
DEFAULT_ERRORS = {
    "/api/chat": "an error was encountered while running the model: CUDA error: out of memory",
    "/api/pull": "write /usr/share/ollama/.ollama/models/blobs/sha256-partial: "
    "no space left on device",
}
LOAD_ERROR = "llama runner process has terminated: cudaMalloc failed: out of memory"


# --------------------------------------------------------------------------- model data


@dataclass(frozen=True)
class FakeModel:
    """What the fake knows about one tag: blob size and Gemma 3 architecture keys."""

    tag: str
    parameter_size: str
    blob_bytes: int
    block_count: int
    embedding_length: int
    feed_forward_length: int
    head_count: int
    head_count_kv: int
    key_length: int
    sliding_window: int
    context_length: int
    vocab_size: int
    vision: bool

    def layers(self) -> list[tuple[str, int]]:
        """``(digest, size)`` of each blob in pull order.

        The order is model, template, license, params, config, as Ollama pulls them.
        """
        parts = [
            ("model", self.blob_bytes),
            ("template", 358),
            ("license", 8432),
            ("params", 77),
            ("config", 490),
        ]
        return [("sha256:" + _sha(f"{self.tag}/{name}"), size) for name, size in parts]

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.layers())

    @property
    def manifest_digest(self) -> str:
        return _sha(f"manifest/{self.tag}")

    @property
    def capabilities(self) -> list[str]:
        return ["completion", "vision"] if self.vision else ["completion"]

    def details(self, *, extended: bool) -> dict[str, Any]:
        row: dict[str, Any] = {
            "parent_model": "",
            "format": "gguf",
            "family": "gemma3",
            "families": ["gemma3"],
            "parameter_size": self.parameter_size,
            "quantization_level": "Q4_0",
        }
        if extended:
            row["context_length"] = self.context_length
            row["embedding_length"] = self.embedding_length
        return row

    def model_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "general.architecture": "gemma3",
            "general.file_type": 2,
            "general.parameter_count": int(
                float(self.parameter_size[:-1])
                * (1e9 if self.parameter_size.endswith("B") else 1e6)
            ),
            "general.quantization_version": 2,
            "gemma3.attention.head_count": self.head_count,
            "gemma3.attention.head_count_kv": self.head_count_kv,
            "gemma3.attention.key_length": self.key_length,
            "gemma3.attention.value_length": self.key_length,
            "gemma3.attention.sliding_window": self.sliding_window,
            "gemma3.block_count": self.block_count,
            "gemma3.context_length": self.context_length,
            "gemma3.embedding_length": self.embedding_length,
            "gemma3.feed_forward_length": self.feed_forward_length,
            "tokenizer.ggml.model": "llama",
            "tokenizer.ggml.tokens": [],
        }
        if self.vision:
            info.update(
                {
                    "gemma3.mm.tokens_per_image": 256,
                    "gemma3.vision.block_count": 27,
                    "gemma3.vision.embedding_length": 1152,
                    "gemma3.vision.image_size": 896,
                    "gemma3.vision.patch_size": 14,
                }
            )
        return info

    def memory_bytes(self, num_ctx: int) -> int:
        """Plausible runner memory for ``/api/ps``: blob + sliding-window KV cache + compute."""

        def pad(cells: int) -> int:
            return -(-cells // 256) * 256

        global_layers = self.block_count // 6
        cells_global = pad(num_ctx)
        cells_local = min(cells_global, pad(self.sliding_window + 512))
        kv = global_layers * cells_global + (self.block_count - global_layers) * cells_local
        kv *= 2 * self.head_count_kv * self.key_length * 2
        return self.blob_bytes + kv + 200 * 2**20


# Architecture per /work/shared/reference/gemma3-memory.md §1; sizes illustrative (§2).
GEMMA3_QAT: dict[str, FakeModel] = {
    m.tag: m
    for m in (
        FakeModel(
            "gemma3:1b-it-qat",
            "999.89M",
            998_579_896,
            26,
            1152,
            6912,
            4,
            1,
            256,
            512,
            32768,
            262144,
            False,
        ),
        FakeModel(
            "gemma3:4b-it-qat",
            "4.3B",
            4_005_057_003,
            34,
            2560,
            10240,
            8,
            4,
            256,
            1024,
            131072,
            262208,
            True,
        ),
        FakeModel(
            "gemma3:12b-it-qat",
            "12.2B",
            8_901_313_822,
            48,
            3840,
            15360,
            16,
            8,
            256,
            1024,
            131072,
            262208,
            True,
        ),
        FakeModel(
            "gemma3:27b-it-qat",
            "27.4B",
            17_972_806_848,
            62,
            5376,
            21504,
            32,
            16,
            128,
            1024,
            131072,
            262208,
            True,
        ),
    )
}

PARAMETERS = {"stop": ["<end_of_turn>"], "temperature": 1, "top_k": 64, "top_p": 0.95}
TEMPLATE = (
    '{{- range $i, $_ := .Messages }}<start_of_turn>{{ if eq .Role "user" }}user'
    "{{ else }}model{{ end }}\n{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n"
)


def tag_for(name: str) -> str:
    """``"4b"`` → ``"gemma3:4b-it-qat"``; full tags pass through.

    >>> tag_for("27B"), tag_for("llama3:8b")
    ('gemma3:27b-it-qat', 'llama3:8b')
    """
    short = name.strip().lower()
    if re.fullmatch(r"\d+b", short):
        return f"gemma3:{short}-it-qat"
    return name.strip()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _dumps(obj: Any) -> bytes:
    """Compact JSON, as Go's encoder writes it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _rfc3339(moment: datetime) -> str:
    """RFC 3339 with nanoseconds, like Go's ``time.RFC3339Nano``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}123Z"


_GO_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,  # U+00B5 micro sign
    "μs": 10**3,  # U+03BC Greek mu
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_GO_TYPE_NAMES = {bool: "bool", list: "[]interface {}", dict: "map[string]interface {}"}
# One step of a duration: [0-9]*(.[0-9]*)? then the unit, which runs to the next digit or dot.
_GO_DURATION_STEP = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


def _go_quote(text: str) -> str:
    """Quote ``text`` as Go's ``time`` package does in its error messages."""
    out = ['"']
    for char in text:
        if char < " " or char >= "\x80":
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        else:
            out.append("\\" + char if char in '"\\' else char)
    out.append('"')
    return "".join(out)


def go_parse_duration(text: str) -> int:
    """Nanoseconds from a Go duration string, a port of Go's ``time.ParseDuration``.

    Raises:
        ValueError: With Go's own message, e.g. ``time: missing unit in duration "300"``.

    >>> go_parse_duration("1h30m"), go_parse_duration("-1.5s"), go_parse_duration("0")
    (5400000000000, -1500000000, 0)
    """
    invalid = ValueError(f"time: invalid duration {_go_quote(text)}")
    rest = text
    negative = rest[:1] == "-"
    if rest[:1] in ("-", "+"):
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        step = _GO_DURATION_STEP.match(rest)
        assert step is not None  # every part of the pattern may be empty
        whole, fraction, unit = step.groups()
        rest = rest[step.end() :]
        if not whole and not fraction:  # no digits at all (".s", "x", "-.s")
            raise invalid
        if not unit:
            raise ValueError(f"time: missing unit in duration {_go_quote(text)}")
        if unit not in _GO_UNITS:
            raise ValueError(
                f"time: unknown unit {_go_quote(unit)} in duration {_go_quote(text)}"
            )
        scale = _GO_UNITS[unit]
        value = int(whole or 0) * scale
        if fraction:
            value += int(int(fraction) * scale / 10 ** len(fraction))
        total += value
        if total > 2**63:
            raise invalid
    if not negative and total > 2**63 - 1:
        raise invalid
    return -total if negative else total


def _parse_keep_alive(value: Any) -> float | None:
    """Seconds from ``keep_alive`` as Ollama reads it; ``None`` = for ever (negative).

    A number is seconds; a string must be a Go duration (a bare ``"300"`` is refused,
    as by Ollama); no value means Ollama's default, 5 minutes.

    Raises:
        ValueError: With the message Ollama answers 400 with.
    """
    if value is None:
        return 300.0
    if isinstance(value, str):
        seconds = go_parse_duration(value) / 1e9
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValueError(f"Unsupported type: '{_GO_TYPE_NAMES[type(value)]}'")
    return None if seconds < 0 else seconds


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- state


@dataclass
class Fault:
    """One scripted misbehaviour; see the module docstring for the kinds."""

    endpoint: str
    kind: str
    after: int = 0
    seconds: float = 30.0
    status: int = 500
    message: str = ""
    count: int = 1  # requests it applies to; 0 = every later request


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the fake received it.

    ``json`` is the parsed body (``None`` when there was none or it was not JSON).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    at: float  # time.monotonic()


@dataclass
class _Loaded:
    num_ctx: int
    expires_at: datetime | None  # None: kept for ever
    busy: int = 0


class _ClientGone(Exception):
    """The client closed the connection (or the fake is stopping)."""


@dataclass
class FakeConfig:
    """How the fake behaves; :attr:`FakeOllama.config` may be changed while it runs.

    The fields are those of :class:`FakeOllama`'s arguments, plus ``registry``: the tags
    a pull can find (default: the four Gemma 3 QAT tags); delete one to make its pull
    fail like an unknown model.
    """

    reply: str = DEFAULT_REPLY
    tokens: int | None = None
    token_rate: float = 0.0
    load_seconds: float = 0.0
    default_ctx: int = 4096
    vram_fraction: float = 1.0
    pull_steps: int = 20
    pull_step_seconds: float = 0.0
    version: str = "0.32.15"
    verbose: bool = False
    registry: dict[str, FakeModel] = field(default_factory=lambda: dict(GEMMA3_QAT))


class FakeOllama:
    """A fake Ollama server on ``127.0.0.1`` with an ephemeral port.

    Args:
        installed: Tags (or ``"1b"``/``"4b"``/``"12b"``/``"27b"``) that are installed
            at start. They must be in the registry.
        reply: The assistant's reply text; it is split into word tokens.
        tokens: Send exactly this many tokens (cycling through the reply's words).
        token_rate: Tokens per second (0: as fast as possible).
        load_seconds: Extra wait before the first token when a chat has to load the
            model (not loaded yet, or loaded with another ``num_ctx``).
        default_ctx: The context a chat gets when it does not send ``num_ctx``.
        vram_fraction: Share of a loaded model's memory reported in ``size_vram``.
        pull_steps: Progress lines for the big model blob of a pull.
        pull_step_seconds: Pause between those progress lines.
        version: What ``/api/version`` answers.
        port: 0 for an ephemeral port.
        verbose: Log each request to stderr.
    """

    def __init__(
        self,
        *,
        installed: Iterable[str] = (),
        reply: str = DEFAULT_REPLY,
        tokens: int | None = None,
        token_rate: float = 0.0,
        load_seconds: float = 0.0,
        default_ctx: int = 4096,
        vram_fraction: float = 1.0,
        pull_steps: int = 20,
        pull_step_seconds: float = 0.0,
        version: str = "0.32.15",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.config = FakeConfig(
            reply=reply,
            tokens=tokens,
            token_rate=token_rate,
            load_seconds=load_seconds,
            default_ctx=default_ctx,
            vram_fraction=vram_fraction,
            pull_steps=pull_steps,
            pull_step_seconds=pull_step_seconds,
            version=version,
            verbose=verbose,
        )
        self._port = port
        self._lock = threading.Lock()
        self._disconnected = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._disconnects: list[str] = []
        self._installed: dict[str, datetime] = {}
        self._blob_done: dict[str, int] = {}
        self._loaded: dict[str, _Loaded] = {}
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.set_installed(installed)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeOllama:
        """Start serving in a background thread (once per instance); returns ``self``."""
        fake = self

        class Handler(_Handler):
            owner = fake

        server = _Server(("127.0.0.1", self._port), Handler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (idempotent)."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        if self._server is None:
            raise RuntimeError("FakeOllama is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (use it as ``OLLAMA_HOST``)."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ scripting

    def set_installed(self, names: Iterable[str]) -> None:
        """Replace the installed models (tags or ``"4b"``-style keys from the registry)."""
        with self._lock:
            self._installed.clear()
            for name in names:
                model = self.config.registry[tag_for(name)]
                self._installed[model.tag] = _now()
                for digest, size in model.layers():
                    self._blob_done[digest] = size

    def installed(self) -> list[str]:
        """Tags installed right now (pulls add to it, deletes remove)."""
        with self._lock:
            return list(self._installed)

    def add_fault(
        self,
        endpoint: str,
        kind: str,
        *,
        after: int = 0,
        seconds: float = 30.0,
        status: int = 500,
        message: str = "",
        count: int = 1,
    ) -> Fault:
        """Script a fault for the next ``count`` requests to ``endpoint`` (e.g. ``"/api/chat"``).

        ``message`` defaults to a realistic one for the endpoint (out of memory for a
        chat, no space left on device for a pull, a runner crash for ``http_error``).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if not message:
            message = (
                LOAD_ERROR
                if kind == "http_error"
                else DEFAULT_ERRORS.get(endpoint, "internal error")
            )
        fault = Fault(
            endpoint,
            kind,
            after=after,
            seconds=seconds,
            status=status,
            message=message,
            count=count,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Drop every fault not yet used."""
        with self._lock:
            self._faults.clear()

    def partial_bytes(self, tag: str) -> int:
        """Bytes of ``tag``'s blobs "downloaded" so far (what a new pull resumes from)."""
        model = self.config.registry[tag_for(tag)]
        with self._lock:
            return sum(self._blob_done.get(digest, 0) for digest, _ in model.layers())

    # ------------------------------------------------------------------ inspection

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def bodies(self, path: str) -> list[Any]:
        """Parsed JSON bodies of the requests to ``path``."""
        return [r.json for r in self.requests if r.path == path]

    def chat_requests(self) -> list[dict[str, Any]]:
        """Parsed bodies of every ``POST /api/chat``."""
        return self.bodies("/api/chat")

    def received_images(self) -> list[bytes]:
        """The images of every ``POST /api/chat`` so far, base64-decoded, in order
        (what a vision model would have read); ones that were not base64 are left out."""
        found: list[bytes] = []
        for body in self.chat_requests():
            for message in (body or {}).get("messages") or ():
                for image in (message.get("images") or ()) if isinstance(message, dict) else ():
                    try:
                        found.append(base64.b64decode(image, validate=True))
                    except (ValueError, TypeError):
                        pass
        return found

    @property
    def disconnects(self) -> list[str]:
        """Paths of the requests whose client went away before the answer ended."""
        with self._lock:
            return list(self._disconnects)

    def wait_for_disconnect(self, timeout: float = 2.0, count: int = 1) -> bool:
        """Block until ``count`` client disconnects were seen; ``False`` on timeout."""
        with self._disconnected:
            return self._disconnected.wait_for(lambda: len(self._disconnects) >= count, timeout)

    def loaded(self) -> dict[str, int]:
        """Loaded models and their ``num_ctx`` (what ``/api/ps`` reports)."""
        with self._lock:
            self._expire()
            return {tag: state.num_ctx for tag, state in self._loaded.items()}

    # ------------------------------------------------------------------ internals for the handler

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.endpoint == endpoint:
                    if fault.count == 1:
                        self._faults.remove(fault)
                    elif fault.count > 1:
                        fault.count -= 1
                    return fault
        return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _note_disconnect(self, path: str) -> None:
        with self._disconnected:
            self._disconnects.append(path)
            self._disconnected.notify_all()

    def _expire(self) -> None:
        now = _now()
        for tag in [
            t
            for t, s in self._loaded.items()
            if not s.busy and s.expires_at and s.expires_at <= now
        ]:
            del self._loaded[tag]

    def _tokens(self, limit: int | None) -> list[str]:
        words = re.findall(r"\s*\S+", self.config.reply) or [""]
        count = self.config.tokens if self.config.tokens is not None else len(words)
        if limit is not None and limit >= 0:
            count = min(count, limit)
        return [words[i % len(words)] for i in range(count)]


# --------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client resets an idle keep-alive connection."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Routes one connection's requests to the fake's endpoints."""

    owner: FakeOllama
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "FakeOllama/1"

    ROUTES: ClassVar[dict[str, tuple[str, ...]]] = {
        "/": ("GET", "HEAD"),
        "/api/version": ("GET", "HEAD"),
        "/api/tags": ("GET", "HEAD"),
        "/api/ps": ("GET",),
        "/api/show": ("POST",),
        "/api/pull": ("POST",),
        "/api/chat": ("POST",),
        "/api/delete": ("DELETE",),
    }

    def setup(self) -> None:
        super().setup()
        with self.owner._lock:
            self.owner._connections.add(self.connection)

    def finish(self) -> None:
        with self.owner._lock:
            self.owner._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        if self.owner.config.verbose:
            sys.stderr.write(f"fake-ollama: {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    # ------------------------------------------------------------------ plumbing

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        self.owner._record(
            RecordedRequest(
                self.command, path, dict(self.headers.items()), body, parsed, time.monotonic()
            )
        )
        methods = self.ROUTES.get(path)
        if methods is None:
            self._send_text(404, "404 page not found")
            return
        if self.command not in methods:
            self._send_text(405, "405 method not allowed")
            return
        handler = getattr(self, "_api_" + (path.strip("/").replace("api/", "") or "root"))
        try:
            handler(body)
        except (_ClientGone, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            if not self.owner._stopping.is_set():
                self.owner._note_disconnect(path)

    def _send_bytes(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_text(self, status: int, text: str) -> None:
        self._send_bytes(status, "text/plain", text.encode())

    def _send_json(self, status: int, obj: Any) -> None:
        self._send_bytes(status, "application/json; charset=utf-8", _dumps(obj))

    def _send_error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": message})

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _line(self, obj: Any) -> None:
        self._chunk(_dumps(obj) + b"\n")

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _drop(self) -> None:
        """Close the socket without ending the chunked body (a crash or a cut cable)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _wait(self, seconds: float) -> None:
        """Sleep, noticing at once if the client hangs up or the fake stops."""
        deadline = time.monotonic() + seconds
        while True:
            if self.owner._stopping.is_set():
                raise _ClientGone
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            readable, _, _ = select.select([self.connection], [], [], min(remaining, 0.02))
            if readable:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    raise _ClientGone from None
                if not data:
                    raise _ClientGone

    def _json_body(self, body: bytes) -> dict[str, Any] | None:
        """Decode a request body like Ollama; answers 400 and returns ``None`` if bad."""
        if not body:
            self._send_error(400, "missing request body")
            return None
        try:
            data = json.loads(body)
        except ValueError as err:
            self._send_error(400, f"invalid character in request body: {err}")
            return None
        if not isinstance(data, dict):
            self._send_error(400, "json: cannot unmarshal into Go value of type api.Request")
            return None
        return data

    def _model_name(self, data: dict[str, Any]) -> str:
        return str(data.get("model") or data.get("name") or "")

    # ------------------------------------------------------------------ endpoints

    def _api_root(self, body: bytes) -> None:
        self._send_text(200, "Ollama is running")

    def _api_version(self, body: bytes) -> None:
        self._send_json(200, {"version": self.owner.config.version})

    def _api_tags(self, body: bytes) -> None:
        owner = self.owner
        with owner._lock:
            installed = sorted(owner._installed.items(), key=lambda item: item[1], reverse=True)
        rows = []
        for tag, modified in installed:
            model = owner.config.registry[tag]
            rows.append(
                {
                    "name": tag,
                    "model": tag,
                    "modified_at": _rfc3339(modified),
                    "size": model.total_bytes,
                    "digest": model.manifest_digest,
                    "details": model.details(extended=True),
                    "capabilities": model.capabilities,
                }
            )
        self._send_json(200, {"models": rows})

    def _api_ps(self, body: bytes) -> None:
        owner = self.owner
        far = _now() + timedelta(days=365 * 292)
        with owner._lock:
            owner._expire()
            loaded = sorted(
                owner._loaded.items(), key=lambda item: item[1].expires_at or far, reverse=True
            )
        rows = []
        for tag, state in loaded:
            model = owner.config.registry[tag]
            size = model.memory_bytes(state.num_ctx)
            rows.append(
                {
                    "name": tag,
                    "model": tag,
                    "size": size,
                    "digest": model.manifest_digest,
                    "details": model.details(extended=False),
                    "expires_at": _rfc3339(state.expires_at or far),
                    "size_vram": int(size * owner.config.vram_fraction),
                    "context_length": state.num_ctx,
                }
            )
        self._send_json(200, {"models": rows})

    def _installed_model(self, name: str) -> FakeModel | None:
        """The installed model called ``name``, or answer 400/404 and return ``None``."""
        if not name:
            self._send_error(400, "model is required")
            return None
        with self.owner._lock:
            installed = name in self.owner._installed
        if not installed:
            self._send_error(404, f"model '{name}' not found")
            return None
        return self.owner.config.registry[name]

    def _api_show(self, body: bytes) -> None:
        data = self._json_body(body)
        if data is None:
            return
        name = self._model_name(data)
        model = self._installed_model(name)
        if model is None:
            return
        with self.owner._lock:
            modified = self.owner._installed[name]
        parameters = []
        for key, value in PARAMETERS.items():
            for item in value if isinstance(value, list) else [value]:
                parameters.append(f"{key:<30} {json.dumps(item)}")
        self._send_json(
            200,
            {
                "license": "Gemma Terms of Use\n\nLast modified: March 24, 2025 ...",
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {name}\n',
                "parameters": "\n".join(parameters),
                "template": TEMPLATE,
                "details": model.details(extended=False),
                "model_info": model.model_info(),
                "tensors": [
                    {
                        "name": "token_embd.weight",
                        "type": "F16",
                        "shape": [model.embedding_length, model.vocab_size],
                    }
                ],
                "capabilities": model.capabilities,
                "modified_at": _rfc3339(modified),
            },
        )

    def _api_delete(self, body: bytes) -> None:
        data = self._json_body(body)
        if data is None:
            return
        name = self._model_name(data)
        model = self._installed_model(name)
        if model is None:
            return
        with self.owner._lock:
            self.owner._installed.pop(name, None)
            self.owner._loaded.pop(name, None)
            for digest, _ in model.layers():
                self.owner._blob_done.pop(digest, None)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _api_pull(self, body: bytes) -> None:
        owner = self.owner
        data = self._json_body(body)
        if data is None:
            return
        name = self._model_name(data)
        if not name:
            self._send_error(400, "model is required")
            return
        streaming = data.get("stream", True) is not False
        fault = owner._take_fault("/api/pull")
        if fault and fault.kind == "http_error":
            self._send_error(fault.status, fault.message)
            return
        if fault and (
            fault.kind == "slow_first_token" or (fault.kind == "stall" and fault.after == 0)
        ):
            self._wait(fault.seconds)  # no byte at all, not even the headers
            fault = None
        lines = self._pull_lines(owner.config.registry.get(name))
        if not streaming:
            last: dict[str, Any] = {}
            for item in lines:
                last = item
                if "error" in item:
                    self._send_error(500, item["error"])
                    return
            self._send_json(200, last)
            return
        self._start_stream()
        sent = -1  # the manifest line does not count
        for item in lines:
            if fault and sent == fault.after:
                if fault.kind == "error_line":
                    self._line({"error": fault.message})
                    self._end_stream()
                    return
                if fault.kind == "drop":
                    self._drop()
                    return
                if fault.kind == "malformed":
                    self._chunk(b'{"status":"pulling\n')
                    self._end_stream()
                    return
                if fault.kind == "stall":
                    self._wait(fault.seconds)
            self._line(item)
            sent += 1
            if "error" in item:
                break
        self._end_stream()

    def _pull_lines(self, model: FakeModel | None) -> Iterator[dict[str, Any]]:
        """The progress lines of a pull, advancing the resumable download state as they go."""
        owner = self.owner
        yield {"status": "pulling manifest"}
        if model is None:
            yield {"error": "pull model manifest: file does not exist"}
            return
        for digest, size in model.layers():
            status = f"pulling {digest[7:19]}"
            with owner._lock:
                done = min(owner._blob_done.get(digest, 0), size)
            if done >= size:
                yield {"status": status, "digest": digest, "total": size, "completed": size}
                continue
            first: dict[str, Any] = {"status": status, "digest": digest, "total": size}
            if done:
                first["completed"] = done
            yield first
            step = max(1, -(-size // max(1, owner.config.pull_steps)))
            while done < size:
                if owner.config.pull_step_seconds:
                    self._wait(owner.config.pull_step_seconds)
                done = min(size, done + step)
                with owner._lock:
                    owner._blob_done[digest] = done
                yield {"status": status, "digest": digest, "total": size, "completed": done}
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        with owner._lock:
            owner._installed[model.tag] = _now()
        yield {"status": "success"}

    def _api_chat(self, body: bytes) -> None:
        owner = self.owner
        data = self._json_body(body)
        if data is None:
            return
        name = self._model_name(data)
        model = self._installed_model(name)
        if model is None:
            return
        options = data.get("options") or {}
        num_ctx = options.get("num_ctx", owner.config.default_ctx)
        if isinstance(num_ctx, bool) or not isinstance(num_ctx, int):
            self._send_error(400, f"invalid int value [num_ctx]: {num_ctx!r}")
            return
        try:
            keep_alive = _parse_keep_alive(data.get("keep_alive"))
        except ValueError as err:
            self._send_error(400, str(err))
            return
        num_ctx = max(2048 if model.vision else 1, min(num_ctx, model.context_length))
        messages = data.get("messages") or []
        if not self._images_ok(name, model, messages):
            return
        fault = owner._take_fault("/api/chat")
        if fault and fault.kind == "http_error":
            self._send_error(fault.status, fault.message)
            return
        if fault and (
            fault.kind == "slow_first_token" or (fault.kind == "stall" and fault.after == 0)
        ):
            self._wait(fault.seconds)  # no byte at all, not even the headers
            fault = None

        started = time.monotonic()
        with owner._lock:
            owner._expire()
            state = owner._loaded.get(name)
            cold = state is None or state.num_ctx != num_ctx
            if state is None or cold:  # (re)load with this context
                state = owner._loaded[name] = _Loaded(num_ctx=num_ctx, expires_at=None)
            state.busy += 1
        release = self._releaser(name, state, keep_alive)
        try:
            if cold and owner.config.load_seconds:
                self._wait(owner.config.load_seconds)
            load_ns = int((time.monotonic() - started) * 1e9) + (
                100_000_000 if cold else 20_000_000
            )
            if not messages:
                release()
                self._send_json(
                    200, self._final(name, "", "unload" if keep_alive == 0 else "load", {})
                )
                return
            self._chat_stream(data, name, messages, options, fault, load_ns, release)
        finally:
            release()

    def _images_ok(self, name: str, model: FakeModel, messages: list[Any]) -> bool:
        """Check ``images`` like Ollama: each must be base64 (Go decodes ``[]byte`` from
        JSON as base64: 400 otherwise), and a model without the vision capability refuses
        them before loading (``server/routes.go``: 400 "<model> does not support
        vision"). Answers the error and returns ``False``, else ``True``."""
        images = [
            image
            for m in messages
            if isinstance(m, dict)
            for image in (m.get("images") or ())
        ]
        if not images:
            return True
        for image in images:
            try:
                base64.b64decode(image, validate=True)
            except (ValueError, TypeError):
                self._send_error(
                    400, "illegal base64 data at input byte 0"
                )
                return False
        if not model.vision:
            self._send_error(400, f"{name} does not support vision")
            return False
        return True

    def _releaser(self, name: str, state: _Loaded, keep_alive: float | None) -> Callable[[], None]:
        """A callable that ends the request's hold on the model, once: it starts the
        keep-alive timer, or unloads for ``keep_alive`` 0. Called before the last line is
        written, so a client that asks ``/api/ps`` right after the reply sees the result."""
        owner = self.owner
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            with owner._lock:
                state.busy -= 1
                if keep_alive == 0:
                    owner._loaded.pop(name, None)
                else:
                    state.expires_at = (
                        None if keep_alive is None else _now() + timedelta(seconds=keep_alive)
                    )

        return release

    def _final(
        self, name: str, content: str, reason: str, metrics: dict[str, int]
    ) -> dict[str, Any]:
        final: dict[str, Any] = {
            "model": name,
            "created_at": _rfc3339(_now()),
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": reason,
        }
        final.update({key: value for key, value in metrics.items() if value})
        return final

    def _chat_stream(
        self,
        data: dict[str, Any],
        name: str,
        messages: list[Any],
        options: dict[str, Any],
        fault: Fault | None,
        load_ns: int,
        release: Callable[[], None],
    ) -> None:
        owner = self.owner
        limit = options.get("num_predict")
        tokens = owner._tokens(limit if isinstance(limit, int) else None)
        full = owner._tokens(None)
        reason = "length" if len(tokens) < len(full) else "stop"
        prompt_tokens = sum(
            len(str(m.get("content", "")).split()) + 4 for m in messages if isinstance(m, dict)
        )
        rate = owner.config.token_rate
        eval_started = time.monotonic()

        def metrics() -> dict[str, int]:
            eval_ns = (
                int(len(tokens) / rate * 1e9)
                if rate
                else int((time.monotonic() - eval_started) * 1e9)
            )
            prompt_ns = prompt_tokens * 2_000_000
            return {
                "total_duration": load_ns + prompt_ns + eval_ns,
                "load_duration": load_ns,
                "prompt_eval_count": prompt_tokens,
                "prompt_eval_duration": prompt_ns,
                "eval_count": len(tokens),
                "eval_duration": eval_ns,
            }

        if data.get("stream", True) is False:
            if rate:
                self._wait(len(tokens) / rate)
            release()
            self._send_json(200, self._final(name, "".join(tokens), reason, metrics()))
            return
        self._start_stream()
        for index, token in enumerate([*tokens, None]):
            if fault and index == fault.after:
                if fault.kind == "error_line":
                    self._line({"error": fault.message})
                    self._end_stream()
                    return
                if fault.kind == "drop":
                    self._drop()
                    return
                if fault.kind == "malformed":
                    self._chunk(b'{"model":"' + name.encode() + b'","message":{"role":\n')
                    self._end_stream()
                    return
                if fault.kind == "stall":
                    self._wait(fault.seconds)
            if token is None:
                break
            if rate and index:
                self._wait(1 / rate)
            self._line(
                {
                    "model": name,
                    "created_at": _rfc3339(_now()),
                    "message": {"role": "assistant", "content": token},
                    "done": False,
                }
            )
        release()
        self._line(self._final(name, "", reason, metrics()))
        self._end_stream()


# --------------------------------------------------------------------------- not Ollama


LLAMA_SERVER_NOT_FOUND = {
    "error": {"message": "File Not Found", "type": "not_found_error", "code": 404}
}


class FakeLlamaServer:
    """A server that is not Ollama: llama.cpp's ``llama-server`` as far as a client of
    Ollama's API can tell (``/work/shared/reference/llama-server.md``).

    ``GET /health`` answers ``{"status": "ok"}``, ``GET /props`` its settings, and every
    other path (every ``/api/*`` one included) 404 with an OpenAI-style error *object*
    ``{"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}}``.
    ``health=False`` makes ``/health`` and ``/props`` 404 too (some other server).
    ``chat=True`` also answers ``GET /v1/models`` and ``POST /v1/chat/completions`` (the
    reply's words as Server-Sent Events, then ``[DONE]``), recording each chat body in
    :attr:`chat_bodies`; ``vision=True`` reports a loaded projector in ``/props``
    ``modalities`` (``--mmproj``), and without it a chat carrying an image part is
    refused as llama-server does (400, "image input is not supported ... mmproj").
    Use it like :class:`FakeOllama`: ``with FakeLlamaServer() as server: server.url``.
    """

    def __init__(
        self,
        *,
        health: bool = True,
        chat: bool = False,
        vision: bool = False,
        reply: str = DEFAULT_REPLY,
    ) -> None:
        self.health = health
        self.chat = chat
        self.vision = vision
        self.reply = reply
        self.paths: list[str] = []
        self.chat_bodies: list[Any] = []
        self._server: ThreadingHTTPServer | None = None
        self._url = ""

    def __enter__(self) -> FakeLlamaServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                owner.paths.append(path)
                if owner.chat and path == "/v1/chat/completions" and self.command == "POST":
                    owner._chat(self, raw)
                    return
                status, body = 404, LLAMA_SERVER_NOT_FOUND
                if owner.chat and path == "/v1/models":
                    status, body = 200, {
                        "object": "list",
                        "data": [
                            {
                                "id": "gemma-3-4b-it-q4_0.gguf",
                                "object": "model",
                                "meta": {"n_ctx_train": 131072, "size": 3_155_051_328},
                            }
                        ],
                    }
                if owner.health and path == "/health":
                    status, body = 200, {"status": "ok"}
                elif owner.health and path == "/props":
                    status, body = 200, {
                        "default_generation_settings": {"n_ctx": 4096},
                        "total_slots": 1,
                        "model_path": "/models/gemma-3-270m-it-Q4_K_M.gguf",
                        "chat_template": "",
                        "modalities": {"vision": owner.vision},
                    }
                data = _dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _chat(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        """Answer one ``POST /v1/chat/completions`` (``chat=True``)."""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.chat_bodies.append(body)
        messages = body.get("messages") if isinstance(body, dict) else None
        has_image = any(
            isinstance(part, dict) and part.get("type") == "image_url"
            for m in messages or ()
            if isinstance(m, dict) and isinstance(m.get("content"), list)
            for part in m["content"]
        )
        if not isinstance(messages, list) or (has_image and not self.vision):
            message = (
                "image input is not supported - hint: if this is unexpected, you may need "
                "to provide the mmproj"
                if isinstance(messages, list)
                else "'messages' is required"
            )
            data = _dumps({"error": {"code": 400, "message": message, "type": "invalid_request_error"}})
            handler.send_response(400)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return
        words = re.findall(r"\s*\S+", self.reply) or [""]
        events = [
            {
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
                "object": "chat.completion.chunk",
            }
            for word in words
        ]
        events.append(
            {
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "object": "chat.completion.chunk",
                "usage": {"prompt_tokens": 12, "completion_tokens": len(words)},
                "timings": {
                    "prompt_n": 12,
                    "prompt_ms": 24.0,
                    "predicted_n": len(words),
                    "predicted_ms": 10.0 * len(words),
                },
            }
        )
        stream = b"".join(b"data: " + _dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Content-Length", str(len(stream)))
        handler.end_headers()
        handler.wfile.write(stream)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (still known once stopped)."""
        if not self._url:
            raise RuntimeError("FakeLlamaServer is not started")
        return self._url


# --------------------------------------------------------------------------- command line


def _parse_fault(text: str) -> tuple[str, str, dict[str, Any]]:
    """``chat:error_line:after=5,message=boom`` → ``("/api/chat", "error_line", {...})``."""
    endpoint, _, rest = text.partition(":")
    kind, _, params = rest.partition(":")
    values: dict[str, Any] = {}
    for pair in filter(None, params.split(",")):
        key, _, value = pair.partition("=")
        values[key] = (
            float(value)
            if key == "seconds"
            else int(value)
            if key in ("after", "status", "count")
            else value
        )
    return f"/api/{endpoint.strip('/').removeprefix('api/')}", kind, values


def main(argv: list[str] | None = None) -> int:
    """Run the fake until Ctrl-C; the first line printed is its URL."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_ollama", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    parser.add_argument(
        "--installed", default="4b", help="comma-separated models installed at start (e.g. 4b,27b)"
    )
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="the assistant's reply text")
    parser.add_argument(
        "--tokens", type=int, help="send this many tokens (repeating the reply's words)"
    )
    parser.add_argument(
        "--rate", type=float, default=40.0, help="tokens per second (0: as fast as possible)"
    )
    parser.add_argument("--load-seconds", type=float, default=1.0, help="simulated model load time")
    parser.add_argument(
        "--vram-fraction", type=float, default=1.0, help="share of memory reported on the GPU"
    )
    parser.add_argument(
        "--pull-seconds", type=float, default=10.0, help="time to 'download' a model blob"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="ENDPOINT:KIND[:k=v,...]",
        help="script a fault, e.g. chat:error_line:after=5 or pull:drop:after=8 "
        f"(kinds: {', '.join(FAULT_KINDS)})",
    )
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)
    fake = FakeOllama(
        installed=[n for n in args.installed.split(",") if n.strip()],
        reply=args.reply,
        tokens=args.tokens,
        token_rate=args.rate,
        load_seconds=args.load_seconds,
        vram_fraction=args.vram_fraction,
        pull_steps=100,
        pull_step_seconds=args.pull_seconds / 100,
        port=args.port,
        verbose=args.verbose,
    )
    for text in args.fault:
        endpoint, kind, values = _parse_fault(text)
        fake.add_fault(endpoint, kind, **values)
    with fake:
        print(fake.url, flush=True)
        print(
            f"fake Ollama serving; try: OLLAMA_HOST={fake.url} gemmatui ask hello  (Ctrl-C stops)",
            file=sys.stderr,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
