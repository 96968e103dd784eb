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
    OllamaError,
    OllamaHTTPError,
    OllamaStreamError,
    OllamaTimeout,
    OllamaUnavailable,
    UsageError,
)
from gemmatui.core.hosts import is_local
from gemmatui.core.text import sanitize_line
from gemmatui.core.types import ChatChunk, ChatStats, InstalledModel, RunningModel

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
    commands and screens use either one.

    Args:
        host: Base URL, e.g. ``http://127.0.0.1:8080``.
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for the next byte of an answer.
        api_key: Sent as ``Authorization: Bearer`` (llama-server ``--api-key``, LM Studio).
    """

    engine = "llama-server"

    def __init__(
        self,
        host: str,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        api_key: str | None = None,
    ) -> None:
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
        import ssl

        import httpx

        verify: ssl.SSLContext | bool = (
            True if self.host.startswith("https://") else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        )
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        return httpx.AsyncClient(
            base_url=self.host,
            timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout),
            trust_env=not is_local(self.host),
            verify=verify,
            headers=headers,
        )

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
                error_text(response.text),
                hint=f"{_NAME} at {self.host}{path}",
            )
        try:
            return response.json()
        except ValueError:
            raise OllamaError(f"unexpected answer from {_NAME} at {self.host}{path}") from None

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
        """The model, context and capabilities the server was started with."""
        if self._props is not None and not refresh:
            return self._props
        data = await self._get_json("/props")
        try:
            models = await self._get_json("/v1/models")
        except OllamaError:
            models = {}
        self._props = _props(data, models)
        return self._props

    async def list_models(self) -> list[InstalledModel]:
        """The one model the server serves, as an installed model."""
        props = await self.props()
        return [
            InstalledModel(
                name=props.model,
                size_bytes=props.size_bytes or 0,
                digest="",
                family="gemma3" if "gemma" in props.model_path.lower() else "",
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
            "messages": [dict(m) for m in messages],
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
                    raise OllamaHTTPError(response.status_code, error_text(text), hint=_NAME)
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
                            f"{_NAME} stopped the reply: {error_text(json.dumps(data))}",
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
                f"the connection to {_NAME} dropped during the reply", "".join(received)
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
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionError)):
            return OllamaUnavailable(f"cannot reach {_NAME} at {self.host}: is it running?")
        if isinstance(exc, httpx.TimeoutException):
            return OllamaTimeout(
                f"{_NAME} at {self.host} sent nothing for {self.read_timeout:g} s"
            )
        if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
            if partial is not None:
                return OllamaStreamError(f"the connection to {_NAME} dropped during the reply", partial)
            return OllamaError(f"the connection to {_NAME} at {self.host} dropped")
        if isinstance(exc, (ValueError, KeyError, TypeError)):
            if partial is not None:
                return OllamaStreamError(f"{_NAME} sent a malformed line during the reply", partial)
            return OllamaError(f"unexpected answer from {_NAME} at {self.host}")
        if isinstance(exc, httpx.HTTPError):
            return OllamaError(f"talking to {_NAME} at {self.host} failed: {exc}")
        return exc


# --------------------------------------------------------------------------- helpers


def _sse_data(line: str) -> str | None:
    """The data of one Server-Sent Events line (``None`` for comments, blanks, others)."""
    if line.startswith("data:"):
        return line[5:].strip()
    if line.startswith("error:"):  # llama-server's own error event
        return json.dumps({"error": line[6:].strip()})
    return None


def error_text(body: str) -> str:
    """The message in an error answer: ``{"error": "..."}`` (Ollama),
    ``{"error": {"message": ...}}`` (llama-server, OpenAI), or the body itself; one
    sanitised line.

    >>> error_text('{"error":{"message":"File Not Found","type":"not_found_error","code":404}}')
    'File Not Found'
    >>> error_text('{"error": "model \\\\u001b[2J not found"}')
    'model not found'
    """
    text = body
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("message"))
        if isinstance(error, dict):
            error = error.get("message") or error.get("type") or error
        if isinstance(error, str):
            text = error
        elif error is not None:
            text = json.dumps(error)
    return sanitize_line(text) or "(no message)"


def _props(data: Any, models: Any) -> ServerProps:
    if not isinstance(data, dict):
        raise OllamaError(f"unexpected answer from {_NAME}: /props is not an object")
    settings = data.get("default_generation_settings") or {}
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    meta: dict[str, Any] = {}
    model_id = ""
    rows = models.get("data") if isinstance(models, dict) else None
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        model_id = str(rows[0].get("id") or "")
        meta = rows[0].get("meta") or {}
    path = str(data.get("model_path") or "")
    alias = str(data.get("model_alias") or "")
    name = next((n for n in (alias, model_id) if n and n != "-"), "") or path.rsplit("/", 1)[-1]
    modalities = data.get("modalities") or {}
    return ServerProps(
        model=name or "model",
        model_path=path,
        n_ctx=int(n_ctx) if isinstance(n_ctx, int) and n_ctx > 0 else 0,
        n_ctx_train=meta.get("n_ctx_train") if isinstance(meta.get("n_ctx_train"), int) else None,
        total_slots=int(data.get("total_slots") or 1),
        vision=bool(isinstance(modalities, dict) and modalities.get("vision")),
        has_template=bool(data.get("chat_template")),
        build=str(data.get("build_info") or "unknown build"),
        size_bytes=meta.get("size") if isinstance(meta.get("size"), int) else None,
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
