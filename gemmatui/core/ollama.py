"""The one place gemmatui talks to Ollama.

:class:`OllamaClient` wraps the official ``ollama`` package's ``AsyncClient`` (and,
for what that client lacks or drops, plain ``httpx``). Both are imported when a
client is created, never at module import, so ``--help`` and ``fit`` do not pay for
them.

Everything that can go wrong becomes one of the project's own errors (see
:mod:`gemmatui.core.errors`); callers never see ``httpx``, ``ollama`` or ``pydantic``
exception types:

=======================================================  ==========================
what happened                                            raised
=======================================================  ==========================
nothing listens / connect timed out                      ``OllamaUnavailable``
something answers but not as Ollama (``/api/version``
fails; llama.cpp's llama-server answers 404 to /api/*)   ``NotOllama`` (exit 3)
HTTP 404 (model not installed)                           ``ModelNotFound``
other HTTP error status                                  ``OllamaHTTPError``
no byte for ``read_timeout`` seconds                     ``OllamaTimeout``
``{"error": ...}`` line, dropped connection or a
malformed line inside a chat stream                      ``OllamaStreamError``
the same inside a pull stream                            ``OllamaPullError``
a chat request that cannot be sent as JSON (text that
is not valid UTF-8, a NaN or infinite number)            ``UsageError``
=======================================================  ==========================

Timeouts are explicit: connecting fails after ``connect_timeout`` seconds, while a
read may wait ``read_timeout`` seconds because the first token of a chat can wait
for a model load that takes minutes on a slow disk.

Text a server sends (error messages, in-band ``{"error": ...}`` lines) is untrusted: it
goes through :func:`gemmatui.core.text.sanitize_line` before it is put in a message.

``import ollama`` builds a module-level client from the raw ``OLLAMA_HOST``, with a
stricter parser than Ollama's (``"127.0.0.1:11434 "`` fails there): the package is only
imported through :func:`_import_ollama`, which never lets it see a raw value.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from gemmatui.core.catalog import VARIANTS
from gemmatui.core.errors import (
    ModelNotFound,
    NotOllama,
    OllamaError,
    OllamaHTTPError,
    OllamaPullError,
    OllamaStreamError,
    OllamaTimeout,
    OllamaUnavailable,
    UsageError,
)
from gemmatui.core.hosts import http_options, parse_host
from gemmatui.core.text import error_message, error_text, sanitize_line
from gemmatui.core.types import (
    ChatChunk,
    ChatStats,
    InstalledModel,
    ModelDetails,
    PullProgress,
    RunningModel,
)

#: The Ollama library tags of Gemma 3's quantisation-aware-trained models, small to large.
QAT_TAGS: tuple[str, ...] = tuple(v.tag for v in VARIANTS)

DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 300.0
# Short metadata calls (liveness, version, tags) never wait for a model load.
_QUICK_READ_TIMEOUT = 30.0

_START_HINT = "is Ollama running? start it with `ollama serve`"
_NS = 1e-9
# Held while ``ollama`` is imported with a cleaned-up OLLAMA_HOST (see _import_ollama).
_IMPORT_LOCK = threading.Lock()


class OllamaClient:
    """An async client for one Ollama server.

    Use it as an async context manager (or call :meth:`aclose`) so its connections
    are closed. One instance holds one connection pool; create one per app.

    Args:
        host: Base URL, already parsed (see :func:`gemmatui.core.hosts.parse_host`).
        connect_timeout: Seconds to wait for a TCP connection before giving up.
        read_timeout: Seconds to wait for the next byte of an answer; this covers a
            model load before the first token, so keep it generous in real use.

    Example:
        >>> async def demo():  # doctest: +SKIP
        ...     async with OllamaClient("http://127.0.0.1:11434") as client:
        ...         async for chunk in client.chat("gemma3:4b-it-qat",
        ...                                        [{"role": "user", "content": "hi"}],
        ...                                        num_ctx=8192, keep_alive="10m"):
        ...             print(chunk.content, end="")
    """

    def __init__(
        self,
        host: str,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ) -> None:
        self.host = host.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        # The official client (ollama, pydantic) and httpx cost a few hundred ms to
        # import: they are created on the first request, so an app paints first.
        self._client: Any = None
        self._raw: Any = None

    # ------------------------------------------------------------------ lifecycle

    def _settings(self) -> dict[str, Any]:
        """Timeout, proxy and TLS settings shared by both underlying clients."""
        return http_options(
            self.host, read_timeout=self.read_timeout, connect_timeout=self.connect_timeout
        )

    async def _official(self) -> Any:
        """The official ``ollama.AsyncClient``, created on first use.

        Importing ``ollama`` (pydantic, httpx, httpcore) takes a few hundred ms: it and
        the client's construction run in a thread, so an app's event loop keeps drawing.
        """
        if self._client is None:
            client = await _in_thread(self._make_official)
            if self._client is None:  # another task may have finished first
                self._client = client
        return self._client

    def _make_official(self) -> Any:
        ollama = _import_ollama()
        return ollama.AsyncClient(host=self.host, **self._settings())

    async def aclose(self) -> None:
        """Close every connection this client holds."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._raw is not None:
            await self._raw.aclose()
            self._raw = None

    async def __aenter__(self) -> OllamaClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ plain httpx calls

    async def _httpx(self) -> Any:
        """The plain httpx client for endpoints the official client lacks or trims
        (made in a thread on first use, like :meth:`_official`)."""
        if self._raw is None:
            client = await _in_thread(self._make_httpx)
            if self._raw is None:
                self._raw = client
        return self._raw

    def _make_httpx(self) -> Any:
        import httpx

        return httpx.AsyncClient(base_url=self.host, **self._settings())

    async def _get(self, path: str) -> Any:
        """``GET path`` with the quick read timeout: the ``httpx.Response`` of a 2xx answer.

        Raises:
            OllamaHTTPError: An error status, with the server's message (sanitised).
        """
        client = await self._httpx()
        import httpx  # loaded by _httpx

        quick = httpx.Timeout(
            min(self.read_timeout, _QUICK_READ_TIMEOUT), connect=self.connect_timeout
        )
        try:
            response = await client.get(path, timeout=quick)
        except Exception as exc:
            raise self._translate(exc) from exc
        if response.status_code >= 400:
            raise _status_error(response.status_code, error_text(response.text), model=None)
        return response

    async def _get_json(self, path: str) -> Any:
        response = await self._get(path)
        try:
            return response.json()
        except Exception as exc:
            raise self._translate(exc) from exc

    async def _not_ollama(self, answer: str) -> NotOllama:
        """The error for a server that answered ``/api/version`` not as Ollama does.

        Names what answered instead through :func:`gemmatui.core.detect.detect` (the one
        place that tells llama.cpp's llama-server and OpenAI-compatible servers apart).

        Args:
            answer: What the server answered, for the message (``"404 to /api/version:
                File Not Found"``).
        """
        from gemmatui.core.detect import detect

        try:
            found = await detect(self.host, timeout=self.connect_timeout)
        except OllamaError:
            found = None
        looks_like = {
            "llama-server": "llama.cpp's llama-server",
            "openai": "an OpenAI-compatible server",
        }.get(found.kind if found else "", "")
        text = f"the server at {self.host} is not Ollama (it answered {answer})"
        if looks_like:
            text += f"; it looks like {looks_like}"
        text += "; point --host or OLLAMA_HOST at an Ollama server (default port 11434)"
        return NotOllama(text, looks_like)

    async def _failure(
        self,
        exc: Exception,
        *,
        model: str | None = None,
        partial: str | None = None,
        pulling: bool = False,
    ) -> Exception:
        """:meth:`_translate`, and for a 404 also whether the server is Ollama at all.

        Every Ollama has the endpoints gemmatui calls, so a 404 means either "no such
        model" or "this is not Ollama" (llama-server answers 404 to every ``/api/*``
        path). ``/api/version`` tells which; if that check cannot decide, the 404
        stands as it is.
        """
        error = self._translate(exc, model=model, partial=partial, pulling=pulling)
        if isinstance(error, OllamaHTTPError) and error.status == 404:
            try:
                await self.version()
            except NotOllama as not_ollama:
                return not_ollama
            except OllamaError:
                pass
        return error

    async def is_running(self) -> bool:
        """Whether an Ollama server answers at the host (``GET /``); never raises.

        Uses ``connect_timeout`` for both connecting and reading, so a dead host
        costs at most a few seconds.
        """
        client = await self._httpx()
        import httpx  # loaded by _httpx

        try:
            response = await client.get("/", timeout=self.connect_timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def version(self) -> str:
        """The server's version (``GET /api/version``), e.g. ``"0.32.15"``.

        Also the check that the server is Ollama: every Ollama answers it with
        ``{"version": "..."}``.

        Raises:
            NotOllama: The server answered, but not as Ollama does (an error status,
                or a body without a version); the message says what answered.
            OllamaUnavailable: Nothing answers at the host.
        """
        try:
            response = await self._get("/api/version")
        except OllamaHTTPError as err:
            raise await self._not_ollama(f"{err.status} to /api/version: {err.message}") from err
        try:
            data = response.json()
        except ValueError:
            data = None
        version = data.get("version") if isinstance(data, dict) else None
        if not isinstance(version, str) or not version.strip():
            shown = sanitize_line(response.text, limit=80) or "an empty body"
            raise await self._not_ollama(f"/api/version with: {shown}")
        return sanitize_line(version, limit=40)

    async def list_models(self) -> list[InstalledModel]:
        """Installed models (``GET /api/tags``), as the server orders them.

        Read with httpx because the official client's response type drops
        ``details.context_length`` and ``capabilities``.

        Raises:
            NotOllama: The server answered 404: it is not Ollama (see :meth:`version`).
        """
        try:
            data = await self._get_json("/api/tags")
        except OllamaHTTPError as err:
            if err.status == 404:
                await self.version()  # raises NotOllama unless this is an odd Ollama
            raise
        try:
            return [_installed_model(row) for row in data.get("models") or ()]
        except (AttributeError, TypeError, ValueError):
            raise OllamaError(f"unexpected answer from Ollama at {self.host}/api/tags") from None

    # ------------------------------------------------------------------ official client calls

    async def show(self, model: str) -> ModelDetails:
        """Model metadata (``POST /api/show``): GGUF ``model_info`` and parsed parameters."""
        try:
            response = await (await self._official()).show(model)
        except Exception as exc:
            raise await self._failure(exc, model=model) from exc
        details = response.details
        return ModelDetails(
            name=model,
            model_info=dict(response.modelinfo or {}),
            parameters=parse_parameters(response.parameters or ""),
            capabilities=tuple(response.capabilities or ()),
            quantization_level=(details.quantization_level or "") if details else "",
        )

    async def ps(self) -> list[RunningModel]:
        """Loaded models (``GET /api/ps``) with their memory split and context length."""
        try:
            response = await (await self._official()).ps()
        except Exception as exc:
            raise await self._failure(exc) from exc
        return [
            RunningModel(
                name=row.name or row.model or "",
                size_bytes=int(row.size or 0),
                size_vram_bytes=int(row.size_vram or 0),
                context_length=row.context_length,
                expires_at=row.expires_at.isoformat() if row.expires_at else "",
            )
            for row in response.models
        ]

    async def delete(self, model: str) -> None:
        """Remove an installed model (``DELETE /api/delete``)."""
        try:
            await (await self._official()).delete(model)
        except Exception as exc:
            raise await self._failure(exc, model=model) from exc

    async def pull(self, model: str) -> AsyncIterator[PullProgress]:
        """Download a model (``POST /api/pull``), yielding each progress line.

        Overall totals sum ``total`` and ``completed`` over the distinct layer digests
        seen so far (Ollama does not announce the layer list up front). Closing or
        cancelling the iteration closes the connection, which cancels the pull on the
        server; pulling again resumes from what was already downloaded.

        Raises:
            OllamaPullError: The stream reported an error or broke off.
        """
        layers: dict[str, tuple[int, int]] = {}
        try:
            stream: Any = await (await self._official()).pull(model, stream=True)  # an async generator
            async with contextlib.aclosing(stream):
                async for part in stream:
                    digest = part.digest or None
                    if digest and part.total:
                        layers[digest] = (int(part.total), int(part.completed or 0))
                    yield PullProgress(
                        status=part.status or "",
                        digest=digest,
                        total=part.total,
                        completed=part.completed,
                        overall_total=sum(total for total, _ in layers.values()),
                        overall_completed=sum(done for _, done in layers.values()),
                    )
        except Exception as exc:
            raise await self._failure(exc, model=model, pulling=True) from exc

    async def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        num_ctx: int,
        keep_alive: str | int | float,
        options: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[ChatChunk]:
        """Stream a chat reply (``POST /api/chat``).

        Every request carries ``options.num_ctx`` and ``keep_alive``: a context that
        differs from the loaded runner's makes Ollama reload the model, so the planned
        value must always be sent.

        Args:
            model: Full tag, e.g. ``"gemma3:27b-it-qat"``.
            messages: ``{"role": ..., "content": ...}`` mappings, oldest first; a
                message may carry ``images``, a list of base64 strings (Ollama's own
                form), sent as they are.
            num_ctx: Context length in tokens (sent as ``options.num_ctx``).
            keep_alive: How long the model stays loaded after the reply
                (``"10m"``, seconds, ``0`` to unload, negative for ever).
            options: Other model options (``temperature``, ``seed`` ...).

        Yields:
            One :class:`ChatChunk` per streamed line; the last has ``done=True`` and
            ``stats`` (with the client-measured time to first token).

        Raises:
            UsageError: The request cannot be sent: its text is not valid UTF-8 (lone
                surrogates) or a number in it is NaN or infinite. Nothing was sent.
            OllamaStreamError: The stream broke after it started; ``partial`` holds
                the text received so far.
        """
        request_messages = [dict(m) for m in messages]
        request_options = {**(options or {}), "num_ctx": num_ctx}
        _check_encodable([model, request_messages, request_options, keep_alive])
        request_messages = [_with_image_bytes(m) for m in request_messages]
        received: list[str] = []
        started = time.monotonic()
        first_token: float | None = None
        # Only builds the request (a ValueError here is our bug); the first iteration
        # sends it, so from there on a ValueError means a line Ollama sent was bad.
        stream: Any = await (await self._official()).chat(
            model=model,
            messages=request_messages,
            stream=True,
            options=request_options,
            keep_alive=keep_alive,
        )
        try:
            async with contextlib.aclosing(stream):
                async for part in stream:
                    message = part.message
                    content = message.content or ""
                    thinking = message.thinking or ""
                    if first_token is None and (content or thinking or part.done):
                        first_token = time.monotonic() - started
                    received.append(content)
                    stats = _chat_stats(part, first_token) if part.done else None
                    yield ChatChunk(
                        content=content, done=bool(part.done), stats=stats, thinking=thinking
                    )
        except Exception as exc:
            raise await self._failure(exc, model=model, partial="".join(received)) from exc

    # ------------------------------------------------------------------ errors

    def _translate(
        self,
        exc: Exception,
        *,
        model: str | None = None,
        partial: str | None = None,
        pulling: bool = False,
    ) -> Exception:
        """Turn a library exception into the project's own error type.

        Args:
            exc: What httpx, ollama or pydantic raised.
            model: The model the request was about (for the pull hint).
            partial: Text received so far; not ``None`` only inside a chat stream.
            pulling: The exception came from a pull stream.

        Returns:
            The error to raise; ``exc`` itself if it is not a transport or protocol
            error (a bug, which should surface as is).
        """
        import sys

        import httpx

        if isinstance(exc, OllamaError):
            return exc
        # Only the official client raises its ResponseError: if it was never imported,
        # this is not one (and importing it here would stall an event loop).
        ollama = sys.modules.get("ollama")
        if ollama is not None and isinstance(exc, ollama.ResponseError):
            message = error_message(exc.error)
            if exc.status_code == -1:  # an {"error": ...} line inside the stream
                if pulling:
                    return OllamaPullError(model or "", _pull_message(model or "", message))
                return OllamaStreamError(f"Ollama stopped the reply: {message}", partial or "")
            return _status_error(exc.status_code, message, model=model)
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionError)):
            return OllamaUnavailable(f"cannot reach Ollama at {self.host}: {_START_HINT}")
        if isinstance(exc, httpx.TimeoutException):
            return OllamaTimeout(
                f"Ollama at {self.host} sent nothing for {self.read_timeout:g} s "
                "(still loading the model, or stuck); try again or restart `ollama serve`"
            )
        if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
            if pulling:
                return OllamaPullError(
                    model or "",
                    f"the connection to Ollama dropped while pulling {model}; run the pull "
                    "again to resume",
                )
            if partial is not None:
                return OllamaStreamError(
                    "the connection to Ollama dropped during the reply", partial
                )
            return OllamaError(
                f"the connection to Ollama at {self.host} dropped before it answered"
            )
        if isinstance(exc, ValueError):  # bad JSON line or a shape pydantic rejects
            if pulling:
                return OllamaPullError(
                    model or "", f"Ollama sent a malformed progress line while pulling {model}"
                )
            if partial is not None:
                return OllamaStreamError("Ollama sent a malformed line during the reply", partial)
            return OllamaError(f"unexpected answer from Ollama at {self.host}")
        if isinstance(exc, httpx.HTTPError):
            reason = sanitize_line(str(exc))
            return OllamaError(f"talking to Ollama at {self.host} failed: {reason}")
        return exc


