"""Which engine answers at a host: Ollama, llama.cpp's llama-server, or something else.

``--engine auto`` (the default) asks, in order:

1. ``GET /api/version`` — Ollama answers ``{"version": "0.x.y"}``;
2. ``GET /health`` and ``GET /props`` — llama-server answers ``{"status": "ok"}`` (503
   while loading) and its settings;
3. ``GET /v1/models`` — any other OpenAI-compatible server (LM Studio among them) is
   named as such, and used through the llama-server adapter's OpenAI-compatible part.

Anything else is "not Ollama or llama-server", with what it answered. When nothing
listens at Ollama's default address, :func:`probe_defaults` also looks at llama-server's
(``127.0.0.1:8080``) and LM Studio's (``127.0.0.1:1234``) defaults, so a person who runs
one of those is told where it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gemmatui.core.config import ENGINE_CHOICES, parse_engine
from gemmatui.core.errors import OllamaError, OllamaUnavailable, UsageError
from gemmatui.core.text import error_text, sanitize_line

__all__ = [
    "DEFAULT_HOSTS",
    "ENGINE_CHOICES",
    "Detected",
    "EngineKind",
    "NotAnEngine",
    "detect",
    "found_elsewhere",
    "parse_engine",
    "probe_defaults",
]

EngineKind = Literal["ollama", "llama-server", "openai"]

#: Where each engine listens unless told otherwise.
DEFAULT_HOSTS: dict[str, str] = {
    "ollama": "http://127.0.0.1:11434",
    "llama-server": "http://127.0.0.1:8080",
    "LM Studio": "http://127.0.0.1:1234",
}

_ENGINE_NAMES = {"ollama": "Ollama", "llama-server": "llama-server", "openai": "an OpenAI-compatible server"}


class NotAnEngine(OllamaUnavailable):
    """Something answers at the host, but not a server gemmatui speaks to (exit 3)."""


@dataclass(frozen=True)
class Detected:
    """What answered at ``host``: its kind, its version (or build) and a word on it."""

    kind: EngineKind
    host: str
    version: str = ""

    @property
    def name(self) -> str:
        return _ENGINE_NAMES[self.kind]

    def describe(self) -> str:
        """``Ollama 0.32.1 at http://…`` — for status lines."""
        version = f" {self.version}" if self.version else ""
        return f"{self.name}{version} at {self.host}"


async def detect(host: str, *, timeout: float = 3.0) -> Detected:
    """Ask ``host`` what it is.

    Raises:
        OllamaUnavailable: Nothing answers there (exit 3).
        NotAnEngine: Something answers, but it is neither Ollama nor llama-server nor
            OpenAI-compatible; the message quotes what it answered (exit 3).
    """
    import httpx

    from gemmatui.core.hosts import http_options

    options = http_options(host, read_timeout=timeout, connect_timeout=timeout)
    async with httpx.AsyncClient(base_url=host, **options) as client:
        try:
            version = await client.get("/api/version")
        except (httpx.ConnectError, httpx.ConnectTimeout, ConnectionError):
            raise OllamaUnavailable(f"nothing answers at {host}") from None
        except httpx.HTTPError as err:
            raise OllamaUnavailable(f"the server at {host} did not answer: {err}") from None
        data = _json(version)
        if version.status_code == 200 and isinstance(data, dict) and "version" in data:
            return Detected("ollama", host, sanitize_line(str(data["version"]), 40))
        first = _answer(version, "/api/version")
        try:
            health = await client.get("/health")
            props = await client.get("/props")
        except httpx.HTTPError:
            health = props = None
        if health is not None and props is not None:
            health_data = _json(health)
            props_data = _json(props)
            looks_like = (
                isinstance(health_data, dict)
                and ("status" in health_data or "error" in health_data)
                and (isinstance(props_data, dict) and "default_generation_settings" in props_data)
                or health.status_code == 503
            )
            if looks_like:
                build = props_data.get("build_info", "") if isinstance(props_data, dict) else ""
                return Detected("llama-server", host, sanitize_line(str(build), 40))
        try:
            models = await client.get("/v1/models")
        except httpx.HTTPError:
            models = None
        if models is not None and models.status_code in (200, 401):
            data = _json(models)
            if models.status_code == 401 or (isinstance(data, dict) and "data" in data):
                return Detected("openai", host)
    raise NotAnEngine(f"the server at {host} is not Ollama or llama-server (it answered {first})")


async def probe_defaults(skip: str | None = None, *, timeout: float = 1.0) -> list[Detected]:
    """Engines that answer at their default addresses (all asked at once).

    Args:
        skip: A host already tried (left out).
    """

    async def one(host: str) -> Detected | None:
        try:
            return await detect(host, timeout=timeout)
        except (OllamaError, UsageError):
            return None

    import asyncio

    hosts = [h for h in DEFAULT_HOSTS.values() if h != (skip or "").rstrip("/")]
    found = await asyncio.gather(*(one(h) for h in hosts))
    return [f for f in found if f is not None]


def found_elsewhere(found: Sequence[Detected]) -> str:
    """A hint naming what answers elsewhere, for "cannot reach …" (empty if nothing).

    >>> found_elsewhere([Detected("llama-server", "http://127.0.0.1:8080", "b6500")])
    'llama-server b6500 answers at http://127.0.0.1:8080: use --host http://127.0.0.1:8080'
    """
    if not found:
        return ""
    first = found[0]
    return f"{first.describe().replace(' at ', ' answers at ', 1)}: use --host {first.host}"


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _answer(response: Any, path: str) -> str:
    """``404 to /api/version: File Not Found`` — what a server said, in one short line."""
    body = response.text or ""
    text = error_text(body) if body.strip() else "an empty body"
    if len(text) > 80:
        text = text[:79] + "…"
    return f"{response.status_code} to {path}: {text}"
