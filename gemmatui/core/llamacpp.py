"""Talking to llama.cpp's ``llama-server`` (and the OpenAI-compatible part of LM Studio).

llama-server serves the one model it was started with. What gemmatui uses of it
(measured against the real server, see ``docs/engines.md``):

==============================  ==================================================
``GET /health``                 200 ``{"status": "ok"}``; 503 while loading
``GET /props``                  context per slot (``default_generation_settings.n_ctx``),
                                ``model_path``, ``modalities``, ``total_slots``,
                                ``chat_template``, ``build_info``
``GET /v1/models``              the model's id and ``meta`` (``n_ctx_train``, ``size``,
                                ``n_params``)
``GET /slots``                  each slot's ``n_ctx`` and ``is_processing``
``POST /v1/chat/completions``   the reply as Server-Sent Events; the last chunk carries
                                ``timings`` (``prompt_n``, ``prompt_ms``, ``predicted_n``,
                                ``predicted_ms``) and ``usage``
==============================  ==================================================

The context is fixed when the server starts (``-c``): a request cannot change it, so
``num_ctx`` is only checked against it. Errors become the project's own types, as for
Ollama (:mod:`gemmatui.core.ollama`); server text in them is sanitised.

``httpx`` is imported when the first request is made, so ``fit`` and ``--help`` never
pay for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from gemmatui.core.errors import (
    CannotPull,
    OllamaError,
    OllamaHTTPError,
    OllamaStreamError,
    OllamaTimeout,
    OllamaUnavailable,
    UsageError,
)
from gemmatui.core.hosts import http_options
from gemmatui.core.text import error_text, sanitize_line
from gemmatui.core.types import ChatChunk, ChatStats, InstalledModel, PullProgress, RunningModel

DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 300.0
_QUICK_READ_TIMEOUT = 30.0
_NAME = "llama-server"


@dataclass(frozen=True)
class ServerProps:
    """What ``/props`` (and ``/v1/models``) say about the running server."""

    model: str  # the id requests name (the alias, or the file name)
    model_path: str
    n_ctx: int  # tokens per slot
    n_ctx_train: int | None
    total_slots: int
    vision: bool
    has_template: bool
    build: str
    size_bytes: int | None = None


class LlamaServerClient:
    """An async client for one llama-server (or another OpenAI-compatible server).

    Mirrors :class:`gemmatui.core.ollama.OllamaClient` where the engines overlap
    (``chat``, ``list_models``, ``ps``, ``version``, ``is_running``, ``aclose``), so
    commands and screens use either one through :class:`gemmatui.core.engine.Engine`.

    Args:
        host: Base URL, e.g. ``http://127.0.0.1:8080``.
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for the next byte of an answer.
        api_key: Sent as ``Authorization: Bearer`` (llama-server ``--api-key``, LM Studio).
        kind: ``"llama-server"``, or ``"openai"`` for another OpenAI-compatible server
            (LM Studio among them), which has no ``/props``: its model and context come
            from ``/v1/models`` and, where it answers, LM Studio's ``/api/v1/models``.
        name: The engine's name in messages (default: from ``kind``).
    """

    engine = "llama-server"
    #: llama-server serves the file it was started with; it cannot download models.
    can_pull = False

    def __init__(
        self,
        host: str,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        api_key: str | None = None,
        kind: str = "llama-server",
        name: str | None = None,
    ) -> None:
        self.kind = kind
        self.name = name or (_NAME if kind == "llama-server" else "the OpenAI-compatible server")
        self.host = host.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._api_key = api_key
        self._client: Any = None
        self._props: ServerProps | None = None

    # ------------------------------------------------------------------ lifecycle

    async def _http(self) -> Any:
        if self._client is None:
            import asyncio

            client = await asyncio.to_thread(self._make)
            if self._client is None:
                self._client = client
        return self._client

    def _make(self) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        options = http_options(
            self.host, read_timeout=self.read_timeout, connect_timeout=self.connect_timeout
        )
        return httpx.AsyncClient(base_url=self.host, headers=headers, **options)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> LlamaServerClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ metadata

    async def _get_json(self, path: str) -> Any:
        client = await self._http()
        import httpx

        quick = httpx.Timeout(min(self.read_timeout, _QUICK_READ_TIMEOUT), connect=self.connect_timeout)
        try:
            response = await client.get(path, timeout=quick)
        except Exception as exc:
            raise self._translate(exc) from exc
        if response.status_code >= 400:
            raise OllamaHTTPError(
                response.status_code,
                error_text(response.text) or "no message",
                hint=f"{self.host}{path}",
                engine=self.name,
            )
        try:
            return response.json()
        except ValueError:
            raise OllamaError(f"unexpected answer from {self.name} at {self.host}{path}") from None

    async def is_running(self) -> bool:
        """Whether the server answers ``/health`` with 200 (loaded and ready); never raises."""
        client = await self._http()
        import httpx

        try:
            response = await client.get("/health", timeout=self.connect_timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def version(self) -> str:
        """llama.cpp's build (``/props`` ``build_info``, e.g. ``b6500-1a2b3c``)."""
        return (await self.props()).build

    async def props(self, *, refresh: bool = False) -> ServerProps:
        """The model, context and capabilities the server was started with.

        An OpenAI-compatible server without ``/props`` (LM Studio) is described from
        ``/v1/models`` and LM Studio's ``/api/v1/models`` (its loaded model, that
        model's maximum context and vision capability); its context is then unknown
        (0) unless LM Studio says how a loaded instance was started.
        """
        if self._props is not None and not refresh:
            return self._props
        if self.kind == "openai":
            self._props = await self._openai_props()
            return self._props
        data = await self._get_json("/props")
        try:
            models = await self._get_json("/v1/models")
        except OllamaError:
            models = {}
        self._props = _props(data, models, self.name)
        return self._props

    async def _openai_props(self) -> ServerProps:
        models = await self._get_json("/v1/models")
        try:
            native = await self._get_json("/api/v1/models")
        except OllamaError:
            native = None
        return _openai_props(models, native, self.name)

    async def pull(self, model: str) -> AsyncIterator[PullProgress]:
        """Downloading needs Ollama: always raises.

        Raises:
            CannotPull: With what to do instead (exit 3).
        """
        raise CannotPull(
            f"{self.name} at {self.host} cannot download models (pulling {model} needs "
            "Ollama): it serves the file it was started with; start it with another GGUF, "
            "or point --host at an Ollama server"
        )
        yield  # pragma: no cover - makes this an async generator like OllamaClient.pull

    async def served(self) -> ServerProps:
        """The model this server serves, its context per slot and its slots (the port's
        answer for a fixed-model engine; see :meth:`props`)."""
        return await self.props()

    async def list_models(self) -> list[InstalledModel]:
        """The one model the server serves, as an installed model."""
        props = await self.props()
        return [
            InstalledModel(
                name=props.model,
                size_bytes=props.size_bytes or 0,
                digest="",
                family="gemma3" if "gemma" in (props.model_path or props.model).lower() else "",
                context_length=props.n_ctx_train,
                capabilities=("completion", "vision") if props.vision else ("completion",),
            )
        ]

    async def ps(self) -> list[RunningModel]:
        """The loaded model and its context (memory: the server does not say)."""
        props = await self.props()
        return [
            RunningModel(
                name=props.model,
                size_bytes=0,
                size_vram_bytes=0,
                context_length=props.n_ctx,
            )
        ]

    async def slots(self) -> list[dict[str, Any]]:
        """``/slots``: each slot's context and whether it is busy (empty if disabled)."""
        try:
            data = await self._get_json("/slots")
        except OllamaHTTPError as err:
            if err.status in (404, 501):
                return []
            raise
        return [row for row in data if isinstance(row, dict)] if isinstance(data, list) else []

    # ------------------------------------------------------------------ chat

    async def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        num_ctx: int | None = None,
        keep_alive: str | int | float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[ChatChunk]:
        """Stream a reply from ``/v1/chat/completions``.

        Args:
            model: Sent as ``model`` (llama-server answers with the model it has).
            messages: ``{"role", "content"}`` mappings, oldest first.
            num_ctx: Ignored by the server (its context is fixed at start).
            keep_alive: Ignored (llama-server keeps its model loaded).
            options: ``temperature``, ``seed``, ``num_predict`` (as ``max_tokens``).

        Raises:
            UsageError: The request cannot be encoded as JSON.
            OllamaStreamError: The stream broke; ``partial`` holds what arrived.
        """
        del num_ctx, keep_alive
        body: dict[str, Any] = {
            "model": model,
            "messages": [openai_message(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "cache_prompt": True,
        }
        for key, value in (options or {}).items():
            if key in ("temperature", "seed", "top_p", "top_k", "stop"):
                body[key] = value
            elif key == "num_predict":
                body["max_tokens"] = value
        try:
            payload = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (ValueError, UnicodeEncodeError) as err:
            raise UsageError(f"the request cannot be sent: {err}") from None
        client = await self._http()
        received: list[str] = []
        started = time.monotonic()
        first: float | None = None
        finish: str | None = None
        timings: Mapping[str, Any] = {}
        usage: Mapping[str, Any] = {}
        try:
            async with client.stream(
                "POST",
                "/v1/chat/completions",
                content=payload,
                headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
            ) as response:
                if response.status_code >= 400:
                    text = (await response.aread()).decode("utf-8", "replace")
                    raise OllamaHTTPError(
                        response.status_code, error_text(text) or "no message", engine=self.name
                    )
                async for line in response.aiter_lines():
                    event = _sse_data(line)
                    if event is None:
                        continue
                    if event == "[DONE]":
                        break
                    data = json.loads(event)
                    if not isinstance(data, dict):
                        raise ValueError("not an object")
                    if "error" in data:
                        raise OllamaStreamError(
                            f"{self.name} stopped the reply: {error_text(json.dumps(data))}",
                            "".join(received),
                        )
                    timings = data.get("timings") or timings
                    usage = data.get("usage") or usage
                    for choice in data.get("choices") or ():
                        delta = choice.get("delta") or {}
                        content = delta.get("content") or ""
                        reasoning = delta.get("reasoning_content") or ""
                        finish = choice.get("finish_reason") or finish
                        if content or reasoning:
                            if first is None:
                                first = time.monotonic() - started
                            received.append(content)
                            yield ChatChunk(content=content, thinking=reasoning)
        except OllamaError as err:
            if isinstance(err, OllamaStreamError) or not received:
                raise
            raise OllamaStreamError(str(err), "".join(received)) from err
        except Exception as exc:
            raise self._translate(exc, partial="".join(received)) from exc
        if finish is None and not timings:
            raise OllamaStreamError(
                f"the connection to {self.name} dropped during the reply", "".join(received)
            )
        yield ChatChunk(
            content="",
            done=True,
            stats=_stats(timings, usage, finish, first, time.monotonic() - started),
        )

    # ------------------------------------------------------------------ errors

    def _translate(self, exc: Exception, *, partial: str | None = None) -> Exception:
        import httpx

        if isinstance(exc, OllamaError):
            return exc
        name = self.name
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionError)):
            return OllamaUnavailable(f"cannot reach {name} at {self.host}: is it running?")
        if isinstance(exc, httpx.TimeoutException):
            return OllamaTimeout(f"{name} at {self.host} sent nothing for {self.read_timeout:g} s")
        if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
            if partial is not None:
                return OllamaStreamError(f"the connection to {name} dropped during the reply", partial)
            return OllamaError(f"the connection to {name} at {self.host} dropped")
        if isinstance(exc, (ValueError, KeyError, TypeError)):
            if partial is not None:
                return OllamaStreamError(f"{name} sent a malformed line during the reply", partial)
            return OllamaError(f"unexpected answer from {name} at {self.host}")
        if isinstance(exc, httpx.HTTPError):
            return OllamaError(f"talking to {name} at {self.host} failed: {exc}")
        return exc


