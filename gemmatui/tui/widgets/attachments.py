"""Images in the chat: the row of attachments above the prompt, an image in a message
(drawn inline, or as a one-line card), and the path completion of the attach dialog.

Inline images come from the ``textual-image`` library: Sixel or the Kitty graphics
protocol where the terminal answers for them, half-block characters (two pixels a
cell, in colour) in any other terminal. Which one is found by asking the terminal, and
that works only before Textual starts reading the keyboard: :func:`prepare_inline_images`
asks, once, and must run before ``App.run()``. Until it has run, every image is a card.

An image is a one-line card (``▣ cat.png · 640×480 · 312.5 KiB``) rather than a picture
when:

* ``GEMMATUI_IMAGES=card`` is set (the tests and snapshots set it: cards draw the same
  in every terminal);
* ``NO_COLOR`` is set (a picture is colour);
* the terminal is narrower than :data:`INLINE_MIN_WIDTH` columns;
* standard output is not a terminal, or ``textual-image`` cannot be loaded;
* the image is missing from the data dir (then the card says so).

Names are the user's file names: always shown as one sanitised line, never markup.
"""

from __future__ import annotations

import io
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.suggester import Suggester
from textual.widget import Widget
from textual.widgets import Static

from gemmatui.core.images import IMAGE_TOKENS, Attachment, probe_mime
from gemmatui.core.storage import StoredImage
from gemmatui.core.text import sanitize_line
from gemmatui.core.units import format_bytes

#: Environment variable: ``card`` draws every image as a one-line card.
IMAGES_ENV = "GEMMATUI_IMAGES"
#: Terminals narrower than this (columns) show cards, never pictures.
INLINE_MIN_WIDTH = 100
#: The most rows an inline picture takes in the conversation.
INLINE_MAX_ROWS = 12
#: Card marker, in front of the name.
CARD_MARK = "▣"

_inline_widget: type[Widget] | None = None
_prepared = False


