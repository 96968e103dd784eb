"""The app's own Messages, named as events in the past tense.

Background workers post these (``post_message`` is thread-safe); widgets post the
rest so that the screen, which owns the data, decides what happens.
"""

from __future__ import annotations

from textual.message import Message

from gemmatui.core.types import HardwareSample, RunningModel


class GpuSampled(Message):
    """The hardware probe was read (in a thread worker).

    Attributes:
        sample: The reading; ``sample.error`` says what could not be read.
    """

    def __init__(self, sample: HardwareSample) -> None:
        super().__init__()
        self.sample = sample


class ModelsPolled(Message):
    """Ollama's ``/api/ps`` was asked which models are loaded.

    Attributes:
        running: The loaded models, or ``None`` when the question failed.
        error: Why it failed, in words; ``None`` on success.
    """

    def __init__(self, running: tuple[RunningModel, ...] | None, error: str | None = None) -> None:
        super().__init__()
        self.running = running
        self.error = error


class PromptSubmitted(Message):
    """The user pressed Enter in the prompt.

    Attributes:
        text: The prompt's text as typed (not stripped).
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ConversationSelected(Message):
    """A conversation was chosen in the sidebar, to be shown and continued."""

    def __init__(self, conversation_id: int) -> None:
        super().__init__()
        self.conversation_id = conversation_id


class NewConversationRequested(Message):
    """The sidebar's "New" button was pressed."""


class RenameConversationRequested(Message):
    """The user asked to rename a conversation (sidebar button or F2)."""

    def __init__(self, conversation_id: int) -> None:
        super().__init__()
        self.conversation_id = conversation_id


class DeleteConversationRequested(Message):
    """The user asked to delete a conversation (sidebar button or Delete); not yet confirmed."""

    def __init__(self, conversation_id: int) -> None:
        super().__init__()
        self.conversation_id = conversation_id
