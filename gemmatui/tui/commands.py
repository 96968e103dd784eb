"""Command palette (ctrl+p) entries for every action.

:class:`GemmaCommands` offers the app's own actions by name (models, help, retry the
connection) and, for the screen the palette was opened from, every key binding the
footer shows, so a chat or pull action is reachable by name as well as by key.
Textual's own system commands (Theme, Quit, Keys, Screenshot) sit beside these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.markup import escape

from gemmatui.tui.screens.help import key_label
from gemmatui.tui.session import session_of

# Actions Textual's system commands already offer by name.
_SYSTEM_ACTIONS = {"quit", "change_theme", "command_palette"}


@dataclass(frozen=True)
class PaletteCommand:
    """One palette entry: what it is called, a line of help, and what it runs."""

    name: str
    help: str
    run: Callable[[], Awaitable[object] | object]


class GemmaCommands(Provider):
    """The app's actions and the calling screen's key bindings, by name."""

    def commands(self) -> Iterator[PaletteCommand]:
        """Every entry, app actions first; an action reachable twice is listed once."""
        app = self.app
        session = session_of(self)
        seen: set[str] = set(_SYSTEM_ACTIONS)
        own = (
            ("models", "Models", "Choose a model: hardware, fit, context and KV cache (m, ctrl+o)"),
            ("help", "Help", "Every key binding (?, F1)"),
            (
                "retry_ollama",
                f"Retry {session.engine_name}",
                f"Try to reach {session.engine_name} at {session.host} again (r, F5)",
            ),
        )
        for action, name, help_text in own:
            seen.add(action)
            if app.check_action(action, ()):
                yield PaletteCommand(name, help_text, partial(app.run_action, action))
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            # What the footer shows, and the screen's own keys kept out of the footer for
            # room (F3 panels); a focused widget's own keys (cursor moves) stay out.
            shown = binding.show or active.node is self.screen
            if (
                not (shown and binding.description)
                or not active.enabled
                or binding.action in seen
            ):
                continue
            seen.add(binding.action)
            yield PaletteCommand(
                binding.description,
                f"{binding.tooltip or binding.description} ({key_label(key)})",
                partial(app.run_action, binding.action, active.node),
            )

    async def discover(self) -> Hits:
        # The palette reads str prompts and help as markup: pass Content / escaped text.
        for command in self.commands():
            yield DiscoveryHit(
                Content(command.name), command.run, command.name, escape(command.help)
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self.commands():
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.name),
                    command.run,
                    command.name,
                    escape(command.help),
                )