def cards_forced(environ: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """Whether the environment asks for cards: ``GEMMATUI_IMAGES=card`` or ``NO_COLOR``.

    >>> cards_forced({"GEMMATUI_IMAGES": "card"}), cards_forced({"NO_COLOR": "1"})
    (True, True)
    >>> cards_forced({}), cards_forced({"NO_COLOR": ""})
    (False, False)
    """
    env = os.environ if environ is None else environ
    return env.get(IMAGES_ENV, "").strip().lower() == "card" or bool(env.get("NO_COLOR"))


def prepare_inline_images() -> str:
    """Find how this terminal can draw pictures; call once, before ``App.run()``.

    Loading ``textual-image`` asks the terminal (device attributes for Sixel, a query
    for the Kitty graphics protocol, the cell size in pixels); the answers arrive on
    standard input, which Textual reads once it runs, so this cannot happen later.
    Nothing is asked when cards are forced or standard output is not a terminal.

    Returns:
        ``"sixel"``, ``"kitty"``, ``"half-block"`` or ``"card"`` (what will be used).
    """
    global _inline_widget, _prepared
    _prepared = True
    _inline_widget = None
    stdout = sys.__stdout__
    if cards_forced() or stdout is None or not stdout.isatty():
        return "card"
    try:
        from textual_image.renderable import HalfcellImage, SixelImage, TGPImage
        from textual_image.renderable import Image as detected
        from textual_image.widget import Image as AutoImage
    except Exception:  # not installed, or it failed talking to the terminal
        return "card"
    _inline_widget = AutoImage
    if detected is SixelImage:
        return "sixel"
    if detected is TGPImage:
        return "kitty"
    if detected is HalfcellImage:
        return "half-block"
    _inline_widget = None  # its Unicode fallback is not a picture: cards say more
    return "card"


def inline_allowed(width: int) -> bool:
    """Whether pictures are drawn now, in a terminal ``width`` columns wide."""
    return _inline_widget is not None and not cards_forced() and width >= INLINE_MIN_WIDTH


def card_text(image: Attachment | StoredImage, *, missing: bool = False) -> str:
    """The card's line: ``▣ name · W×H · size``, or what is missing.

    >>> from gemmatui.core.storage import StoredImage
    >>> card_text(StoredImage("ab" * 32, "cat.png", "png", 640, 480, 2048), missing=True)
    '▣ cat.png · 640×480 · 2.0 KiB · missing from the data dir'
    """
    line = f"{CARD_MARK} {sanitize_line(image.card())}"
    if missing:
        line += " · missing from the data dir"
    return line


def pending_card(image: Attachment) -> str:
    """A chip's text: the file name, pixels and size (no path: the row is narrow).

    >>> from gemmatui.core.images import from_bytes
    >>> png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000280000001e0")
    >>> pending_card(from_bytes(png, "/tmp/shots/cat.png"))
    'cat.png · 640×480 · 24 B'
    """
    name = sanitize_line(Path(image.name).name or image.name, 40)
    return f"{name} · {image.width}×{image.height} · {format_bytes(image.size)}"


class ImageBlock(Widget):
    """One image of a message: a picture where the terminal can draw one, else a card.

    Args:
        image: The image's bytes (:class:`Attachment`), or only what the history says
            about it (:class:`StoredImage`) when its file is missing.
    """

    DEFAULT_CSS = """
    ImageBlock {
        height: auto;
        width: 1fr;
        &> .card { color: $text-muted; height: 1; }
        &> .missing { color: $text-warning; }
        &> .picture { height: auto; max-height: 12; width: auto; }
    }
    """

    def __init__(self, image: Attachment | StoredImage) -> None:
        super().__init__()
        self.image = image

    @property
    def missing(self) -> bool:
        """Whether the image's bytes are gone (only its description is left)."""
        return not isinstance(self.image, Attachment)

    @property
    def inline(self) -> bool:
        """Whether it is drawn as a picture (else as a card)."""
        return bool(self.query_children(".picture"))

    def compose(self) -> ComposeResult:
        image = self.image
        if isinstance(image, Attachment) and inline_allowed(self.app.size.width):
            widget_class: Any = _inline_widget
            try:
                picture = widget_class(io.BytesIO(image.data), classes="picture")
            except Exception:  # Pillow could not decode it: the card still says what it is
                pass
            else:
                picture.styles.max_height = INLINE_MAX_ROWS
                picture.tooltip = sanitize_line(image.card())
                yield picture
                return
        classes = "card missing" if self.missing else "card"
        yield Static(card_text(image, missing=self.missing), classes=classes, markup=False)


class AttachmentChip(Static, can_focus=True):
    """One pending attachment: click it, or focus it and press Delete, to remove it."""

    DEFAULT_CSS = """
    AttachmentChip {
        width: auto;
        height: 1;
        margin-right: 1;
        padding: 0 1;
        background: $boost;
        color: $text;
        &:focus { background: $accent 40%; }
        &:hover { background: $accent 25%; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("delete,backspace", "remove", "Remove", tooltip="Do not send this image"),
    ]

    def __init__(self, attachment: Attachment) -> None:
        super().__init__(f"{pending_card(attachment)} ✕", markup=False)
        self.attachment = attachment
        self.tooltip = "Click, or Delete, to remove"

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.action_remove()

    def action_remove(self) -> None:
        """Ask the row to drop this attachment."""
        self.post_message(AttachmentBar.Remove(self))


class AttachmentBar(Horizontal):
    """The images that go with the next message, shown above the prompt.

    Hidden while there are none. :attr:`attachments` is what the screen sends; the
    row posts :class:`Changed` whenever it changes.
    """

    DEFAULT_CSS = """
    AttachmentBar {
        height: auto;
        max-height: 3;
        display: none;
        padding: 0 1;
        &.-has-images { display: block; }
        &> .total { width: auto; color: $text-muted; height: 1; }
    }
    """

    class Remove(Message):
        """A chip asks to be removed."""

        def __init__(self, chip: AttachmentChip) -> None:
            super().__init__()
            self.chip = chip

    class Changed(Message):
        """The attachments changed (added, removed, cleared)."""

        def __init__(self, bar: AttachmentBar) -> None:
            super().__init__()
            self.bar = bar

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.attachments: list[Attachment] = []

    def compose(self) -> ComposeResult:
        yield Static("", classes="total", markup=False)

    @property
    def tokens(self) -> int:
        """Context tokens the attachments will take (:data:`IMAGE_TOKENS` each)."""
        return IMAGE_TOKENS * len(self.attachments)

    async def add(self, attachment: Attachment) -> None:
        """Attach one more image (shown as a chip)."""
        self.attachments.append(attachment)
        await self.mount(AttachmentChip(attachment), before=self.query_one(".total"))
        self._changed()

    async def clear(self) -> None:
        """Drop every attachment (after a send)."""
        self.attachments.clear()
        await self.query_children(AttachmentChip).remove()
        self._changed()

    @on(Remove)
    async def _remove(self, event: Remove) -> None:
        event.stop()
        chip = event.chip
        if chip.attachment in self.attachments:
            self.attachments.remove(chip.attachment)
        focus_next = chip.has_focus
        await chip.remove()
        self._changed()
        if focus_next:
            chips = self.query_children(AttachmentChip)
            if chips:
                chips.last().focus()

    def _changed(self) -> None:
        count = len(self.attachments)
        self.set_class(count > 0, "-has-images")
        word = "image" if count == 1 else "images"
        self.query_one(".total", Static).update(f"{count} {word} · +{self.tokens} tokens")
        self.post_message(AttachmentBar.Changed(self))


# --------------------------------------------------------------------------- paths


def complete_path(value: str, cwd: Path | None = None) -> str | None:
    """Complete a path being typed: ``value`` plus the rest of the one name it can
    become, or of the part all the names it can become share.

    A folder gets a trailing ``/``; ``~`` is understood. Hidden files are offered only
    after a typed dot.

    Returns:
        The completed text (it starts with ``value``), or ``None`` when nothing matches
        or nothing is left to add.
    """
    if not value:
        return None
    base = Path(os.path.expanduser(value))
    if not base.is_absolute():
        base = (cwd or Path.cwd()) / base
    if value.endswith(("/", os.sep)):
        folder, prefix = base, ""
    else:
        folder, prefix = base.parent, base.name
    try:
        with os.scandir(folder) as entries:
            names = sorted(
                (entry.name, entry.is_dir())
                for entry in entries
                if entry.name.startswith(prefix) and (prefix.startswith(".") or entry.name[0] != ".")
            )
    except OSError:
        return None
    if not names:
        return None
    if len(names) == 1:
        name, is_dir = names[0]
        rest = name[len(prefix) :] + ("/" if is_dir else "")
    else:
        rest = os.path.commonprefix([name for name, _ in names])[len(prefix) :]
    return value + rest if rest else None


class PathSuggester(Suggester):
    """Suggests the rest of a file-system path as it is typed (Tab or → takes it)."""

    def __init__(self, cwd: Path | None = None) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.cwd = cwd

    async def get_suggestion(self, value: str) -> str | None:
        return complete_path(value, self.cwd)


def pasted_paths(text: str) -> list[Path] | None:
    """The files a paste names, when it is nothing but paths to existing images.

    Terminals paste the path of a file dropped on them: quoted (``'my cat.png'``),
    with escaped spaces (``my\\ cat.png``), or as a ``file://`` URI; several files
    dropped at once come space-separated. A file counts as an image by its first
    bytes (PNG, JPEG, WebP, GIF), whatever its name.

    Returns:
        The paths, or ``None`` when the paste is anything else (it is then text).
    """
    text = text.strip()
    if not text or len(text) > 8192 or "\n" in text:
        return None
    try:
        words = shlex.split(text)
    except ValueError:
        return None
    if not words:
        return None
    paths: list[Path] = []
    for word in words:
        if word.startswith("file://"):
            parsed = urlparse(word)
            if parsed.netloc not in ("", "localhost"):
                return None
            word = unquote(parsed.path)
        path = Path(os.path.expanduser(word))
        if not _looks_like_image(path):
            return None
        paths.append(path)
    return paths


def _looks_like_image(path: Path) -> bool:
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return probe_mime(head) != "application/octet-stream"


def shown_names(attachments: Sequence[Attachment]) -> str:
    """The attachments' file names for a message, e.g. ``cat.png and dog.png``.

    >>> from gemmatui.core.images import from_bytes
    >>> png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000280000001e0")
    >>> shown_names([from_bytes(png, "/a/cat.png"), from_bytes(png, "dog.png")])
    'cat.png and dog.png'
    """
    names = [sanitize_line(Path(a.name).name or a.name, 40) for a in attachments]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
