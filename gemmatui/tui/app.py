"""The terminal app: :class:`GemmaApp`, its production factory and ``run_tui``.

The app gets everything it talks to through its constructor, as a
:class:`~gemmatui.tui.session.Session` (the engine, a hardware probe, the conversation
store, the settings), so tests drive the real app with fakes; :func:`build_app` is the
one place that wires the real ones. Screens and widgets use the session and never
import this module.

The engine is whatever answers (``--engine``, ``GEMMATUI_ENGINE``, config ``engine``,
else ``auto``): Ollama, or a llama-server, whose one model the chat opens on. With
``--gguf FILE`` the model screen plans that file, and Enter on its row starts
llama-server on it; the app stops that server when it ends (quit, an error, SIGTERM,
SIGHUP).

Screens: ``models`` (hardware, fit, choice; the first screen until a model is chosen),
``pull``, ``chat`` (:mod:`gemmatui.tui.screens.chat`) and ``help``.

Quitting (``ctrl+q``; a bare ``q`` except on the chat screen, where letters are typed)
asks first while a reply streams or a download runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive, var
from textual.timer import Timer

from gemmatui.core.catalog import capped_context, model_tag, variants_as_installed
from gemmatui.core.config import Settings
from gemmatui.core.errors import EXIT_USAGE, ConfigError, GemmaTuiError, OllamaError, UsageError
from gemmatui.core.fit import FitReport, VariantFit
from gemmatui.core.types import HardwareSnapshot, InstalledModel
from gemmatui.core.units import format_ctx
from gemmatui.tui.commands import GemmaCommands
from gemmatui.tui.screens.dialogs import ConfirmDialog
from gemmatui.tui.screens.help import HelpScreen
from gemmatui.tui.screens.models import ModelsScreen
from gemmatui.tui.screens.pull import PullScreen
from gemmatui.tui.session import Connector, GgufChoice, Session
from gemmatui.tui.terminal import require_terminal
from gemmatui.tui.themes import DEFAULT_THEME, ThemeSet, load_themes

if TYPE_CHECKING:
    from gemmatui.core.hardware import HardwareProbe
    from gemmatui.core.storage import ConversationStore, HistoryNotice


class GemmaApp(App[int]):
    """Recommend, pull and chat with Gemma 3 QAT models through Ollama or llama-server.

    Give it a :class:`~gemmatui.tui.session.Session` (``session=``), or the services
    one is assembled from:

    Args:
        session: Everything below in one object (then the other arguments are unused).
        client: The engine (an :class:`~gemmatui.core.ollama.OllamaClient`, or any
            adapter of :class:`~gemmatui.core.engine.Engine`).
        probe: The hardware probe (live VRAM readings for the chat's panel).
        settings: The user's settings, command-line overrides applied.
        store: Saved conversations.
        hardware: The machine, if already known; otherwise ``probe.snapshot()`` on mount.
        fit_env: The Ollama server's environment (``OLLAMA_KV_CACHE_TYPE`` ...) for the fit;
            ``None`` means nothing is known, so Ollama's defaults are assumed.
        fit_env_source: Where ``fit_env`` came from, in words.
        config_path: The config file choices are saved to (default: the usual one).
        themes: The themes found on disk, if already loaded; otherwise loaded on mount.
        clock: Monotonic seconds, for download rates (tests freeze it).
        history_notice: What went wrong opening the chat history (a damaged file moved
            aside, or history off); the chat and model screens show it in a banner.

    Attributes:
        session: The services, the connection's outcome and the fit planning; screens
            and widgets use it (they never import this module).
        installed: The installed Gemma 3 QAT models by tag; ``None`` while the engine
            has not answered (a reactive mirror of ``session.installed``).
    """

    TITLE = "gemmatui"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {GemmaCommands}
    SCREENS: ClassVar[dict[str, Callable[[], Any]]] = {"models": ModelsScreen, "help": HelpScreen}
    BINDINGS: ClassVar[list[BindingType]] = [
        # Each printable key has a second one that a focused prompt does not swallow.
        Binding("m,ctrl+o", "models", "Models"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+t", "change_theme", "Theme"),
        Binding("r,f5", "retry_ollama", "Retry Ollama"),
        Binding("ctrl+q", "quit", "Quit"),
        # A bare letter quits only where nothing takes typing: never on the chat screen,
        # where a letter meant for the prompt or the conversation list must not end the app.
        Binding("q", "quit(True)", "Quit", show=False),
    ]

    ollama_ok: reactive[bool] = reactive(False)
    """Whether the engine answered the last check."""
    ollama_error: var[str | None] = var(None)
    """Why the last check failed; ``None`` while the engine answers or before the first check."""
    installed: var[dict[str, InstalledModel] | None] = var(None)
    launch_status: var[str | None] = var(None)
    """What starting llama-server is doing (``--gguf``); ``None`` when nothing is starting."""

    def __init__(
        self,
        *,
        session: Session | None = None,
        client: Any = None,
        probe: HardwareProbe | None = None,
        settings: Settings | None = None,
        store: ConversationStore | None = None,
        hardware: HardwareSnapshot | None = None,
        fit_env: Mapping[str, str] | None = None,
        fit_env_source: str = "environment",
        config_path: Path | None = None,
        themes: ThemeSet | None = None,
        clock: Callable[[], float] = time.monotonic,
        history_notice: HistoryNotice | None = None,
    ) -> None:
        super().__init__()
        if session is None:
            assert client is not None and probe is not None and store is not None
            session = Session(
                engine=client,
                probe=probe,
                settings=settings or Settings(),
                store=store,
                hardware=hardware,
                fit_env=fit_env,
                fit_env_source=fit_env_source,
                config_path=config_path,
                clock=clock,
                history_notice=history_notice,
            )
        self.session = session
        self._themes = themes
        self._theme_ready = False
        self._retry_timer: Timer | None = None
        self._quit_dialog: ConfirmDialog | None = None
        self._followed: str | None = None  # the served model the chat was last opened on

    # ------------------------------------------------------------------ the session's parts

    @property
    def client(self) -> Any:
        """The engine adapter (``session.engine``)."""
        return self.session.engine

    @property
    def probe(self) -> HardwareProbe:
        return self.session.probe

    @probe.setter
    def probe(self, probe: HardwareProbe) -> None:
        self.session.probe = probe

    @property
    def settings(self) -> Settings:
        return self.session.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self.session.settings = settings

    @property
    def store(self) -> ConversationStore:
        return self.session.store

    @property
    def clock(self) -> Callable[[], float]:
        return self.session.clock

    @property
    def config_path(self) -> Path | None:
        return self.session.config_path

    @property
    def history_notice(self) -> HistoryNotice | None:
        return self.session.history_notice

    @property
    def retry_seconds(self) -> float:
        return self.session.retry_seconds

    @property
    def fit_env(self) -> Mapping[str, str]:
        return self.session.fit_env

    @property
    def fit_report(self) -> FitReport:
        """The fit for the saved context and KV cache type."""
        return self.session.fit_report

    @property
    def chosen_fit(self) -> VariantFit | None:
        """``fit_report``'s row of the chosen model (``None`` when none is chosen or it
        is not one of the catalogue's variants)."""
        return self.session.chosen_fit

    @property
    def hardware(self) -> HardwareSnapshot:
        """What the machine has (taken from the probe on mount unless given)."""
        return self.session.hardware

    # ------------------------------------------------------------------ start-up

    def on_mount(self) -> None:
        self._register_themes()
        self.session.hardware  # noqa: B018 - read the probe once, now
        self.session.refresh_fit()
        self._retry_timer = self.set_interval(
            self.session.retry_seconds, self._auto_retry, pause=True
        )
        if self.settings.model and self.session.gguf is None:
            self.check_engine()
            self.open_chat(self.settings.model, self.chat_context())
        else:
            self.push_screen("models")  # which checks the engine each time it shows

    async def on_unmount(self) -> None:
        # However the app ends (quit, an error, a signal), a llama-server it started
        # does not outlive it.
        await self.session.stop_engine()

    def _register_themes(self) -> None:
        found = self._themes or load_themes()
        for theme in found.themes.values():
            self.register_theme(theme)
        for problem in found.problems:
            self.notify(problem, title="Theme file skipped", severity="warning", markup=False)
        wanted = self.settings.theme
        if wanted not in self.available_themes:
            self.notify(
                f"There is no theme called {wanted!r}; using {DEFAULT_THEME}.",
                title="Unknown theme",
                severity="warning",
                markup=False,
            )
            wanted = DEFAULT_THEME
        self.theme = wanted
        self._theme_ready = True

    # ------------------------------------------------------------------ settings and fit

    def save_settings(self, **changes: Any) -> None:
        """Save ``changes`` to the config file and apply them to :attr:`settings`.

        A file that cannot be written is reported with a notification; the change
        still applies to this session.
        """
        problem = self.session.save_settings(**changes)
        if problem is not None:
            self.notify(problem, title="Settings not saved", severity="error", markup=False)

    def watch_theme(self, theme: str) -> None:
        if self._theme_ready and theme != self.settings.theme:
            self.save_settings(theme=theme)

    def plan_fit(self, num_ctx: int | None = None, kv_type: str | None = None) -> FitReport:
        """The fit on this machine at ``num_ctx`` / ``kv_type`` (default: the saved ones)."""
        return self.session.plan_fit(num_ctx, kv_type)

    def chat_context(self) -> int:
        """The context every chat request carries: the saved one, else the fit's."""
        return self.session.chat_context()

    # ------------------------------------------------------------------ the engine

    @work(exclusive=True, group="ollama")
    async def check_engine(self, manual: bool = False) -> None:
        """Ask the engine what it has; this also tells whether it runs.

        A fixed-model engine (llama-server) found here opens the chat with its model.

        Args:
            manual: The user asked (key ``r``): say so when it still fails.
        """
        await self._check(manual)

    check_ollama = check_engine  # the name screens and tests used before engines

    async def _check(self, manual: bool = False) -> None:
        session = self.session
        was_down = self.ollama_error is not None
        try:
            await session.check(say=self._say)
        except OllamaError as err:
            self.installed = None
            self.ollama_ok = False
            self.ollama_error = str(err)
            if self._retry_timer is not None:
                self._retry_timer.resume()
            if manual:
                self.notify(
                    f"Still no answer from {session.host}.",
                    title=f"{session.engine_name} is not running",
                    severity="warning",
                    markup=False,
                )
            return
        self.installed = session.installed
        self.ollama_ok = True
        self.ollama_error = None
        if self._retry_timer is not None:
            self._retry_timer.pause()
        if was_down:
            self.notify(
                f"Connected to {session.describe_engine()}.",
                title=f"{session.engine_name} is back",
                markup=False,
            )
        self._follow_served()

    def _say(self, line: str) -> None:
        self.notify(line, title="Engine found", markup=False, timeout=10)

    def _follow_served(self) -> None:
        """A fixed-model engine serves one model: chat with it (once per model served)."""
        from gemmatui.tui.screens.chat import ChatScreen

        served = self.session.served
        if served is None or served.model == self._followed:
            return
        self._followed = served.model
        chat = next((s for s in reversed(self.screen_stack) if isinstance(s, ChatScreen)), None)
        if chat is not None and chat.model == served.model:
            return
        ctx = served.n_ctx or self.chat_context()
        self.notify(
            f"{self.session.describe_engine()} serves {served.model}"
            + (f" at {format_ctx(served.n_ctx)} of context per slot" if served.n_ctx else "")
            + ": chatting with it. Pulling and switching models need Ollama.",
            title=f"{self.session.engine_name} serves one model",
            markup=False,
            timeout=8,
        )
        # From the event loop, not from inside the check's worker.
        self.call_later(self.open_chat, served.model, ctx)

    def _auto_retry(self) -> None:
        self.check_engine()

    def watch_installed(self) -> None:
        if self.session.fit_report is not None:  # planned once mounted
            self.session.refresh_fit()

    def watch_ollama_error(self, before: str | None, now: str | None) -> None:
        if (before is None) != (now is None):
            self.refresh_bindings()  # `r` is offered only while the engine is down

    # ------------------------------------------------------------------ llama-server

    @work(exclusive=True, group="launch")
    async def serve_gguf(self, num_ctx: int, kv_type: str) -> None:
        """Start llama-server on ``--gguf``'s file with the plan at ``num_ctx`` /
        ``kv_type``, then open the chat on it; progress and errors in words."""
        session = self.session
        launched = session.launched
        if launched is not None and launched.running and session.served is not None:
            self.open_chat(session.served.model, session.served.n_ctx or num_ctx)
            return

        def progress(line: str) -> None:
            self.launch_status = line

        try:
            await session.launch(num_ctx, kv_type, progress=progress)
        except GemmaTuiError as err:
            self.launch_status = None
            self.notify(
                str(err), title="llama-server did not start", severity="error", markup=False
            )
            return
        self._followed = None
        self.ollama_error = None  # a new engine: not "back", just there
        await self._check()
        self.launch_status = None

    # ------------------------------------------------------------------ navigation

    def use_model(self, model: str, num_ctx: int, kv_cache_type: str) -> None:
        """Save the choice (model, context, KV cache type) and open the chat with it."""
        self.save_settings(model=model, num_ctx=num_ctx, kv_cache_type=kv_cache_type)
        self.session.refresh_fit()
        self.open_chat(model, num_ctx)

    def open_chat(self, model: str, num_ctx: int) -> None:
        """Replace every screen with a chat with ``model`` at ``num_ctx`` (lowered to the
        model's maximum context, and said so).

        A chat already open goes on with the same conversation; a reply still streaming
        there is stopped, and the new chat shows it (saved as partial) before anything
        else, so the next request carries it.
        """
        from gemmatui.tui.screens.chat import ChatScreen

        old = next((s for s in reversed(self.screen_stack) if isinstance(s, ChatScreen)), None)
        ending = [] if old is None or old.reply_worker is None else [old.reply_worker]
        conversation_id = None if old is None or old.conversation is None else old.conversation.id
        used = capped_context(model, num_ctx, variants_as_installed(self.installed))
        for _ in range(len(self.screen_stack) - 1):
            self.pop_screen()
        self.push_screen(
            ChatScreen(
                model,
                used,
                requested_ctx=num_ctx,
                conversation_id=conversation_id,
                after=ending,
            )
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry_ollama":
            return self.ollama_error is not None
        if action == "models":
            return not any(isinstance(screen, ModelsScreen) for screen in self.screen_stack)
        if action == "quit" and parameters == (True,):  # the bare letter
            from gemmatui.tui.screens.chat import ChatScreen

            return not isinstance(self.screen, ChatScreen)
        return True

    def busy_with(self) -> str | None:
        """What quitting now would cut short, in words; ``None`` when nothing."""
        from gemmatui.tui.screens.chat import ChatScreen

        for screen in self.screen_stack:
            if isinstance(screen, PullScreen) and screen.state == "running":
                return (
                    f"{screen.tag} is still downloading. What has arrived stays on disk; "
                    "pulling it again resumes from there."
                )
            if isinstance(screen, ChatScreen) and screen.generating:
                return (
                    "A reply is still streaming. Quitting stops it; what arrived is saved "
                    "as a partial reply."
                )
        return None

    async def action_quit(self, letter: bool = False) -> None:
        """Quit; while a reply streams or a download runs, ask first.

        Args:
            letter: Pressed as a bare ``q`` (refused on the chat screen by
                :meth:`check_action`).
        """
        busy = self.busy_with()
        if busy is None or (self._quit_dialog is not None and self.screen is self._quit_dialog):
            self.exit()  # nothing to lose, or asked twice: quit now
            return

        def answered(yes: bool | None) -> None:
            self._quit_dialog = None
            if yes:
                self.exit()

        self._quit_dialog = ConfirmDialog("Quit gemmatui?", busy, yes="Quit", no="Stay")
        self.push_screen(self._quit_dialog, answered)

    def action_models(self) -> None:
        """Open the model screen (hardware, fit, context and KV cache)."""
        self.push_screen("models")

    def action_help(self) -> None:
        """Show every key binding."""
        self.push_screen("help")

    def action_retry_ollama(self) -> None:
        """Try to reach the engine again now."""
        self.check_engine(manual=True)


def _apply_arguments(
    settings: Settings, args: argparse.Namespace, theme_names: list[str]
) -> Settings:
    """Apply ``--theme``, ``--ctx`` and ``--model`` (for this run only; nothing is saved).

    Raises:
        UsageError: A value is not valid; the message lists the valid ones.
    """
    changes: dict[str, Any] = {}
    if args.theme is not None:
        if args.theme not in theme_names:
            raise UsageError(
                f"unknown theme {args.theme!r}: choose one of {', '.join(theme_names)}"
            )
        changes["theme"] = args.theme
    if args.ctx is not None:
        from gemmatui.core.units import UnitError, parse_ctx

        try:
            changes["num_ctx"] = parse_ctx(args.ctx)
        except UnitError as err:
            raise UsageError(str(err).replace("context length", "--ctx", 1)) from None
    model = args.model if args.model is not None else settings.model
    if model is not None:
        changes["model"] = model_tag(model)
    return replace(settings, **changes)


def _gguf_choice(args: argparse.Namespace) -> GgufChoice | None:
    """``--gguf`` / ``--mmproj`` read and checked before the app starts.

    Raises:
        UsageError: ``--mmproj`` without ``--gguf``, or ``--gguf`` with ``--model``.
        GgufError: The file is missing, not a GGUF, cut short or not Gemma 3.
    """
    gguf, mmproj = getattr(args, "gguf", None), getattr(args, "mmproj", None)
    if gguf is None:
        if mmproj is not None:
            raise UsageError("--mmproj goes with --gguf (the model file it belongs to)")
        return None
    if getattr(args, "model", None) is not None:
        raise UsageError("--model and --gguf both name a model: choose one")
    return GgufChoice.read(gguf, mmproj)


def build_app(args: argparse.Namespace) -> GemmaApp:
    """Wire the real app: config, engine, hardware probe, conversation store.

    The engine is found when the app first asks (:meth:`Session.check`): ``--engine``
    (else ``GEMMATUI_ENGINE``, config, ``auto``) at ``--host`` (else ``OLLAMA_HOST``,
    config, Ollama's default). With ``auto`` and no host chosen, an engine at
    llama-server's or LM Studio's default address is used when nothing answers at
    Ollama's, and a notification says so.

    Raises:
        ConfigError: The config file is not valid.
        UsageError: A command-line value (``--theme``, ``--ctx``, ``--model``,
            ``--host``, ``--engine``, ``--gguf``) or an Ollama server setting is not valid.
    """
    from gemmatui.core.config import config_path, data_dir, load_settings, resolve_engine
    from gemmatui.core.engine import engine_for
    from gemmatui.core.hardware import detect_probe
    from gemmatui.core.hosts import resolve_host
    from gemmatui.core.server_settings import read_server_env
    from gemmatui.core.storage import open_history

    path = config_path()
    themes = load_themes()
    settings = _apply_arguments(load_settings(path), args, themes.names())
    gguf = _gguf_choice(args)
    host, host_source = resolve_host(args.host, os.environ, settings)
    engine, _ = resolve_engine(getattr(args, "engine", None), os.environ, settings)
    server = read_server_env(host)
    store, history_notice = open_history(data_dir())
    session = Session(
        # Until the first check finds what answers: Ollama's adapter for the host.
        engine=engine_for("ollama" if engine == "auto" else engine, host),
        probe=detect_probe(),
        settings=settings,
        store=store,
        fit_env=server.values,
        fit_env_source=server.source,
        config_path=path,
        history_notice=history_notice,
        connector=Connector(host, engine, look_elsewhere=host_source == "default"),
        gguf=gguf,
    )
    return GemmaApp(session=session, themes=themes)


def run_tui(args: argparse.Namespace) -> int:
    """Run the terminal app; returns the exit code.

    Bad settings or arguments, or no terminal to run in (stdin or stdout redirected),
    print one line and return 2 (no traceback, no escape codes). SIGTERM and SIGHUP end
    the app as quitting does, so a llama-server it started is stopped.
    """
    try:
        require_terminal()
        app = build_app(args)
    except (ConfigError, UsageError) as err:
        print(f"gemmatui: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except GemmaTuiError as err:
        print(f"gemmatui: error: {err}", file=sys.stderr)
        return err.exit_code

    # Pictures inline where the terminal can draw them: asked of the terminal now,
    # before Textual reads standard input (see prepare_inline_images).
    from gemmatui.tui.widgets.attachments import prepare_inline_images

    prepare_inline_images()

    async def run() -> None:
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, app.exit)
        try:
            await app.run_async()
        finally:
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await app.session.aclose()

    try:
        asyncio.run(run())
    finally:
        app.session.stop_engine_now()  # a crash before the session closed
    return app.return_code or 0
