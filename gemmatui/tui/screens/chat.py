"""The chat screen: the conversation, the prompt, and live panels beside them.

Layout: an optional conversation sidebar (Ctrl+B) on the left, the messages and the
prompt in the middle, and the VRAM, plan-vs-reality and tokens panels on the right.
Below 100 columns the panels hide (``chat.tcss``, class ``-narrow``); F3 shows or hides
them at any width.

Data flow:

* A reply streams in an async worker (group ``chat``, exclusive). Tokens are
  gathered and handed over eight times a second to a
  :class:`~gemmatui.tui.widgets.reply_stream.ReplyStream`, which shows the block
  being written as plain text and moves complete blocks to Markdown about once a
  second (see there why; issue #11). The prompt's cursor stops blinking meanwhile.
  Esc cancels the worker; what arrived stays, saved as ``partial``. Every
  request carries the planned ``num_ctx`` and the configured ``keep_alive``, and the
  history this screen shows (not whatever else is in the database: another copy of
  the app may be adding to the same conversation).
* However a reply ends (complete, stopped, failed, or the screen closed under it when
  another model is chosen), what arrived is saved first, from the worker's own copy of
  the text; the widgets are settled afterwards, and only while the screen is still
  there.
* The hardware probe is read in a thread worker (group ``gpu``), which posts
  :class:`~gemmatui.tui.messages.GpuSampled`; the handler re-arms a one-shot timer,
  so polls never overlap: every second while memory moves (a model loading or
  unloading, a reply streaming), every two seconds once it has been steady a while
  (issue #11: each reading that changes the panel costs a frame; a load still shows
  within two seconds). ``/api/ps`` is asked the same way, less often, and after
  every reply.
* Conversations live in the app's :class:`~gemmatui.core.storage.ConversationStore`:
  the user's message is saved on send, the reply when it ends (complete, stopped or
  cut off), and the last conversation is shown again on the next start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header
from textual.worker import Worker, WorkerError

from gemmatui.core.config import atomic_write_text
from gemmatui.core.catalog import find_variant
from gemmatui.core.errors import ModelNotFound, OllamaError
from gemmatui.core.fit import VariantFit
from gemmatui.core.images import (
    IMAGE_TOKENS,
    Attachment,
    ImageError,
    estimate_text_tokens,
    read_image,
    text_only_refusal,
)
from gemmatui.core.storage import Conversation, Status, StorageError, StoredImage, StoredMessage
from gemmatui.core.text import sanitize, sanitize_line
from gemmatui.core.types import ChatStats, HardwareSample, RunningModel
from gemmatui.core.units import MiB, format_ctx
from gemmatui.tui.banner import HistoryBanner, OllamaBanner
from gemmatui.tui.messages import (
    ConversationSelected,
    DeleteConversationRequested,
    GpuSampled,
    ModelsPolled,
    NewConversationRequested,
    PromptSubmitted,
    RenameConversationRequested,
)
from gemmatui.tui.screens.dialogs import ConfirmDialog
from gemmatui.tui.widgets.attach_dialog import AttachDialog
from gemmatui.tui.widgets.attachments import AttachmentBar, shown_names
from gemmatui.tui.widgets.edit_dialog import EditTextDialog
from gemmatui.tui.widgets.message import (
    AssistantMessage,
    ErrorMessage,
    MessageBlock,
    SystemPromptMessage,
    UserMessage,
)
from gemmatui.tui.widgets.plan_panel import Measured, PlanPanel
from gemmatui.tui.widgets.prompt import PromptInput
from gemmatui.tui.widgets.reply_stream import ReplyStream
from gemmatui.tui.widgets.sidebar import ConversationSidebar
from gemmatui.tui.widgets.token_panel import TokenPanel
from gemmatui.tui.widgets.vram_panel import VramPanel, loaded_model, memory_in_use

from gemmatui.tui.session import SessionAccess

#: Seconds between hardware readings while memory moves, and between ``/api/ps``
#: questions.
GPU_INTERVAL = 1.0
PS_INTERVAL = 5.0
#: Once memory has been steady for ``FAST_POLLS`` readings, the probe is read this many
#: times less often (every 2 s) and the VRAM panel's history row is drawn less often:
#: most readings of an idle chat change nothing, and each one that does costs a frame.
#: A model load is seen within 2 s, and then followed every second.
STEADY_SLOWDOWN = 2.0
FAST_POLLS = 10
#: A change of memory in use smaller than this between two readings is steady: other
#: programs' noise (system RAM moves by tens of MiB a second on a busy machine); a
#: model loading moves hundreds of MiB a second, at least ~1 GB in all.
STEADY_BYTES = 128 * MiB
#: Seconds between hand-overs of streamed text to the view (8 a second), whatever the
#: token rate: each one costs a frame (see ``reply_stream``).
STREAM_FLUSH_INTERVAL = 0.125


def _footprint(running: RunningModel | None) -> tuple[int, int] | None:
    return None if running is None else (running.size_bytes, running.size_vram_bytes)


def gpu_used(sample: HardwareSample | None) -> int | None:
    """Used memory summed over the sample's GPUs; ``None`` without a complete reading."""
    if sample is None or not sample.gpus or any(g.used_bytes is None for g in sample.gpus):
        return None
    return sum(g.used_bytes or 0 for g in sample.gpus)


