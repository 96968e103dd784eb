"""The terminal app: :class:`GemmaApp`, its production factory and ``run_tui``.

The app gets everything it talks to through its constructor (an Ollama client, a
hardware probe, the conversation store, the settings), so tests drive the real app
with fakes; :func:`build_app` is the one place that wires the real ones.

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
from gemmatui.core.config import Settings, update_settings
from gemmatui.core.errors import EXIT_USAGE, ConfigError, GemmaTuiError, OllamaError, UsageError
from gemmatui.core.fit import FitReport, VariantFit, layered_settings, plan
from gemmatui.core.ollama import gemma_installed
from gemmatui.core.types import HardwareSnapshot, InstalledModel
from gemmatui.tui.commands import GemmaCommands
from gemmatui.tui.screens.dialogs import ConfirmDialog
from gemmatui.tui.screens.help import HelpScreen
from gemmatui.tui.screens.models import ModelsScreen
from gemmatui.tui.screens.pull import PullScreen
from gemmatui.tui.terminal import require_terminal
from gemmatui.tui.themes import DEFAULT_THEME, ThemeSet, load_themes

if TYPE_CHECKING:
    from gemmatui.core.hardware import HardwareProbe
    from gemmatui.core.ollama import OllamaClient
    from gemmatui.core.storage import ConversationStore, HistoryNotice

#: Seconds between automatic connection attempts while Ollama is down.
RETRY_SECONDS = 5.0


class GemmaApp(App[int]):
    """Recommend, pull and chat with Gemma 3 QAT models through Ollama.

    Args:
        client: The Ollama client (an :class:`~gemmatui.core.ollama.OllamaClient`).
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
        fit_report: The fit for the saved context and KV cache type.
        chosen_fit: ``fit_report``'s row of the chosen model (``None`` when none is chosen
            or it is not one of the catalogue's variants).
        installed: The installed Gemma 3 QAT models by tag; ``None`` while Ollama has
            not answered.
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
    """Whether Ollama answered the last check."""
    ollama_error: var[str | None] = var(None)
    """Why the last check failed; ``None`` while Ollama answers or before the first check."""
    installed: var[dict[str, InstalledModel] | None] = var(None)

    def __init__(
        self,
        *,
        client: OllamaClient,
        probe: HardwareProbe,
        settings: Settings,
        store: ConversationStore,
        hardware: HardwareSnapshot | None = None,
        fit_env: Mapping[str, str] | None = None,
        fit_env_source: str = "environment",
        config_path: Path | None = None,
        themes: ThemeSet | None = None,
        clock: Callable[[], float] = time.monotonic,
        history_notice: HistoryNotice | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.probe = probe
        self.settings = settings
        self.store = store
        self._hardware = hardware
        self.fit_env: Mapping[str, str] = dict(fit_env or {})
        self.fit_env_source = fit_env_source
        self.config_path = config_path
        self._themes = themes
        self.clock = clock
        self.history_notice = history_notice
        self.retry_seconds = RETRY_SECONDS
        self.fit_report: FitReport = None  # type: ignore[assignment]  # set on mount
        self.chosen_fit: VariantFit | None = None
        self._theme_ready = False
        self._retry_timer: Timer | None = None
        self._quit_dialog: ConfirmDialog | None = None

    @property
    def hardware(self) -> HardwareSnapshot:
        """What the machine has (taken from the probe on mount unless given)."""
        assert self._hardware is not None, "the app is not mounted yet"
        return self._hardware

    # ------------------------------------------------------------------ start-up

    def on_mount(self) -> None:
        self._register_themes()
        if self._hardware is None:
            self._hardware = self._snapshot()
        self._refresh_fit()
        self._retry_timer = self.set_interval(self.retry_seconds, self._auto_retry, pause=True)
        if self.settings.model:
            self.check_ollama()
            self.open_chat(self.settings.model, self.chat_context())
        else:
            self.push_screen("models")  # which checks Ollama each time it shows

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

    def _snapshot(self) -> HardwareSnapshot:
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

    def save_settings(self, **changes: Any) -> None:
        """Save ``changes`` to the config file and apply them to :attr:`settings`.

        A file that cannot be written is reported with a notification; the change
        still applies to this session.
        """
        try:
            saved = update_settings(self.config_path, **changes)
        except ConfigError as err:
            self.notify(str(err), title="Settings not saved", severity="error", markup=False)
            self.settings = replace(self.settings, **changes)
            return
        self.settings = replace(self.settings, **{key: getattr(saved, key) for key in changes})

    def watch_theme(self, theme: str) -> None:
        if self._theme_ready and theme != self.settings.theme:
            self.save_settings(theme=theme)

    def plan_fit(self, num_ctx: int | None = None, kv_type: str | None = None) -> FitReport:
        """The fit on this machine at ``num_ctx`` / ``kv_type`` (default: the saved ones)."""
        fit_settings = layered_settings(
            self.fit_env,
            self.fit_env_source,
            config_ctx=self.settings.num_ctx,
            config_kv=self.settings.kv_cache_type,
            ctx=num_ctx,
            kv_type=kv_type,
        )
        return plan(self.hardware, fit_settings, variants_as_installed(self.installed))

    def _refresh_fit(self) -> None:
        self.fit_report = self.plan_fit()
        model = self.settings.model
        self.chosen_fit = next(
            (row for row in self.fit_report.rows if row.variant.tag == model), None
        )

    def chat_context(self) -> int:
        """The context every chat request carries: the saved one, else the fit's."""
        return self.settings.num_ctx or self.fit_report.settings.num_ctx or 4096

    # ------------------------------------------------------------------ Ollama

    @work(exclusive=True, group="ollama")
    async def check_ollama(self, manual: bool = False) -> None:
        """Ask Ollama which models are installed; this also tells whether it runs.

        Args:
            manual: The user asked (key ``r``): say so when it still fails.
        """
        was_down = self.ollama_error is not None
        try:
            models = await self.client.list_models()
        except OllamaError as err:
            self.installed = None
            self.ollama_ok = False
            self.ollama_error = str(err)
            if self._retry_timer is not None:
                self._retry_timer.resume()
            if manual:
                self.notify(
                    f"Still no answer from {self.client.host}.",
                    title="Ollama is not running",
                    severity="warning",
                    markup=False,
                )
            return
        self.installed = gemma_installed(models)
        self.ollama_ok = True
        self.ollama_error = None
        if self._retry_timer is not None:
            self._retry_timer.pause()
        if was_down:
            self.notify(
                f"Connected to Ollama at {self.client.host}.", title="Ollama is back", markup=False
            )

    def _auto_retry(self) -> None:
        self.check_ollama()

    def watch_installed(self) -> None:
        if self._hardware is not None:
            self._refresh_fit()

    def watch_ollama_error(self, before: str | None, now: str | None) -> None:
        if (before is None) != (now is None):
            self.refresh_bindings()  # `r` is offered only while Ollama is down

    # ------------------------------------------------------------------ navigation

    def use_model(self, model: str, num_ctx: int, kv_cache_type: str) -> None:
        """Save the choice (model, context, KV cache type) and open the chat with it."""
        self.save_settings(model=model, num_ctx=num_ctx, kv_cache_type=kv_cache_type)
        self._refresh_fit()
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
        """Try to reach Ollama again now."""
        self.check_ollama(manual=True)


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


def build_app(args: argparse.Namespace) -> GemmaApp:
    """Wire the real app: config, Ollama client, hardware probe, conversation store.

    Raises:
        ConfigError: The config file is not valid.
        UsageError: A command-line value (``--theme``, ``--ctx``, ``--model``,
            ``--host``) or an Ollama server setting is not valid.
    """
    from gemmatui.core.config import config_path, data_dir, load_settings
    from gemmatui.core.hardware import detect_probe
    from gemmatui.core.hosts import resolve_host
    from gemmatui.core.ollama import OllamaClient
    from gemmatui.core.server_settings import read_server_env
    from gemmatui.core.storage import open_history

    path = config_path()
    themes = load_themes()
    settings = _apply_arguments(load_settings(path), args, themes.names())
    host, _ = resolve_host(args.host, os.environ, settings)
    server = read_server_env(host)
    store, history_notice = open_history(data_dir())
    return GemmaApp(
        client=OllamaClient(host),
        probe=detect_probe(),
        settings=settings,
        store=store,
        fit_env=server.values,
        fit_env_source=server.source,
        config_path=path,
        themes=themes,
        history_notice=history_notice,
    )


def run_tui(args: argparse.Namespace) -> int:
    """Run the terminal app; returns the exit code.

    Bad settings or arguments, or no terminal to run in (stdin or stdout redirected),
    print one line and return 2 (no traceback, no escape codes).
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

    async def run() -> None:
        try:
            await app.run_async()
        finally:
            await app.client.aclose()
            app.probe.close()
            app.store.close()

    asyncio.run(run())
    return app.return_code or 0
