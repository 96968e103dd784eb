"""The engine port: one interface for every server gemmatui chats through.

Commands and screens talk to an :class:`Engine`, never to an adapter. Two adapters
satisfy it:

* :class:`OllamaEngine` — today's :class:`~gemmatui.core.ollama.OllamaClient`, unchanged
  (it only gains the port's ``kind``, ``name``, ``can_pull`` and :meth:`served`);
* :class:`~gemmatui.core.llamacpp.LlamaServerClient` — llama.cpp's ``llama-server``, and
  the OpenAI-compatible part of other servers (LM Studio).

:func:`connect` picks the adapter: ``engine="ollama"`` or ``"llama-server"`` trusts the
user; ``"auto"`` asks the host what it is (:func:`gemmatui.core.detect.detect`) and,
when nothing answers at Ollama's default address and the host was not given
explicitly, looks at llama-server's and LM Studio's default addresses and uses what
it finds there (saying so through ``say``).

What the engines do differently, in the port's terms:

==================  ===============================  ===============================
                    Ollama                           llama-server (and LM Studio)
==================  ===============================  ===============================
models              every installed tag              the one it was started with
``served()``        ``None`` (any tag, loaded on     its model, context per slot,
                    demand)                          slots, vision
context             per request (``num_ctx``)        fixed at start (``-c``)
memory              ``/api/ps`` (size, VRAM)         not over HTTP: the engine's log
``pull``            yes                              no: :class:`CannotPull` (exit 3)
==================  ===============================  ===============================

Errors are the project's own types (:mod:`gemmatui.core.errors`) and name the engine
that answered. Nothing heavy is imported here: the HTTP stacks load when a client
makes its first request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from gemmatui.core.errors import OllamaUnavailable, UsageError

if TYPE_CHECKING:
    from gemmatui.core.detect import Detected
    from gemmatui.core.llamacpp import LlamaServerClient, ServerProps
    from gemmatui.core.ollama import OllamaClient
    from gemmatui.core.types import ChatChunk, InstalledModel, PullProgress, RunningModel

__all__ = ["ENGINE_NAMES", "Engine", "OllamaEngine", "connect", "engine_for"]

#: The engine kinds :func:`connect` returns, and their names in messages.
ENGINE_NAMES: dict[str, str] = {
    "ollama": "Ollama",
    "llama-server": "llama-server",
    "openai": "the OpenAI-compatible server",
}

@runtime_checkable
class Engine(Protocol):
    """What commands and screens need of a chat engine.

    Attributes:
        kind: ``"ollama"``, ``"llama-server"`` or ``"openai"`` (another
            OpenAI-compatible server, LM Studio among them).
        name: The engine's name in messages (``"Ollama"``, ``"llama-server"`` ...).
        host: The base URL it talks to.
        can_pull: Whether :meth:`pull` can download models (only Ollama can).
    """

    kind: str
    name: str
    host: str
    can_pull: bool

    async def version(self) -> str:
        """The engine's version or build; also the check that it is this engine."""
        ...

    async def list_models(self) -> list[InstalledModel]:
        """The models it can chat with (installed tags; the served model)."""
        ...

    async def ps(self) -> list[RunningModel]:
        """What is loaded, with its context and memory where the engine tells it."""
        ...

    def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        num_ctx: int | None = None,
        keep_alive: str | int | float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[ChatChunk]:
        """Stream a reply: text chunks, then one ``done`` chunk with the stats."""
        ...

    def pull(self, model: str) -> AsyncIterator[PullProgress]:
        """Download ``model`` with progress; :class:`CannotPull` where the engine cannot."""
        ...

    async def served(self) -> ServerProps | None:
        """The one model a fixed-model engine serves (and its context), else ``None``."""
        ...

    async def is_running(self) -> bool:
        """Whether the engine answers (never raises)."""
        ...

    async def aclose(self) -> None:
        """Close its connections."""
        ...

    async def __aenter__(self) -> Engine: ...

    async def __aexit__(self, *exc: object) -> None: ...


def _ollama_engine_class() -> type:
    """:class:`OllamaEngine`, built on first use so that importing this module does
    not import the Ollama client."""
    global _OLLAMA_ENGINE
    if _OLLAMA_ENGINE is None:
        from gemmatui.core.ollama import OllamaClient

        class OllamaEngine(OllamaClient):
            """Ollama behind the port: :class:`OllamaClient`, unchanged."""

            kind = "ollama"
            name = "Ollama"
            can_pull = True

            async def served(self) -> None:
                """Ollama loads whichever installed model a request names."""
                return None

        _OLLAMA_ENGINE = OllamaEngine
    return _OLLAMA_ENGINE


_OLLAMA_ENGINE: type | None = None