# ---------------------------------------------------------------------- helpers


async def _in_thread(make: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(make)


def _import_ollama() -> Any:
    """Import the official ``ollama`` package without letting it read a raw ``OLLAMA_HOST``.

    ``import ollama`` creates a module-level ``Client()`` (for ``ollama.chat`` and
    friends, which gemmatui never uses) from ``os.environ["OLLAMA_HOST"]``, parsed by
    the package's own parser: a value Ollama itself accepts, such as
    ``"127.0.0.1:11434 "`` (trailing space) or ``'"127.0.0.1:11434"'`` (quoted), makes
    that import fail with ``ValueError: Port could not be cast to integer value``,
    whatever host the client gemmatui creates is given.

    So, for the import only and under a lock, the variable holds the URL gemmatui's
    own parser makes of it (the same server, in a form every parser reads), or is
    unset when gemmatui cannot parse it either (then the host came from ``--host`` or
    the config); its value is put back right after. A thread that reads the
    environment during those milliseconds sees the same server, spelled plainly.

    Returns:
        The ``ollama`` module.
    """
    import sys

    if "ollama" in sys.modules:  # imported, or being imported by another thread:
        import ollama  # this waits until that import has finished

        return ollama
    with _IMPORT_LOCK:
        raw = os.environ.get("OLLAMA_HOST")
        if raw is None or "ollama" in sys.modules:
            import ollama

            return ollama
        clean: str | None
        try:
            clean = parse_host(raw) if raw.strip().strip("\"'").strip() else ""
        except UsageError:
            clean = None
        try:
            if clean is None:
                del os.environ["OLLAMA_HOST"]
            else:
                os.environ["OLLAMA_HOST"] = clean
            import ollama
        finally:
            os.environ["OLLAMA_HOST"] = raw
        return ollama


def gemma_installed(models: Iterable[InstalledModel]) -> dict[str, InstalledModel]:
    """The installed Gemma 3 QAT models, keyed by tag, small to large.

    >>> rows = [InstalledModel("llama3:8b", 1, "x"), InstalledModel("gemma3:4b-it-qat", 4, "y")]
    >>> list(gemma_installed(rows))
    ['gemma3:4b-it-qat']
    """
    by_name = {m.name: m for m in models}
    return {tag: by_name[tag] for tag in QAT_TAGS if tag in by_name}


def parse_parameters(text: str) -> dict[str, Any]:
    """Parse ``/api/show``'s ``parameters`` string (``key value`` per line).

    Values are Go-formatted: strings quoted, numbers and booleans bare. A key that
    appears on several lines (``stop``) becomes a list; ``stop`` is always a list.

    >>> parse_parameters('stop    "<end_of_turn>"\\ntemperature    1\\ntop_p    0.95')
    {'stop': ['<end_of_turn>'], 'temperature': 1, 'top_p': 0.95}
    """
    result: dict[str, Any] = {}
    for line in text.splitlines():
        key, _, raw = line.strip().partition(" ")
        if not key:
            continue
        value = _parameter_value(raw.strip())
        if key in result:
            previous = result[key]
            result[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            result[key] = [value] if key == "stop" else value
    return result


def _parameter_value(raw: str) -> Any:
    if raw.startswith('"'):
        try:
            return json.loads(raw)
        except ValueError:  # a Go escape JSON does not know (\x..); keep the text
            return raw[1:-1] if raw.endswith('"') and len(raw) > 1 else raw
    if raw in ("true", "false"):
        return raw == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def _installed_model(row: Mapping[str, Any]) -> InstalledModel:
    details = row.get("details") or {}
    context = details.get("context_length")
    return InstalledModel(
        name=str(row.get("name") or row.get("model") or ""),
        size_bytes=int(row.get("size") or 0),
        digest=str(row.get("digest") or ""),
        modified_at=str(row.get("modified_at") or ""),
        family=str(details.get("family") or ""),
        parameter_size=str(details.get("parameter_size") or ""),
        quantization_level=str(details.get("quantization_level") or ""),
        context_length=int(context) if context else None,
        capabilities=tuple(row.get("capabilities") or ()),
    )


def _chat_stats(part: Any, first_token: float | None) -> ChatStats:
    return ChatStats(
        eval_count=part.eval_count or 0,
        eval_duration_s=(part.eval_duration or 0) * _NS,
        prompt_eval_count=part.prompt_eval_count or 0,
        prompt_eval_duration_s=(part.prompt_eval_duration or 0) * _NS,
        load_duration_s=(part.load_duration or 0) * _NS,
        total_duration_s=(part.total_duration or 0) * _NS,
        done_reason=part.done_reason,
        time_to_first_token_s=first_token,
    )


def _with_image_bytes(message: dict[str, Any]) -> dict[str, Any]:
    """The message with its base64 ``images`` as bytes, for the official client.

    The client's ``Image`` type sends bytes base64-encoded, exactly as given; a string it
    first tries as a *file path* (``Path(value).exists()``), so a short base64 text that
    happened to name a file in the working directory would send that file instead.

    Raises:
        UsageError: An image that is not base64 text. Nothing was sent.
    """
    images = message.get("images")
    if not images:
        return message
    import base64
    import binascii

    decoded: list[Any] = []
    for image in images:
        if isinstance(image, str):
            try:
                image = base64.b64decode(image, validate=True)
            except (binascii.Error, ValueError):
                raise UsageError(
                    "cannot send the request to Ollama: an image in it is not base64 text"
                ) from None
        decoded.append(image)
    return {**message, "images": decoded}


def _check_encodable(payload: Any) -> None:
    """Refuse, before sending, a request httpx could not encode as JSON.

    Encodes as httpx does (UTF-8, no NaN or infinity), so that such a request fails
    here, as the caller's input, and is never reported as something Ollama sent.

    Raises:
        UsageError: Text that is not valid UTF-8, or a number that is NaN or infinite.
    """
    try:
        json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            "cannot send the request to Ollama: its text holds bytes that are not valid UTF-8"
        ) from None
    except ValueError:
        raise UsageError(
            "cannot send the request to Ollama: a number in it is NaN or infinite"
        ) from None


def _status_error(status: int, message: str, *, model: str | None) -> OllamaHTTPError:
    if status == 404 and model:
        return ModelNotFound(model, message)
    return OllamaHTTPError(status, message or "no message")


def _pull_message(model: str, message: str) -> str:
    text = f"Ollama could not pull {model}: {message}"
    if "file does not exist" in message:
        return f"{text} (the registry has no such model; check the name)"
    return f"{text} (run the pull again to resume once this is fixed)"
