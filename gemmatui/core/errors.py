"""Exit codes and the project's own error types.

One exit-code table for every command (documented in README.md and `gemmatui --help`):

====  ==========================================================
code  meaning
====  ==========================================================
0     ok
1     does not fit / generic failure
2     usage error (bad flag or value)
3     engine (Ollama, llama-server) unreachable
4     model not installed
5     error during generation
130   interrupted (Ctrl-C)
====  ==========================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_MODEL_MISSING = 4
EXIT_GENERATION = 5
EXIT_INTERRUPTED = 130


class GemmaTuiError(Exception):
    """Base of every error gemmatui raises on purpose. ``str(err)`` is one line for a person."""

    exit_code = EXIT_FAIL


class UsageError(GemmaTuiError):
    exit_code = EXIT_USAGE


class ConfigError(GemmaTuiError):
    """The config file could not be read or written (bad input from the user: exit 2)."""

    exit_code = EXIT_USAGE


# --------------------------------------------------------------------------- Ollama


class OllamaError(GemmaTuiError):
    """Anything that went wrong talking to Ollama."""

    exit_code = EXIT_FAIL


class OllamaUnavailable(OllamaError):
    """Nothing answers at the host (connection refused, DNS failure, connect timeout)."""

    exit_code = EXIT_UNREACHABLE


class NotOllama(OllamaUnavailable):
    """Something answers at the host, but it is not Ollama (``/api/version`` is not
    Ollama's): llama.cpp's llama-server, another service, a wrong path. No Ollama is
    reachable there, hence the same exit code as :class:`OllamaUnavailable`.

    Attributes:
        looks_like: What the server seems to be (``"llama.cpp's llama-server"``), or ``""``.
    """

    def __init__(self, message: str, looks_like: str = "") -> None:
        self.looks_like = looks_like
        super().__init__(message)


class OllamaTimeout(OllamaError):
    """The server accepted the connection but stopped sending (read timeout)."""

    exit_code = EXIT_GENERATION


class OllamaHTTPError(OllamaError):
    """A non-2xx answer. ``status`` is the HTTP status, ``message`` the engine's own error
    text, ``engine`` the engine that answered (``"Ollama"``, ``"llama-server"`` ...)."""

    def __init__(self, status: int, message: str, hint: str = "", *, engine: str = "Ollama") -> None:
        self.status = status
        self.message = message
        self.hint = hint
        self.engine = engine
        text = f"{engine} answered {status}: {message}"
        super().__init__(f"{text} ({hint})" if hint else text)


class ModelNotFound(OllamaHTTPError):
    """The model is not installed (404). The message says how to pull it."""

    exit_code = EXIT_MODEL_MISSING

    def __init__(self, model: str, message: str = "", status: int = 404) -> None:
        from gemmatui.core.catalog import find_variant

        self.model = model
        variant = find_variant(model)
        # `gemmatui pull` takes the catalogue's variants; anything else is Ollama's business.
        hint = f"gemmatui pull {variant.key}" if variant else f"ollama pull {model}"
        super().__init__(status, message or f"model '{model}' not found", hint)

    def __str__(self) -> str:
        return f"model '{self.model}' is not installed; pull it first: {self.hint}"


class OllamaStreamError(OllamaError):
    """A stream broke after it started: an in-band ``{"error": ...}`` line, a dropped
    connection or a malformed line. ``partial`` holds what was received before it."""

    exit_code = EXIT_GENERATION

    def __init__(self, message: str, partial: str = "") -> None:
        self.partial = partial
        super().__init__(message)


class OllamaPullError(OllamaError):
    """A pull stopped before it finished: the registry refused it (unknown tag), the
    server could not store it (disk full) or the connection dropped. What was already
    downloaded stays on the server, so pulling again resumes."""

    exit_code = EXIT_FAIL

    def __init__(self, model: str, message: str) -> None:
        self.model = model
        super().__init__(message)


class NoSuitableModel(GemmaTuiError):
    """No model was named and none of the installed Gemma 3 QAT variants suits this
    machine. The message says which variant to pull."""

    exit_code = EXIT_MODEL_MISSING


# --------------------------------------------------------------------------- any engine
#
# The errors above were written for Ollama; the engine port (gemmatui.core.engine) raises
# the same types for every engine, with messages that name the engine that answered.
# These engine-neutral names are the same classes (same exit codes), for new code.

EngineError = OllamaError
EngineUnavailable = OllamaUnavailable
EngineTimeout = OllamaTimeout
EngineHTTPError = OllamaHTTPError
EngineStreamError = OllamaStreamError


class CannotPull(NotOllama):
    """A pull asked of an engine that cannot download models (llama-server serves the
    file it was started with; LM Studio downloads in its own app). There is no Ollama
    at the host, hence exit 3 like :class:`NotOllama`."""


class LaunchError(GemmaTuiError):
    """``gemmatui serve`` could not start llama-server (none installed, the port is
    taken, it exited while loading). The message says what to do (exit 1)."""

    exit_code = EXIT_FAIL


class PortInUse(LaunchError):
    """The port ``serve`` was asked to listen on is taken (exit 1)."""

    def __init__(self, message: str, port: int) -> None:
        self.port = port
        super().__init__(message)