def OllamaEngine(host: str, **kwargs: Any) -> OllamaClient:  # noqa: N802 - a class to callers
    """An Ollama adapter of the port (an :class:`~gemmatui.core.ollama.OllamaClient`
    with ``kind``, ``name``, ``can_pull`` and ``served``).

    Args:
        host: Base URL.
        **kwargs: ``connect_timeout``, ``read_timeout`` as for ``OllamaClient``.
    """
    return _ollama_engine_class()(host, **kwargs)


def engine_for(kind: str, host: str, **kwargs: Any) -> Engine:
    """The adapter for an engine of ``kind`` at ``host`` (no request is made).

    Args:
        kind: ``"ollama"``, ``"llama-server"`` or ``"openai"``.
        host: Base URL.
        **kwargs: ``connect_timeout``, ``read_timeout``.

    Raises:
        UsageError: An unknown kind.
    """
    if kind == "ollama":
        return OllamaEngine(host, **kwargs)  # type: ignore[return-value]
    if kind in ("llama-server", "openai"):
        from gemmatui.core.llamacpp import LlamaServerClient

        client: LlamaServerClient = LlamaServerClient(host, kind=kind, **kwargs)
        return client  # type: ignore[return-value]
    raise UsageError(f"unknown engine {kind!r}")


async def connect(
    host: str,
    engine: str = "auto",
    *,
    look_elsewhere: bool = False,
    say: Callable[[str], None] | None = None,
    connect_timeout: float = 3.0,
    read_timeout: float = 300.0,
) -> Engine:
    """The engine at ``host``, as an adapter of the port.

    Args:
        host: Base URL (already parsed).
        engine: ``"auto"`` (ask the host), ``"ollama"`` or ``"llama-server"`` (trusted:
            no detection; the first request fails with that engine's own message if
            it is not there).
        look_elsewhere: The host is Ollama's default one, not the user's choice: when
            nothing answers there, look at llama-server's and LM Studio's default
            addresses. With ``engine="auto"`` the first one found is used (and ``say``
            is told); with ``engine="ollama"`` it is only named in the error.
        say: Receives one line for the user (on stderr in the CLI).
        connect_timeout, read_timeout: For the adapter's requests.

    Returns:
        The adapter; use it as an async context manager.

    Raises:
        OllamaUnavailable: Nothing answers (exit 3); the message names what answers
            elsewhere when ``look_elsewhere`` found something it may not use.
        NotAnEngine: Something answers at ``host`` that is not an engine (exit 3).
    """
    from gemmatui.core.config import parse_engine

    engine = parse_engine(engine)
    timeouts = {"connect_timeout": connect_timeout, "read_timeout": read_timeout}
    if engine != "auto":
        if look_elsewhere and engine == "ollama":
            return _HintingOllama(host, **timeouts)  # type: ignore[return-value]
        return engine_for(engine, host, **timeouts)
    from gemmatui.core.detect import detect

    try:
        found = await detect(host, timeout=connect_timeout)
    except OllamaUnavailable as err:
        if type(err) is not OllamaUnavailable:  # NotAnEngine: something else answered
            raise
        elsewhere = await _look_elsewhere(host) if look_elsewhere else []
        if elsewhere:
            other = elsewhere[0]
            if say is not None:
                say(
                    f"nothing answers at Ollama's default address {host}; using "
                    f"{other.describe()} (choose with --host URL)"
                )
            return _adapter(other, timeouts)
        raise OllamaUnavailable(
            f"cannot reach Ollama at {host}: is Ollama running? start it with `ollama serve`"
        ) from None
    return _adapter(found, timeouts)


def _adapter(found: Detected, timeouts: Mapping[str, float]) -> Engine:
    return engine_for(found.kind, found.host, **timeouts)


async def _look_elsewhere(host: str) -> list[Detected]:
    from gemmatui.core.detect import probe_defaults

    return [f for f in await probe_defaults(skip=host) if f.kind != "ollama"]


def _HintingOllama(host: str, **kwargs: Any) -> OllamaClient:  # noqa: N802
    """An Ollama adapter for ``--engine ollama`` at the default address: when nothing
    answers, its "cannot reach Ollama" also names an engine that answers at another
    default address (it is not used: the user asked for Ollama)."""
    base = _ollama_engine_class()

    class HintingOllama(base):  # type: ignore[misc, valid-type]
        async def version(self) -> str:
            try:
                return await super().version()
            except OllamaUnavailable as err:
                if type(err) is not OllamaUnavailable:
                    raise
                from gemmatui.core.detect import found_elsewhere

                hint = found_elsewhere(await _look_elsewhere(self.host))
                if not hint:
                    raise
                raise OllamaUnavailable(f"{err}; {hint} --engine llama-server") from err

    return HintingOllama(host, **kwargs)
