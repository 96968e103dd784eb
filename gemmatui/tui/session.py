"""What the terminal app's screens and widgets work with: one :class:`Session`.

The app (:mod:`gemmatui.tui.app`) is given a session and holds it; screens and widgets
reach it as ``self.app.session`` through :class:`SessionApp`, a Protocol of what they
need of the app, so nothing under ``tui/screens`` or ``tui/widgets`` imports the app
module (the layers read one way: app → screens → session → core).

The session holds:

* the services: the engine (an adapter of :class:`gemmatui.core.engine.Engine`:
  Ollama, llama-server or another OpenAI-compatible server), the hardware probe, the
  conversation store, the settings and the file they are saved to;
* the connection's outcome (:meth:`Session.check`): the installed Gemma 3 QAT models
  (Ollama), or the one model a fixed-model engine serves (:attr:`Session.served`);
* fit planning (:meth:`Session.plan_fit`, :meth:`Session.fit_for`), with the GGUF given
  by ``--gguf`` (and the file a llama-server serves, when it is readable here) as one
  more row, key ``gguf``;
* a llama-server the app started itself (:meth:`Session.launch`), which it stops again
  (:meth:`Session.aclose`, and at interpreter exit whatever happens).

Only the connection's reactive mirror (``installed``, ``ollama_ok``, ``ollama_error``)
lives on the app, because Textual's watchers need a DOM node.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gemmatui.core.catalog import Variant, variants_as_installed
from gemmatui.core.config import Settings, update_settings
from gemmatui.core.errors import ConfigError, OllamaError
from gemmatui.core.fit import FitReport, VariantFit, layered_settings, plan
from gemmatui.core.ollama import gemma_installed
from gemmatui.core.types import HardwareSnapshot, InstalledModel, RunningModel

if TYPE_CHECKING:
    from textual.worker import Worker

    from gemmatui.core.engine import Engine
    from gemmatui.core.hardware import HardwareProbe
    from gemmatui.core.launch import EngineProcess
    from gemmatui.core.llama_log import BufferLog
    from gemmatui.core.llamacpp import ServerProps
    from gemmatui.core.storage import ConversationStore, HistoryNotice

__all__ = [
    "RETRY_SECONDS",
    "Connector",
    "EngineFacts",
    "GgufChoice",
    "Launched",
    "Session",
    "SessionApp",
    "SessionAccess",
    "host_of",
    "session_of",
]

#: Seconds between automatic connection attempts while the engine is down.
RETRY_SECONDS = 5.0
#: The plan panel's words when a model has no plan.
NOT_IN_CATALOGUE = "No plan for this model: it is not in the Gemma 3 QAT catalogue"


@dataclass(frozen=True)
class Connector:
    """How to find the engine: where, which kind, and whether to look elsewhere.

    Attributes:
        host: The base URL (``--host``, ``OLLAMA_HOST``, config, else Ollama's default).
        engine: ``"auto"``, ``"ollama"`` or ``"llama-server"``.
        look_elsewhere: Nothing chose the host: when nothing answers there, look at
            llama-server's and LM Studio's default addresses (see
            :func:`gemmatui.core.engine.connect`).
    """

    host: str
    engine: str = "auto"
    look_elsewhere: bool = False


@dataclass(frozen=True)
class GgufChoice:
    """A GGUF file given with ``gemmatui --gguf PATH [--mmproj FILE]``.

    Attributes:
        path: The model file.
        mmproj: Its vision projector, if given.
        variant: The file as a plannable variant (key ``gguf``, tag ``gguf:<name>``).
        has_template: Whether the file carries a chat template (else llama-server is
            started with ``--chat-template gemma``).
    """

    path: Path
    mmproj: Path | None
    variant: Variant
    has_template: bool

    @classmethod
    def read(cls, path: str | Path, mmproj: str | Path | None = None) -> GgufChoice:
        """Read the file's header (and the projector's).

        Raises:
            GgufError: Missing, not a GGUF, cut short, or not Gemma 3 (exit 2).
        """
        from gemmatui.core.gguf import read_gguf, variant_from_gguf
        from gemmatui.core.launch import has_chat_template

        variant = variant_from_gguf(path, mmproj)
        has_template = has_chat_template(dict(read_gguf(path).metadata))
        return cls(Path(path), Path(mmproj) if mmproj else None, variant, has_template)


@dataclass
class Launched:
    """A llama-server this app started: its process, the plan it was started with, and
    llama.cpp's own allocations read from its log once it was ready."""

    process: EngineProcess
    row: VariantFit
    program: str
    url: str
    actual: BufferLog | None = None

    @property
    def running(self) -> bool:
        return self.process.returncode() is None


