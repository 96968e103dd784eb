"""The prompt's cursor stops blinking after a while without input (issue #11).

A blink is two frames a second, about half of what an idle chat may cost; like GTK and
GNOME Terminal (``gtk-cursor-blink-timeout``), the cursor stays shown, steady, after
:data:`~gemmatui.tui.widgets.prompt.BLINK_TIMEOUT` seconds without input, and blinks
again on the next key.
"""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from gemmatui.tui.widgets import prompt as prompt_module
from gemmatui.tui.widgets.prompt import PromptInput

#: Shortened for the test: four blink periods (0.5 s each).
TIMEOUT = 2.0
#: How long a test waits for a state before failing: generous, for a slow shared machine.
DEADLINE = 10.0


class PromptHost(App[None]):
    def compose(self) -> ComposeResult:
        yield PromptInput(id="prompt")


async def _blinks(pilot: Pilot[None], prompt: PromptInput) -> bool:
    """Whether the cursor is seen hidden (it blinks) before the deadline, looking every
    50 ms."""
    for _ in range(round(DEADLINE / 0.05)):
        if not prompt._cursor_visible:
            return True
        await pilot.pause(0.05)
    return False


async def _steady(pilot: Pilot[None], prompt: PromptInput) -> bool:
    """Whether the blink stops (the timeout passed) before the deadline and the cursor
    then stays shown for a second."""
    for _ in range(round(DEADLINE / 0.05)):
        if prompt._blink_timeout is None:
            break
        await pilot.pause(0.05)
    else:
        return False
    for _ in range(20):
        await pilot.pause(0.05)
        if not prompt._cursor_visible:
            return False
    return True


async def test_the_cursor_stops_blinking_without_input_and_blinks_again_on_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Blinking after focus (hidden half the time); shown and steady once the timeout
    passed without input; a key brings the blink back, for another timeout. Ctrl+J (a
    newline, which skips TextArea's own key handler) counts as input too."""
    monkeypatch.setattr(prompt_module, "BLINK_TIMEOUT", TIMEOUT)
    app = PromptHost()
    async with app.run_test(size=(60, 8)) as pilot:
        prompt = app.query_one(PromptInput)
        prompt.focus()
        assert await _blinks(pilot, prompt)
        assert await _steady(pilot, prompt)
        await pilot.press("ctrl+j")
        assert prompt.text == "\n"
        assert prompt._blink_timeout is not None  # counting again
        assert await _blinks(pilot, prompt)
        assert await _steady(pilot, prompt)
        await pilot.press("a")
        assert prompt.text == "\na"
        assert await _blinks(pilot, prompt)