# --------------------------------------------------------------------------- helpers


def openai_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A chat message in OpenAI's form: Ollama-style ``images`` become content parts.

    A message with ``images`` (base64 strings, as Ollama takes them) is sent as
    ``[{"type": "text", "text": ...}, {"type": "image_url", "image_url": {"url":
    "data:image/png;base64,..."}}, ...]``, which llama-server hands to its vision
    projector (``--mmproj``). The media type is read from the image's own bytes.
    Other messages keep their shape.

    Raises:
        UsageError: An image that is not base64 text.

    >>> openai_message({"role": "user", "content": "hi"})
    {'role': 'user', 'content': 'hi'}
    >>> openai_message({"role": "user", "content": "what is it?", "images": ["R0lGODlhAQABAAAAACw="]})
    {'role': 'user', 'content': [{'type': 'text', 'text': 'what is it?'}, \
{'type': 'image_url', 'image_url': {'url': 'data:image/gif;base64,R0lGODlhAQABAAAAACw='}}]}
    """
    result = {k: v for k, v in message.items() if k != "images"}
    images = message.get("images")
    if not images:
        return result
    parts: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        parts.append({"type": "text", "text": text})
    for image in images:
        parts.append({"type": "image_url", "image_url": {"url": _data_uri(image)}})
    result["content"] = parts
    return result


def _data_uri(image: Any) -> str:
    """``data:<type>;base64,<data>`` for an image given as base64 text or bytes."""
    import base64
    import binascii

    from gemmatui.core.images import probe_mime

    if isinstance(image, (bytes, bytearray)):
        raw = bytes(image)
        text = base64.b64encode(raw).decode("ascii")
    elif isinstance(image, str):
        text = image
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise UsageError("the request cannot be sent: an image in it is not base64 text") from None
    else:
        raise UsageError("the request cannot be sent: an image in it is not base64 text")
    return f"data:{probe_mime(raw)};base64,{text}"


def _sse_data(line: str) -> str | None:
    """The data of one Server-Sent Events line (``None`` for comments, blanks, others)."""
    if line.startswith("data:"):
        return line[5:].strip()
    if line.startswith("error:"):  # llama-server's own error event
        return json.dumps({"error": line[6:].strip()})
    return None


def _props(data: Any, models: Any, engine: str = _NAME) -> ServerProps:
    if not isinstance(data, dict):
        raise OllamaError(f"unexpected answer from {engine}: /props is not an object")
    settings = data.get("default_generation_settings") or {}
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    meta: dict[str, Any] = {}
    model_id = ""
    rows = models.get("data") if isinstance(models, dict) else None
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        model_id = str(rows[0].get("id") or "")
        found = rows[0].get("meta")
        meta = found if isinstance(found, dict) else {}
    # Everything a server says is untrusted text: one sanitised line each.
    path = sanitize_line(str(data.get("model_path") or ""), 1000)
    alias = sanitize_line(str(data.get("model_alias") or ""), 200)
    model_id = sanitize_line(model_id, 200)
    name = next((n for n in (alias, model_id) if n and n != "-"), "") or path.rsplit("/", 1)[-1]
    modalities = data.get("modalities") or {}
    slots = data.get("total_slots")

    def positive(value: Any) -> int | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        return value if ok else None

    return ServerProps(
        model=name or "model",
        model_path=path,
        n_ctx=positive(n_ctx) or 0,
        n_ctx_train=positive(meta.get("n_ctx_train")),
        total_slots=positive(slots) or 1,
        vision=bool(isinstance(modalities, dict) and modalities.get("vision")),
        has_template=bool(data.get("chat_template")),
        build=sanitize_line(str(data.get("build_info") or ""), 40) or "unknown build",
        size_bytes=positive(meta.get("size")),
    )


def _openai_props(models: Any, native: Any, engine: str) -> ServerProps:
    """A server without ``/props``: the model from ``/v1/models`` (the loaded one in
    LM Studio's ``/api/v1/models`` when it lists one), its maximum context and vision
    from LM Studio's list. LM Studio's fields are taken from its documentation."""
    rows = models.get("data") if isinstance(models, dict) else None
    ids = [str(r.get("id")) for r in rows or () if isinstance(r, dict) and r.get("id")]
    if not ids:
        raise OllamaError(f"{engine} lists no model in /v1/models: load one first")
    entries = native.get("models") if isinstance(native, dict) else None
    entries = [e for e in entries or () if isinstance(e, dict)]
    loaded = [e for e in entries if e.get("loaded_instances")]
    entry = (loaded or [e for e in entries if e.get("key") in ids] or [None])[0]
    name = str(entry.get("key")) if entry and entry.get("key") else ids[0]
    n_ctx = 0
    if entry:
        for instance in entry.get("loaded_instances") or ():
            config = instance.get("config") if isinstance(instance, dict) else None
            value = config.get("context_length") if isinstance(config, dict) else None
            if isinstance(value, int) and value > 0:
                n_ctx = value
                break
    most = entry.get("max_context_length") if entry else None
    caps = entry.get("capabilities") if entry else None
    vision = bool(
        (isinstance(caps, dict) and caps.get("vision"))
        or (isinstance(caps, list) and "vision" in caps)
    )
    size = entry.get("size_bytes") if entry else None
    return ServerProps(
        model=sanitize_line(name, 200) or "model",
        model_path="",
        n_ctx=n_ctx,
        n_ctx_train=most if isinstance(most, int) and most > 0 else None,
        total_slots=1,
        vision=vision,
        has_template=True,
        build="",
        size_bytes=size if isinstance(size, int) else None,
    )


def _stats(
    timings: Mapping[str, Any],
    usage: Mapping[str, Any],
    finish: str | None,
    first: float | None,
    total: float,
) -> ChatStats:
    def number(mapping: Mapping[str, Any], key: str) -> float:
        value = mapping.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    # The whole prompt (what fills the context), not only the part the cache missed.
    prompt_n = number(usage, "prompt_tokens") or number(timings, "prompt_n") + number(
        timings, "cache_n"
    )
    predicted_n = number(timings, "predicted_n") or number(usage, "completion_tokens")
    return ChatStats(
        eval_count=int(predicted_n),
        eval_duration_s=number(timings, "predicted_ms") / 1000,
        prompt_eval_count=int(prompt_n),
        prompt_eval_duration_s=number(timings, "prompt_ms") / 1000,
        load_duration_s=0.0,
        total_duration_s=total,
        done_reason=finish,
        time_to_first_token_s=first,
    )