@dataclass(frozen=True)
class EngineFacts:
    """What the plan panel needs to know of the engine beside the plan.

    Attributes:
        name: The engine's name (``"Ollama"``, ``"llama-server"`` ...).
        reports_memory: Whether its list of loaded models carries sizes (Ollama's
            ``/api/ps``); llama-server's does not.
        actual: llama.cpp's allocations from the log of a server this app started.
        no_plan: Why there is no plan, said when the fit is ``None``.
    """

    name: str = "Ollama"
    reports_memory: bool = True
    actual: BufferLog | None = None
    no_plan: str = NOT_IN_CATALOGUE


class Session:
    """The app's services, connection state and planning (see the module's text).

    Args:
        engine: The engine adapter (tests pass an :class:`~gemmatui.core.ollama.OllamaClient`
            or a scripted stand-in; anything without ``kind`` counts as Ollama).
        probe: The hardware probe (live readings for the chat's panels).
        settings: The user's settings, command-line overrides applied.
        store: Saved conversations.
        hardware: The machine, if already known; otherwise read from ``probe`` on first use.
        fit_env: The Ollama server's environment (``OLLAMA_KV_CACHE_TYPE`` ...) for the
            fit; ``None`` means nothing is known, so Ollama's defaults are assumed.
        fit_env_source: Where ``fit_env`` came from, in words.
        config_path: The config file choices are saved to (default: the usual one).
        clock: Monotonic seconds, for download and token rates (tests freeze it).
        history_notice: What went wrong opening the chat history, if anything.
        connector: Detect the engine at the first :meth:`check` (``engine`` is then a
            stand-in Ollama adapter for the host, replaced by what answers).
        gguf: The file given with ``--gguf``.
    """

    def __init__(
        self,
        *,
        engine: Engine | Any,
        probe: HardwareProbe,
        settings: Settings,
        store: ConversationStore,
        hardware: HardwareSnapshot | None = None,
        fit_env: Mapping[str, str] | None = None,
        fit_env_source: str = "environment",
        config_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        history_notice: HistoryNotice | None = None,
        connector: Connector | None = None,
        gguf: GgufChoice | None = None,
    ) -> None:
        self.engine = engine
        self.probe = probe
        self.settings = settings
        self.store = store
        self._hardware = hardware
        self.fit_env: Mapping[str, str] = dict(fit_env or {})
        self.fit_env_source = fit_env_source
        self.config_path = config_path
        self.clock = clock
        self.history_notice = history_notice
        self.connector = connector
        self.gguf = gguf
        self.retry_seconds = RETRY_SECONDS
        #: The installed Gemma 3 QAT models by tag; ``None`` while the engine has not answered.
        self.installed: dict[str, InstalledModel] | None = None
        #: The model a fixed-model engine serves (llama-server); ``None`` for Ollama.
        self.served: ServerProps | None = None
        #: The engine's version or build, once it answered.
        self.version = ""
        #: The llama-server this app started, if any.
        self.launched: Launched | None = None
        self.fit_report: FitReport = None  # type: ignore[assignment]  # set by refresh_fit
        self.chosen_fit: VariantFit | None = None
        self._served_variant: tuple[str, Variant | None, str] | None = None

    # ------------------------------------------------------------------ the engine

    @property
    def kind(self) -> str:
        """``"ollama"``, ``"llama-server"`` or ``"openai"``."""
        return str(getattr(self.engine, "kind", "ollama"))

    @property
    def engine_name(self) -> str:
        """The engine's name in messages."""
        return str(getattr(self.engine, "name", "Ollama"))

    @property
    def host(self) -> str:
        """The base URL the engine is asked at."""
        return str(self.engine.host)

    @property
    def can_pull(self) -> bool:
        """Whether the engine downloads models (only Ollama does)."""
        return bool(getattr(self.engine, "can_pull", True))

    def describe_engine(self) -> str:
        """``llama-server b6500 at http://127.0.0.1:8080`` (the version once known)."""
        version = f" {self.version}" if self.version else ""
        return f"{self.engine_name}{version} at {self.host}"

    async def check(self, say: Callable[[str], None] | None = None) -> None:
        """Ask the engine what it has; this also tells whether it runs.

        The first check of a session built with a :class:`Connector` finds the engine
        (:func:`gemmatui.core.engine.connect`): ``say`` gets the line saying so when an
        engine at another default address is used.

        Raises:
            OllamaError: It does not answer, or is not an engine (the message names
                the engine and the host).
        """
        if self.connector is not None:
            from gemmatui.core.engine import connect

            found = await connect(
                self.connector.host,
                self.connector.engine,
                look_elsewhere=self.connector.look_elsewhere,
                say=say,
            )
            old, self.engine, self.connector = self.engine, found, None
            if old is not found:
                await old.aclose()
        engine = self.engine
        props = getattr(engine, "props", None)
        if self.kind == "ollama" or props is None:
            models = await engine.list_models()
            self.installed = gemma_installed(models)
            self.served = None
            if self.kind == "ollama" and hasattr(engine, "version") and not self.version:
                try:
                    self.version = await engine.version()
                except OllamaError:
                    self.version = ""
            return
        served = await props(refresh=True)
        self.version = served.build
        self.served = served
        self.installed = gemma_installed(await engine.list_models())

    async def ps(self) -> list[RunningModel]:
        """What is loaded. A llama-server does not say its memory; for one this app
        started, the sizes come from llama.cpp's log (all of it, and the part on a GPU)."""
        running = list(await self.engine.ps())
        launched = self.launched
        if launched is None or not launched.actual or self.served is None:
            return running
        log = launched.actual
        total = log.weights + log.kv + log.compute + log.output
        on_gpu = sum(
            b.bytes
            for b in log.buffers
            if not b.device.startswith("CPU") and not b.device.endswith(("_Host", "_REPACK"))
        )
        return [
            replace(r, size_bytes=total, size_vram_bytes=on_gpu)
            if r.name == self.served.model
            else r
            for r in running
        ]

    # ------------------------------------------------------------------ hardware

    @property
    def hardware(self) -> HardwareSnapshot:
        """What the machine has (read from the probe on first use unless given)."""
        if self._hardware is None:
            self._hardware = self.snapshot()
        return self._hardware

    def snapshot(self) -> HardwareSnapshot:
        """Read the probe; a failing probe gives a CPU-only machine with a note."""
        try:
            return self.probe.snapshot()
        except Exception as err:  # a driver problem must not stop the app
            return HardwareSnapshot(
                gpus=(),
                ram_total_bytes=0,
                ram_available_bytes=0,
                backend="cpu",
                source="unknown",
                notes=(f"could not read the hardware: {err}",),
            )

    # ------------------------------------------------------------------ settings and fit

    def save_settings(self, **changes: Any) -> str | None:
        """Save ``changes`` to the config file and apply them to :attr:`settings`.

        Returns:
            Why the file could not be written (the change still applies to this
            session), else ``None``.
        """
        try:
            saved = update_settings(self.config_path, **changes)
        except ConfigError as err:
            self.settings = replace(self.settings, **changes)
            return str(err)
        self.settings = replace(self.settings, **{key: getattr(saved, key) for key in changes})
        return None

    def file_variant(self) -> Variant | None:
        """The GGUF row of the model screen: ``--gguf``'s file, else the file the
        engine serves when it is readable here."""
        if self.gguf is not None:
            return self.gguf.variant
        return self.served_variant()[0]

    def served_variant(self) -> tuple[Variant | None, str]:
        """The served model's file as a variant, or why there is none (in words)."""
        served = self.served
        if served is None:
            return None, NOT_IN_CATALOGUE
        path = served.model_path
        if self._served_variant is not None and self._served_variant[0] == path:
            return self._served_variant[1], self._served_variant[2]
        variant: Variant | None = None
        if self.gguf is not None and path and _same_file(self.gguf.path, path):
            variant, why = self.gguf.variant, ""
        elif not path:
            why = (
                f"No plan: {self.engine_name} does not say which file it serves, so its "
                "memory cannot be planned here"
            )
        else:
            from gemmatui.core.gguf import GgufError, variant_from_gguf

            try:
                variant, why = variant_from_gguf(path), ""
            except GgufError as err:
                name = Path(path).name
                why = (
                    f"No plan: {self.engine_name} serves {name}, which cannot be read here "
                    f"({err}); the plan needs the file's header"
                )
        self._served_variant = (path, variant, why)
        return variant, why

    def plan_fit(self, num_ctx: int | None = None, kv_type: str | None = None) -> FitReport:
        """The fit on this machine at ``num_ctx`` / ``kv_type`` (default: the saved ones):
        the catalogue as the engine has it, then the GGUF row (see :meth:`file_variant`),
        planned as gemmatui starts llama-server (Ollama's server settings do not apply)."""
        fit_settings = layered_settings(
            self.fit_env,
            self.fit_env_source,
            config_ctx=self.settings.num_ctx,
            config_kv=self.settings.kv_cache_type,
            ctx=num_ctx,
            kv_type=kv_type,
        )
        report = plan(self.hardware, fit_settings, variants_as_installed(self.installed))
        extra = self.file_variant()
        if extra is None:
            return report
        row = self._plan_file(extra, num_ctx, kv_type).rows[0]
        return replace(report, rows=(*report.rows, row))

    def _plan_file(
        self,
        variant: Variant,
        num_ctx: int | None,
        kv_type: str | None,
        num_parallel: int | None = None,
    ) -> FitReport:
        fit_settings = layered_settings(
            {},
            "environment",
            config_ctx=self.settings.num_ctx,
            config_kv=self.settings.kv_cache_type,
            ctx=num_ctx,
            kv_type=kv_type,
            num_parallel=num_parallel,
        )
        return plan(self.hardware, fit_settings, (variant,))

    def refresh_fit(self) -> None:
        """Plan again at the saved settings (after a choice, or when the models change)."""
        self.fit_report = self.plan_fit()
        model = self.settings.model
        self.chosen_fit = next(
            (row for row in self.fit_report.rows if row.variant.tag == model), None
        )

    def chat_context(self) -> int:
        """The context every chat request carries: the saved one, else the fit's."""
        return self.settings.num_ctx or self.fit_report.settings.num_ctx or 4096

    def fit_for(self, model: str, num_ctx: int) -> tuple[VariantFit | None, EngineFacts]:
        """The plan of ``model`` at ``num_ctx`` as the engine runs it, and what the plan
        panel needs to know of the engine.

        A llama-server this app started has the plan it was started with (and
        llama.cpp's log); another llama-server is planned from the file it serves when
        that file is readable here, at its context and slots; an Ollama model from the
        catalogue.
        """
        facts = EngineFacts(name=self.engine_name, reports_memory=self.kind == "ollama")
        served = self.served
        if served is not None and model == served.model:
            launched = self.launched
            if launched is not None and launched.url == self.host:
                return launched.row, replace(facts, actual=launched.actual)
            variant, why = self.served_variant()
            if variant is None:
                return None, replace(facts, no_plan=why)
            report = self._plan_file(
                variant, served.n_ctx or num_ctx, None, num_parallel=served.total_slots
            )
            return report.rows[0], facts
        try:
            return self.plan_fit(num_ctx).row(model), facts
        except KeyError:
            return None, facts

    # ------------------------------------------------------------------ llama-server

    def launch_plan(self, num_ctx: int, kv_type: str) -> tuple[VariantFit, Any]:
        """The plan and the launch settings for ``--gguf``'s file at ``num_ctx`` / ``kv_type``.

        Raises:
            UsageError: Settings llama-server refuses (a quantized cache without flash
                attention), or no ``--gguf`` file.
            LaunchError: The model does not fit in this machine's memory.
        """
        from gemmatui.core.errors import UsageError
        from gemmatui.core.launch import launch_plan

        if self.gguf is None:
            raise UsageError("no GGUF file to serve: start gemmatui with --gguf PATH")
        report = self._plan_file(self.gguf.variant, num_ctx, kv_type)
        return launch_plan(
            report,
            model=self.gguf.path,
            mmproj=self.gguf.mmproj,
            builtin_template=not self.gguf.has_template,
        )

    async def launch(
        self,
        num_ctx: int,
        kv_type: str,
        *,
        progress: Callable[[str], None] = lambda line: None,
        timeout: float | None = None,
    ) -> Launched:
        """Start llama-server on ``--gguf``'s file with the plan's settings, wait until
        the model is loaded, and make it this session's engine.

        Port 8080 (llama-server's own) when free, else a free one (``progress`` says so).

        Args:
            num_ctx: Context per sequence.
            kv_type: KV cache type.
            progress: Receives a line at each step, for the screen.
            timeout: Seconds to wait for the load (default: ``serve``'s).

        Raises:
            UsageError: Settings llama-server refuses.
            LaunchError: No llama-server (the message says how to get one), the port
                could not be listened on, it exited while loading (its last error
                line), or it did not load in time.
        """
        from gemmatui.core.engine import engine_for
        from gemmatui.core.errors import PortInUse
        from gemmatui.core.launch import (
            DEFAULT_BIND,
            DEFAULT_LOAD_TIMEOUT,
            DEFAULT_PORT,
            EngineProcess,
            command_line,
            find_program,
            free_port,
            log_path,
            program_name,
        )

        # Plan and find the program first: a refusal leaves a running server alone.
        row, settings = self.launch_plan(num_ctx, kv_type)
        program = find_program()
        await self.stop_engine()
        try:
            port = free_port(DEFAULT_BIND, DEFAULT_PORT)
        except PortInUse:
            port = free_port(DEFAULT_BIND, 0)
            progress(f"port {DEFAULT_PORT} is in use; using {port}")
        settings = replace(settings, port=port)
        name = program_name(program)
        process = EngineProcess(command_line(settings, program), log_path(port), settings.url)
        progress(f"starting {name} on {settings.model.name}…")
        process.start()
        launched = Launched(process, row, name, settings.url)
        self.launched = launched
        try:
            await asyncio.to_thread(process.wait_ready, timeout or DEFAULT_LOAD_TIMEOUT)
        except BaseException:
            await self.stop_engine()
            raise
        launched.actual = process.buffers()
        old = self.engine
        self.engine = engine_for("llama-server", settings.url)
        self.connector = None
        self._served_variant = None
        await old.aclose()
        progress(f"{name} is serving {settings.model.name} at {settings.url}")
        return launched

    async def stop_engine(self) -> None:
        """Stop the llama-server this app started, if it runs (SIGTERM to its session,
        SIGKILL after a grace period); safe to call more than once."""
        launched, self.launched = self.launched, None
        if launched is not None:
            await asyncio.to_thread(launched.process.stop, 5.0)

    def stop_engine_now(self) -> None:
        """:meth:`stop_engine` for a signal handler or interpreter exit (blocking)."""
        launched, self.launched = self.launched, None
        if launched is not None:
            launched.process.stop(5.0)

    async def aclose(self) -> None:
        """Stop a started engine, close the engine's connections, the probe and the store."""
        try:
            await self.stop_engine()
        finally:
            try:
                await self.engine.aclose()
            finally:
                self.probe.close()
                self.store.close()