def export_name(conv: Conversation) -> str:
    """File name of a conversation's export: its id and a slug of its title.

    >>> from gemmatui.core.storage import Conversation
    >>> export_name(Conversation(7, "What is QAT? (short)", "m", "", 0, 0))
    '0007-what-is-qat-short.md'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", conv.display_title.lower()).strip("-")[:40].strip("-")
    return f"{conv.id:04d}-{slug or 'conversation'}.md"


def describe_chat_error(err: OllamaError) -> str:
    """A failed request in the app's own words: a missing model names the key that pulls
    it here (the CLI's "gemmatui pull …" means nothing inside the app).

    >>> from gemmatui.core.errors import ModelNotFound
    >>> print(describe_chat_error(ModelNotFound("gemma3:27b-it-qat")))  # doctest: +ELLIPSIS
    model 'gemma3:27b-it-qat' is not installed: press ctrl+o (Models), choose it and press Enter...
    """
    if isinstance(err, ModelNotFound):
        if find_variant(err.model) is None:  # not one of ours: the model screen cannot pull it
            return f"model '{err.model}' is not installed: pull it with `ollama pull {err.model}`"
        return (
            f"model '{err.model}' is not installed: press ctrl+o (Models), choose it and "
            "press Enter to pull it"
        )
    return str(err)


def _block_for(
    msg: StoredMessage, model: str, images: Iterable[Attachment | StoredImage] = ()
) -> MessageBlock | None:
    if msg.role == "user":
        return UserMessage(msg.content, message_id=msg.id, images=images)
    if msg.role == "assistant":
        return AssistantMessage(
            msg.content,
            model=msg.model or model,
            status=msg.status,
            stats=msg.stats,
            message_id=msg.id,
        )
    if msg.role == "error":
        return ErrorMessage(msg.content, message_id=msg.id)
    return None


class ChatScreen(SessionAccess, Screen[None]):
    """Chat with ``model``; every request asks for ``num_ctx`` tokens of context.

    Args:
        model: The Ollama tag to chat with, e.g. ``"gemma3:12b-it-qat"``.
        num_ctx: The context length sent with every request (at most the model's maximum:
            :func:`~gemmatui.core.catalog.capped_context`).
        requested_ctx: The context asked for, when ``num_ctx`` was lowered from it: the
            title says "(model max)" and a notification says so once.
        conversation_id: The conversation to show (default: the last one changed).
        after: Replies of a chat this one replaces that are still ending: the history is
            read once they are saved, so it shows them.
        gpu_interval: Seconds between hardware readings; ``None``: never poll (tests
            post :class:`GpuSampled` themselves).
        ps_interval: Seconds between ``/api/ps`` questions; ``None``: only on start
            and after each reply.
    """

    CSS_PATH = "chat.tcss"
    AUTO_FOCUS = "#prompt"
    # chat.tcss hides the live panels on a narrow terminal (-narrow); F3 flips that.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-narrow"), (100, "-wide")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop", tooltip="Stop the reply; what arrived is kept"),
        Binding("ctrl+r", "regenerate", "Regenerate", tooltip="Write the last reply again"),
        # The prompt (a TextArea) binds Ctrl+Y (redo) and Ctrl+E (end of line) itself:
        # these two take priority so they work while typing.
        Binding(
            "ctrl+y", "copy_reply", "Copy", tooltip="Copy the focused or last reply", priority=True
        ),
        Binding("ctrl+b", "toggle_sidebar", "Chats", tooltip="Show or hide saved conversations"),
        Binding("ctrl+n", "new_conversation", "New", tooltip="Start a new conversation"),
        Binding(
            "ctrl+e", "export", "Export", tooltip="Save the conversation as Markdown", priority=True
        ),
        Binding(
            "ctrl+s", "system_prompt", "System", tooltip="Edit this conversation's system prompt"
        ),
        # Ctrl+A is "start of line" in the prompt (Home does that too): priority, to attach.
        # Out of the footer for room: in the help (F1), the palette, the prompt's hint.
        Binding(
            "ctrl+a",
            "attach",
            "Attach",
            tooltip="Attach an image to the next message",
            priority=True,
            show=False,
        ),
        # Kept out of the footer for room: it is in the help (F1) and the palette.
        Binding("f3", "toggle_panels", "Panels", tooltip="Show or hide the live panels", show=False),
    ]

    def __init__(
        self,
        model: str,
        num_ctx: int,
        *,
        requested_ctx: int | None = None,
        conversation_id: int | None = None,
        after: Iterable[Worker[None]] = (),
        gpu_interval: float | None = GPU_INTERVAL,
        ps_interval: float | None = PS_INTERVAL,
    ) -> None:
        super().__init__()
        self.model = model
        self.num_ctx = num_ctx
        self.requested_ctx = requested_ctx if requested_ctx is not None else num_ctx
        self._resume_id = conversation_id
        self._after = list(after)
        self.gpu_interval = gpu_interval
        self.ps_interval = ps_interval
        self.conversation: Conversation | None = None
        self.system_prompt = ""
        self.generating = False  # from send until the reply is saved
        self.reply: AssistantMessage | None = None  # the block of the reply streaming now
        self.reply_worker: Worker[None] | None = None
        self.last_sample: HardwareSample | None = None
        self.running: RunningModel | None = None  # the chat's model in /api/ps
        self.ps_answered = False
        self.baseline_used: int | None = None  # GPU memory in use before the model loaded
        self.fit: VariantFit | None = None
        self._gpu_timer: Timer | None = None
        self._ps_timer: Timer | None = None
        # Readings still to take at ``gpu_interval`` before slowing down (memory moved).
        self._fast_polls = 0
        # Images of the message being answered, for the context estimate when the reply
        # ends without Ollama's figures (its prompt_eval_count counts them otherwise).
        self._sent_image_tokens = 0
        # The message (text and images) already warned about not fitting the context:
        # a second Enter sends it anyway.
        self._warned_overflow: tuple[str, tuple[str, ...]] | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        yield OllamaBanner()
        yield HistoryBanner()
        with Horizontal(id="chat-body"):
            yield ConversationSidebar(id="sidebar")
            with Vertical(id="chat-main"):
                yield VerticalScroll(id="messages")
                yield AttachmentBar(id="attachments")
                yield PromptInput(id="prompt")
            with VerticalScroll(id="panels"):
                yield VramPanel(self.model, id="vram")
                yield PlanPanel(id="plan")
                yield TokenPanel(
                    self.num_ctx,
                    clock=self.session.clock,
                    engine=self.session.kind,
                    id="tokens",
                )
        yield Footer()

    @property
    def messages_view(self) -> VerticalScroll:
        return self.query_one("#messages", VerticalScroll)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def sidebar(self) -> ConversationSidebar:
        return self.query_one(ConversationSidebar)

    @property
    def tokens(self) -> TokenPanel:
        return self.query_one(TokenPanel)

    @contextmanager
    def storage_errors(self) -> Iterator[None]:
        """Show a :class:`StorageError` from the block as a notification; go on working."""
        try:
            yield
        except StorageError as err:
            self.notify(str(err), title="Chat history", severity="error", markup=False)

    @property
    def ctx_capped(self) -> bool:
        """Whether the context was lowered to the model's maximum."""
        return self.num_ctx < self.requested_ctx

    async def on_mount(self) -> None:
        self.system_prompt = self.session.settings.system_prompt
        self.fit = self._plan_fit()
        self._paint_plan()
        self._paint_title()
        if self.ctx_capped:
            self.notify(
                f"{self.model} reads at most {format_ctx(self.num_ctx)} tokens of context: "
                f"this chat uses {format_ctx(self.num_ctx)}, not the "
                f"{format_ctx(self.requested_ctx)} asked for.",
                title="Context lowered",
                markup=False,
            )
        if self.gpu_interval is not None:
            self._poll_gpu()
        # After the first paint: the first Ollama call may import its client library.
        self.call_after_refresh(self._poll_models)
        # The chat this one replaces saves its stopped reply as it ends: read after that.
        for worker in self._after:
            try:
                await worker.wait()
            except WorkerError:  # cancelled (it was stopped) or failed: it saved first
                pass
        self._after = []
        with self.storage_errors():
            conv = None
            if self._resume_id is not None:
                conv = self.session.store.get(self._resume_id)
            if conv is None:
                conv = self.session.store.last_conversation()
            if conv is not None:
                await self._show_conversation(conv)

    def on_screen_resume(self) -> None:
        """Back from a dialog or another screen: the prompt has the focus again, so a
        letter typed next goes into it (and never reaches an app key)."""
        if self.is_mounted:
            self.call_after_refresh(self.prompt.focus)

    def _plan_fit(self) -> VariantFit | None:
        """The fit of the chat's model at the chat's context as the engine runs it
        (``None``: no plan; the plan panel says why, and shows llama.cpp's log for a
        llama-server the app started)."""
        fit, facts = self.session.fit_for(self.model, self.num_ctx)
        self.query_one(PlanPanel).facts = facts
        return fit

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide Stop unless a reply streams; grey out what must wait for it to end."""
        if action == "stop":
            return self.generating
        if action in ("regenerate", "new_conversation") and self.generating:
            return None
        return True

    def _live(self) -> bool:
        """Whether this screen's widgets are there to update: mounted, attached to the
        app, and not being removed (``open_chat`` pops the screen while a reply may
        still stream; its children go first)."""
        return self.is_attached and self.is_mounted and not self._closing and not self._pruning

    def on_unmount(self) -> None:
        """The screen is going away: stop the reply (its worker saves what arrived)."""
        if self.reply_worker is not None:
            self.reply_worker.cancel()

    def _busy(self) -> bool:
        """Say so and return ``True`` while a reply streams (the caller must wait)."""
        if self.generating:
            self.notify("A reply is still streaming: Esc stops it", severity="warning")
        return self.generating

    # ------------------------------------------------------------------ sending

    @on(PromptSubmitted)
    def _submitted(self, event: PromptSubmitted) -> None:
        event.stop()
        self.action_send()

    def action_send(self) -> None:
        """Send the prompt's text and the attached images, save them, and stream the reply.

        Refused, in one line and with the prompt and the attachments kept, when the
        model reads text only; warned about once (a second Enter sends) when the
        conversation with its images will not fit in the context.
        """
        text = self.prompt.text.strip()
        images = list(self.attachment_bar.attachments)
        if (not text and not images) or self._busy():
            return
        if (images and self._images_refused()) or self._overflow_warning(text, images):
            return
        with self.storage_errors():
            conv = self._ensure_conversation()
            message_id = self.session.store.add_message(conv.id, "user", text, images=images)
            self.prompt.clear()
            self.call_later(self.attachment_bar.clear)
            self._warned_overflow = None
            self.messages_view.mount(UserMessage(text, message_id=message_id, images=images))
            self._sent_image_tokens = IMAGE_TOKENS * len(images)
            self._start_reply(conv, new_chars=len(text))
            self.conversation = self.session.store.get(conv.id) or conv
            self._paint_title()
            if self.sidebar.display:
                self._refresh_sidebar()

    def _ensure_conversation(self) -> Conversation:
        """The conversation to add to: the one shown, or a new one (created on first send)."""
        store = self.session.store
        conv = self.conversation
        if conv is None:
            return store.create_conversation(self.model, self.system_prompt)
        if conv.model != self.model:
            store.set_model(conv.id, self.model)
        return conv

    def _history(self) -> list[dict[str, Any]]:
        """What the model reads: the system prompt, then the user messages and replies
        this screen shows (another copy of the app may have added to the same
        conversation in the database: those turns are not this conversation's view).

        Each user message carries its images again (``images``: base64, Ollama's form;
        the engine port turns them into ``image_url`` parts for llama-server): the model
        reads the whole conversation anew with every request. A text-only model gets
        none (the engine would refuse the request); images missing from the data dir
        cannot be sent, and a notification says so.
        """
        history: list[dict[str, Any]] = (
            [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        )
        sees = text_only_refusal(self.model) is None
        missing = 0
        for block in self.messages_view.query_children(MessageBlock):
            if isinstance(block, UserMessage):
                message: dict[str, Any] = {"role": "user", "content": block.text}
                if sees and block.attachments:
                    message["images"] = [image.base64() for image in block.attachments]
                missing += len(block.images) - len(block.attachments)
                history.append(message)
            elif isinstance(block, AssistantMessage) and block.text:
                history.append({"role": "assistant", "content": block.text})
        if sees and missing:
            self.notify(
                f"{missing} earlier image{'s are' if missing > 1 else ' is'} missing from the "
                "data dir: the conversation is sent without "
                f"{'them' if missing > 1 else 'it'}",
                title="Images",
                severity="warning",
            )
        return history

    # ------------------------------------------------------------------ images

    @property
    def attachment_bar(self) -> AttachmentBar:
        """The images that go with the next message (the row above the prompt)."""
        return self.query_one(AttachmentBar)

    def _images_refused(self) -> bool:
        """Say why and return ``True`` when this chat's model reads no images (1B)."""
        refusal = text_only_refusal(self.model)
        if refusal is not None:
            self.notify(str(refusal), title="Images", severity="error", markup=False)
        return refusal is not None

    def _overflow_warning(self, text: str, images: list[Attachment]) -> bool:
        """Warn once, and return ``True``, when the conversation with its images and
        this message will not fit in ``num_ctx``; the same message sent again goes.

        The estimate: the context the gauge shows (Ollama's last figures, which count
        the earlier images, plus estimates), the new text (about 4 characters a token)
        and :data:`~gemmatui.core.images.IMAGE_TOKENS` per new image. Only when images
        are involved (new ones, or earlier ones the conversation sends again).
        """
        shown = [b for b in self.messages_view.query_children(UserMessage) if b.images]
        if not images and not shown:
            return False
        needed = self.tokens.context + estimate_text_tokens(text) + IMAGE_TOKENS * len(images)
        key = (text, tuple(image.sha256 for image in images))
        if needed <= self.num_ctx or self._warned_overflow == key:
            return False
        self._warned_overflow = key
        count = len(images) + sum(len(b.images) for b in shown)
        self.notify(
            f"The conversation with its {count} image{'s' if count != 1 else ''} "
            f"({IMAGE_TOKENS} tokens each) needs about {needed:,} tokens, more than this "
            f"chat's {format_ctx(self.num_ctx)} context: the engine will drop the oldest "
            "messages. Press Enter again to send anyway, or start a new conversation "
            "(ctrl+n).",
            title="Context full",
            severity="warning",
            markup=False,
            timeout=10,
        )
        return True

    def action_attach(self) -> None:
        """Ask for an image file to send with the next message (a path prompt)."""
        if self._images_refused():
            return

        async def chosen(path: str | None) -> None:
            if path:
                await self._attach_images([Path(path).expanduser()])

        self.app.push_screen(AttachDialog(), chosen)

    @on(PromptInput.ImagesPasted)
    async def _images_pasted(self, event: PromptInput.ImagesPasted) -> None:
        event.stop()
        if self._images_refused():
            return
        await self._attach_images(event.paths)

    async def _attach_images(self, paths: list[Path]) -> None:
        """Read and check each file, then add it to the attachments; a bad one is
        refused in one line (the prompt's text stays as it is)."""
        added: list[Attachment] = []
        for path in paths:
            try:
                image = read_image(path)
            except ImageError as err:
                self.notify(str(err), title="Image not attached", severity="error", markup=False)
                continue
            image = dataclasses.replace(image, name=path.name or image.name)
            await self.attachment_bar.add(image)
            added.append(image)
        if added:
            self.notify(
                f"Attached {shown_names(added)}: sent with your next message",
                title="Images",
                markup=False,
            )
        self.prompt.focus()

    def _start_reply(self, conv: Conversation, *, new_chars: int = 0) -> None:
        """Ask for a reply to what the screen shows; ``new_chars``: the length of the
        user message just sent (for the context estimate if no figures come back)."""
        if self.ps_answered and self.running is None:
            self.baseline_used = gpu_used(self.last_sample)
        self.generating = True
        self.refresh_bindings()
        self.reply_worker = self._generate(conv, self._history(), new_chars)

    @work(exclusive=True, group="chat")
    async def _generate(
        self, conv: Conversation, history: list[dict[str, Any]], new_chars: int = 0
    ) -> None:
        """Stream one reply into a new block; save it however it ends."""
        if not self._live():
            self.generating = False
            return
        block = AssistantMessage(model=self.model, status="streaming")
        view = self.messages_view
        await view.mount(block)
        view.anchor()
        tokens = self.tokens
        tokens.reply_started()
        self.reply = block
        # A blinking cursor is two more frames a second while the reply streams; it
        # stays shown, steady, and blinks again once the reply has ended.
        prompt = self.prompt
        blink, prompt.cursor_blink = prompt.cursor_blink, False
        stream = ReplyStream(block)
        received: list[str] = []  # the whole reply, kept here whatever becomes of the view
        pending: list[str] = []  # what arrived since the last flush
        view_errors: list[Exception] = []

        async def flush() -> None:
            """Hand what arrived since the last flush to the stream in one piece."""
            if not pending:
                return
            text = "".join(pending)
            pending.clear()
            if view_errors or not self._live():
                return  # the text is in `received`; only the view is gone or broken
            try:
                await stream.write(text)
            except Exception as err:  # never from the timer: that would end the app
                self.log.error("could not show the reply", err)
                view_errors.append(err)

        # Tokens are batched by time: the loop below never yields per token, so a burst
        # is read in one go and the screen lays out once per flush, not once per token.
        flusher = self.set_interval(STREAM_FLUSH_INTERVAL, flush)
        status: Status = "complete"
        stats: ChatStats | None = None
        error: str | None = None
        try:
            async for chunk in self.session.engine.chat(
                self.model,
                history,
                num_ctx=self.num_ctx,
                keep_alive=self.session.settings.keep_alive,
            ):
                if chunk.content:
                    tokens.token_arrived()
                    received.append(chunk.content)
                    pending.append(chunk.content)
                if chunk.done:
                    stats = chunk.stats
        except asyncio.CancelledError:
            status = "partial"
            raise
        except OllamaError as err:
            status = "error"
            error = describe_chat_error(err)
            self.host.check_engine()  # the banner and the automatic retry follow the outcome
        except Exception as err:  # a bug must not end the app and lose what arrived
            self.log.error("the reply failed", err)
            status = "error"
            error = (
                f"the reply failed unexpectedly ({type(err).__name__}: {sanitize_line(str(err))}); "
                "what arrived is kept"
            )
        finally:
            flusher.pause()  # not stop(): that would cancel a flush half-way through a write
            self.reply = None
            text = "".join(received)
            # Saved first, before any await: a second cancellation (the screen closing)
            # may interrupt the flush below, never the save.
            saved = self._save_reply(conv, text, status, stats, error)
            try:
                await flush()
                await stream.stop()
            except Exception as err:  # a view torn down under the stream
                self.log.error("could not finish showing the reply", err)
            finally:
                flusher.stop()
                prompt.cursor_blink = blink
                self.generating = False
                added = new_chars + len(text)
                self._finish_reply(block, text, saved, status, stats, error, added)

    def _save_reply(
        self,
        conv: Conversation,
        text: str,
        status: Status,
        stats: ChatStats | None,
        error: str | None,
    ) -> tuple[int | None, int | None]:
        """Save the reply (if any text arrived) and the error (if any): their ids."""
        store = self.session.store
        reply_id = error_id = None
        with self.storage_errors():
            if text:
                reply_id = store.add_message(
                    conv.id, "assistant", text, status=status, stats=stats, model=self.model
                )
            if error is not None:
                error_id = store.add_message(conv.id, "error", error)
        return reply_id, error_id

    def _finish_reply(
        self,
        block: AssistantMessage,
        text: str,
        saved: tuple[int | None, int | None],
        status: Status,
        stats: ChatStats | None,
        error: str | None,
        added_chars: int,
    ) -> None:
        """Settle the view after a saved reply, if the screen is still there.

        ``added_chars``: the new user message and the reply, for the context estimate
        when Ollama sent no final figures.
        """
        if not self._live():
            return
        reply_id, error_id = saved
        try:
            image_tokens, self._sent_image_tokens = self._sent_image_tokens, 0
            self.tokens.reply_finished(
                stats, added_chars=added_chars, status=status, added_tokens=image_tokens
            )
            self.refresh_bindings()
            self._poll_models()
            if text:
                block.finish(status, stats, reply_id)
            else:
                block.remove()
            if error is not None:
                self.messages_view.mount(ErrorMessage(error, message_id=error_id))
        except NoMatches:  # widgets already gone: the screen is being torn down
            pass

    # ------------------------------------------------------------------ actions

    def action_stop(self) -> None:
        """Stop the reply streaming now; what arrived stays, marked "(stopped)"."""
        # Only once the reply's block exists: from there on the worker's ``finally``
        # saves what arrived and settles the screen, however it ends.
        if self.reply is not None and self.reply_worker is not None:
            self.reply_worker.cancel()

    async def action_regenerate(self) -> None:
        """Drop the last reply (and any error after it) and ask for a new one."""
        if self._busy():
            return
        blocks = list(self.messages_view.query_children(MessageBlock))
        users = [i for i, b in enumerate(blocks) if isinstance(b, UserMessage)]
        if self.conversation is None or not users:
            self.notify("Nothing to regenerate yet", severity="warning")
            return
        # Exactly the reply (and error) this screen shows after the last user message:
        # another copy of the app may have added to the conversation since.
        after = blocks[users[-1] + 1 :]
        ids = [b.message_id for b in after if b.message_id is not None]
        with self.storage_errors():
            self.session.store.delete_messages(self.conversation.id, ids)
            await self.messages_view.remove_children(after)
            self._start_reply(self.conversation)

    def action_copy_reply(self) -> None:
        """Copy the focused reply, or the last one, to the clipboard (sanitised: no
        escape sequence of the model's reaches the terminal or the clipboard)."""
        focused = self.focused
        block = next(
            (
                w
                for w in (focused.ancestors_with_self if focused else ())
                if isinstance(w, AssistantMessage)
            ),
            None,
        )
        if block is None:
            replies = self.messages_view.query_children(AssistantMessage)
            block = replies.last() if replies else None
        if block is None or not block.text:
            self.notify("No reply to copy yet", severity="warning")
            return
        text = sanitize(block.text)
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied the reply ({len(text):,} characters)")

    def action_toggle_sidebar(self) -> None:
        """Show or hide the saved conversations."""
        sidebar = self.sidebar
        sidebar.display = not sidebar.display
        if sidebar.display:
            self._refresh_sidebar()
            sidebar.option_list.focus()
        else:
            self.prompt.focus()

    async def action_new_conversation(self) -> None:
        """Start an empty conversation (saved once its first message is sent)."""
        if self._busy():
            return
        self.conversation = None
        self.system_prompt = self.session.settings.system_prompt
        await self._show_messages([])
        self.tokens.show_history(())
        self._paint_title()
        if self.sidebar.display:
            self._refresh_sidebar()
        self.prompt.focus()

    def action_export(self) -> None:
        """Write the conversation as Markdown under the data dir's ``exports`` folder."""
        conv = self.conversation
        if conv is None:
            self.notify("Nothing to export yet: send a message first", severity="warning")
            return
        path = self.session.store.path.parent / "exports" / export_name(conv)
        with self.storage_errors():
            try:
                atomic_write_text(
                    path, self.session.store.export_markdown(conv.id, folder=path.parent)
                )
            except OSError as err:
                self.notify(
                    f"Could not write {path}: {err.strerror}",
                    title="Export",
                    severity="error",
                    markup=False,
                )
                return
            self.notify(f"Exported to {path}", title="Export", markup=False)

    def action_toggle_panels(self) -> None:
        """Show the live panels on a narrow screen, or hide them on a wide one."""
        self.toggle_class("-toggle-panels")

    def action_system_prompt(self) -> None:
        """Edit the system prompt sent first with every request of this conversation."""

        def edited(text: str | None) -> None:
            if text is None:
                return
            self.system_prompt = text.strip()
            with self.storage_errors():
                if self.conversation is not None:
                    self.session.store.set_system_prompt(self.conversation.id, self.system_prompt)
            self._show_system_prompt()
            self.notify(
                "System prompt saved: it applies from the next message"
                if self.system_prompt
                else "System prompt removed"
            )

        self.app.push_screen(
            EditTextDialog(
                "System prompt for this conversation",
                self.system_prompt,
                hint="Sent before the conversation with every request. Ctrl+S saves, Esc cancels.",
                multiline=True,
            ),
            edited,
        )

    # ------------------------------------------------------------------ conversations

    async def _show_conversation(self, conv: Conversation) -> None:
        """Show a saved conversation so it can be continued."""
        self.conversation = conv
        self.system_prompt = conv.system_prompt
        messages = self.session.store.messages(conv.id)
        await self._show_messages(messages)
        # Text after the last reply with Ollama's figures (stopped or failed replies,
        # unanswered messages) goes back with the next request: count it as an estimate.
        last = max((i for i, m in enumerate(messages) if m.stats is not None), default=-1)
        unmeasured = sum(
            len(m.content) for m in messages[last + 1 :] if m.role in ("user", "assistant")
        )
        sees = text_only_refusal(self.model) is None
        unmeasured_images = sum(len(m.images) for m in messages[last + 1 :]) if sees else 0
        self.tokens.show_history(
            (m.stats for m in messages if m.stats is not None),
            added_chars=unmeasured,
            added_tokens=IMAGE_TOKENS * unmeasured_images,
        )
        self._paint_title()
        if self.sidebar.display:
            self._refresh_sidebar()

    async def _show_messages(self, messages: Iterable[StoredMessage]) -> None:
        view = self.messages_view
        await view.remove_children()
        store = self.session.store
        blocks = [
            b
            for b in (
                _block_for(m, self.model, [store.load_image(i) or i for i in m.images])
                for m in messages
            )
            if b is not None
        ]
        if self.system_prompt:
            blocks.insert(0, SystemPromptMessage(self.system_prompt))
        await view.mount_all(blocks)
        view.anchor()

    def _show_system_prompt(self) -> None:
        view = self.messages_view
        shown = view.query_children(SystemPromptMessage)
        if not self.system_prompt:
            shown.remove()
        elif shown:
            shown.first().set_text(self.system_prompt)
        else:
            view.mount(SystemPromptMessage(self.system_prompt), before=0)

    def _refresh_sidebar(self) -> None:
        current = self.conversation.id if self.conversation else None
        with self.storage_errors():
            self.sidebar.show(self.session.store.list_conversations(), current)

    def _paint_title(self) -> None:
        """The header: model, context and the conversation's title (plain text)."""
        title = self.conversation.display_title if self.conversation else "New conversation"
        ctx = format_ctx(self.num_ctx) + (" (model max)" if self.ctx_capped else "")
        header = f"{self.model} · {ctx} context · {title}"
        self.sub_title = sanitize_line(header)  # the title is the user's text

    @on(ConversationSelected)
    async def _selected(self, event: ConversationSelected) -> None:
        event.stop()
        if self._busy():
            return
        with self.storage_errors():
            conv = self.session.store.get(event.conversation_id)
            if conv is None:
                self.notify(
                    "That conversation is gone (deleted in another window?)", severity="warning"
                )
                self._refresh_sidebar()
                return
            await self._show_conversation(conv)
            self.prompt.focus()

    @on(NewConversationRequested)
    async def _new_requested(self, event: NewConversationRequested) -> None:
        event.stop()
        await self.action_new_conversation()

    @on(RenameConversationRequested)
    def _rename_requested(self, event: RenameConversationRequested) -> None:
        event.stop()
        conv = None
        with self.storage_errors():
            conv = self.session.store.get(event.conversation_id)
        if conv is None:
            self._refresh_sidebar()
            return

        def renamed(title: str | None) -> None:
            if title is None:
                return
            with self.storage_errors():
                self.session.store.rename(conv.id, title)
                if self.conversation is not None and self.conversation.id == conv.id:
                    self.conversation = self.session.store.get(conv.id)
                    self._paint_title()
            self._refresh_sidebar()

        self.app.push_screen(
            EditTextDialog(
                "Rename conversation", conv.title, hint="Empty: named after its next message."
            ),
            renamed,
        )

    @on(DeleteConversationRequested)
    def _delete_requested(self, event: DeleteConversationRequested) -> None:
        event.stop()
        current = self.conversation is not None and self.conversation.id == event.conversation_id
        if current and self._busy():
            return
        conv, count = None, 0
        with self.storage_errors():
            conv = self.session.store.get(event.conversation_id)
            count = len(self.session.store.messages(event.conversation_id))
        if conv is None:
            self._refresh_sidebar()
            return

        async def answered(yes: bool | None) -> None:
            if not yes:
                return
            with self.storage_errors():
                self.session.store.delete(conv.id)
            if self.conversation is not None and self.conversation.id == conv.id:
                await self.action_new_conversation()
            self._refresh_sidebar()

        self.app.push_screen(
            ConfirmDialog(
                "Delete this conversation?",
                f"“{sanitize_line(conv.display_title)}” and its {count} messages are "
                "deleted for good.",
                yes="Delete",
            ),
            answered,
        )

    # ------------------------------------------------------------------ live panels

    @work(thread=True, exclusive=True, group="gpu")
    def _poll_gpu(self) -> None:
        """Read the probe off the event loop; the result comes back as a message."""
        try:
            sample = self.session.probe.sample()
        except Exception as err:  # a probe must not raise; if one does, say so and go on
            sample = HardwareSample(
                timestamp=self.session.clock(),
                gpus=(),
                ram_used_bytes=0,
                ram_total_bytes=0,
                error=f"hardware probe failed: {err}",
            )
        self.post_message(GpuSampled(sample))

    @on(GpuSampled)
    def _gpu_sampled(self, event: GpuSampled) -> None:
        previous, self.last_sample = self.last_sample, event.sample
        if previous is not None and self._moved(previous, event.sample):
            self._fast_polls = FAST_POLLS
        elif self._fast_polls > 0:
            self._fast_polls -= 1
        self.query_one(VramPanel).show_sample(event.sample, steady=self.memory_steady)
        if self.ps_answered and self.running is None:
            self.baseline_used = gpu_used(event.sample)
        self._paint_plan()
        if self.gpu_interval is not None:
            self._gpu_timer = self._rearm(self._gpu_timer, self.next_gpu_poll, self._poll_gpu)

    @staticmethod
    def _moved(before: HardwareSample, after: HardwareSample) -> bool:
        """Whether memory moved between two readings (beyond noise), or the GPUs did."""
        if len(before.gpus) != len(after.gpus):
            return True
        return abs(memory_in_use(after) - memory_in_use(before)) >= STEADY_BYTES

    @property
    def memory_steady(self) -> bool:
        """No reply streams and memory has not moved (nor the model in ``/api/ps``) for
        the last ``FAST_POLLS`` readings."""
        return not self.generating and self._fast_polls == 0

    @property
    def next_gpu_poll(self) -> float:
        """Seconds until the next hardware reading: ``gpu_interval`` while memory moves
        or a reply streams, ``STEADY_SLOWDOWN`` times that once it is steady."""
        assert self.gpu_interval is not None
        return self.gpu_interval * (STEADY_SLOWDOWN if self.memory_steady else 1)

    @work(exclusive=True, group="ps")
    async def _poll_models(self) -> None:
        """Ask Ollama which models are loaded; the answer comes back as a message."""
        try:
            running = await self.session.ps()
        except OllamaError as err:
            self.post_message(ModelsPolled(None, str(err)))
        else:
            self.post_message(ModelsPolled(tuple(running)))

    @on(ModelsPolled)
    def _models_polled(self, event: ModelsPolled) -> None:
        self.query_one(VramPanel).show_models(event.running, event.error)
        if event.running is not None:
            running = loaded_model(event.running, self.model)
            if self.ps_answered and _footprint(running) != _footprint(self.running):
                self._fast_polls = FAST_POLLS  # loaded, unloaded, resized: memory moves
            self.ps_answered = True
            self.running = running
        self._paint_plan()
        if self.ps_interval is not None:
            self._ps_timer = self._rearm(self._ps_timer, self.ps_interval, self._poll_models)

    def _rearm(self, timer: Timer | None, delay: float, callback: Callable[[], object]) -> Timer:
        """A one-shot timer for the next poll, replacing any still pending."""
        if timer is not None:
            timer.stop()
        return self.set_timer(delay, callback)

    def _paint_plan(self) -> None:
        delta: int | None = None
        used = gpu_used(self.last_sample)
        if self.last_sample is None:
            note = "waiting for a reading"
        elif not self.last_sample.gpus:
            note = "no GPU to measure"
        elif used is None:
            note = "GPU memory not reported"
        elif self.baseline_used is None:
            note = "no pre-load reading"
        elif used <= self.baseline_used:
            # Nothing grew: the model was already loaded before our first reading, so
            # there is no before/after to compare (an error of -100 % would be a lie).
            note = "none (loaded earlier?)"
        else:
            note = ""
            delta = used - self.baseline_used
        self.query_one(PlanPanel).show(self.fit, Measured(self.running, delta, note))