def _same_file(a: Path, b: str) -> bool:
    try:
        return a.resolve() == Path(b).resolve()
    except OSError:
        return False


class SessionApp(Protocol):
    """What screens and widgets need of the app that hosts them (``self.app``).

    The app's connection state is mirrored in Textual reactives (watch them with
    ``self.watch(self.app, "installed", ...)``); everything else is on :attr:`session`.
    """

    session: Session
    installed: dict[str, InstalledModel] | None
    ollama_ok: bool
    ollama_error: str | None
    launch_status: str | None

    def check_engine(self, manual: bool = False) -> Worker[None]:
        """Ask the engine again (a worker); the reactives follow the outcome."""
        ...

    def use_model(self, model: str, num_ctx: int, kv_cache_type: str) -> None:
        """Save the choice and open the chat with it."""
        ...

    def open_chat(self, model: str, num_ctx: int) -> None:
        """Replace every screen with a chat with ``model`` at ``num_ctx``."""
        ...

    def serve_gguf(self, num_ctx: int, kv_type: str) -> Worker[None]:
        """Start llama-server on ``--gguf``'s file, then open the chat on it (a worker)."""
        ...


class SessionAccess:
    """For screens: :attr:`session` (the app's services) and :attr:`host` (the app as
    screens see it), without importing the app."""

    @property
    def session(self) -> Session:
        """The app's services: the engine, the store, the settings, the probe, the fit."""
        return session_of(self)

    @property
    def host(self) -> SessionApp:
        """The app, as the screens see it."""
        return host_of(self)


def session_of(node: Any) -> Session:
    """The session of the app a widget or screen belongs to."""
    return host_of(node).session


def host_of(node: Any) -> SessionApp:
    """The app a widget or screen belongs to, as :class:`SessionApp`."""
    app: SessionApp = node.app
    return app

