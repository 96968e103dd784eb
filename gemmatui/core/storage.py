"""Conversations in SQLite: ``conversations.db`` under the data dir (``data_dir()``).

Two copies of the app may run at once against the same file, so:

* the database runs in WAL mode: readers never block the writer, and a process that
  dies mid-write leaves the last committed state intact;
* every write is one short transaction (``BEGIN IMMEDIATE`` … ``COMMIT``), committed
  at once: a message that :meth:`ConversationStore.add_message` returned an id for is
  on disk, whatever happens to the process afterwards;
* a writer that finds the file locked by the other copy waits (``busy_timeout``,
  5 s) instead of failing;
* one connection per store, shared between threads under a lock.

Images sent with a message are kept too, content-addressed: one file per distinct
image under the data dir, ``images/<first two hex digits>/<sha256>.<ext>`` (``ext``:
``png``, ``jpg``, ``webp``, ``gif``), written atomically (a temporary file in the same
folder, flushed to disk, then renamed over the name), so a file under its final name is
always whole, and an image sent twice, in any conversation, is stored once. The
``message_images`` table links a message to its images (sha256, name, format, pixel
size, bytes), in order. A file can go missing (deleted by hand, another disk): the
message then lists the image as missing (:meth:`ConversationStore.load_image` returns
``None``), nothing fails.

Deleting messages removes the image files no message references any more, and two
copies of the app never lose each other's images. Both sides decide under SQLite's
write lock, which only one process holds at a time:

* **adding** (:meth:`ConversationStore.add_message`): the file is written first,
  outside the lock (a large image must not hold up the other copy); then, inside the
  write transaction and *after* the reference rows are inserted, the file is checked
  and written again if it is gone;
* **deleting** (:meth:`ConversationStore.delete`, :meth:`~ConversationStore.delete_messages`):
  the rows go in one transaction; then a second write transaction counts, for each
  image those rows referenced, the references left, and unlinks the file only when
  there are none, before it releases the lock.

So if copy A deletes a conversation while copy B adds a message with the same image,
either B's transaction comes first (A then counts B's reference and keeps the file) or
A's sweep comes first (B, inside its own transaction, finds the file gone and writes it
again). A crash between the two steps of a delete leaves a file nothing references (a
leak, never a loss); the next delete of a message with that image sweeps it.

The schema is created with ``CREATE ... IF NOT EXISTS`` inside one ``BEGIN IMMEDIATE``
transaction, so opening a history written by an older gemmatui adds the images table
(schema version 2) and is safe with two copies starting at once.

:func:`open_history` opens the store for the app and never fails: a damaged file
(truncated, overwritten) is moved aside as ``conversations.db.corrupt-<timestamp>``
(with its ``-wal`` / ``-shm`` files; nothing is deleted) and a new one started; a data
dir that cannot be written gives an in-memory store (history off for the session).
Either way it says what happened (:class:`HistoryNotice`).

Nothing here imports Textual; the TUI and the tests use the same API.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

from gemmatui.core.errors import GemmaTuiError
from gemmatui.core.images import Attachment, ImageError, from_bytes
from gemmatui.core.text import sanitize, sanitize_line
from gemmatui.core.types import ChatStats
from gemmatui.core.units import format_bytes

Role = Literal["user", "assistant", "system", "error"]
Status = Literal["complete", "partial", "error"]

DB_NAME = "conversations.db"
#: The folder beside the database that holds the images, content-addressed.
IMAGES_DIR = "images"
BUSY_TIMEOUT_MS = 5000
SCHEMA_VERSION = 2
TITLE_LENGTH = 60
UNTITLED = "New conversation"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    title         TEXT    NOT NULL DEFAULT '',
    model         TEXT    NOT NULL,
    system_prompt TEXT    NOT NULL DEFAULT '',
    created_at    REAL    NOT NULL,
    updated_at    REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT    NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'error')),
    content         TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'complete'
                            CHECK (status IN ('complete', 'partial', 'error')),
    model           TEXT    NOT NULL DEFAULT '',
    stats_json      TEXT,
    created_at      REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
CREATE INDEX IF NOT EXISTS conversations_by_update ON conversations(updated_at);
CREATE TABLE IF NOT EXISTS message_images (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    format     TEXT    NOT NULL CHECK (format IN ('png', 'jpeg', 'webp', 'gif')),
    width      INTEGER NOT NULL,
    height     INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    PRIMARY KEY (message_id, position)
);
CREATE INDEX IF NOT EXISTS message_images_by_sha ON message_images(sha256);
"""

#: File name extension of each stored image format.
_EXTENSIONS: dict[str, str] = {"png": "png", "jpeg": "jpg", "webp": "webp", "gif": "gif"}

_STATS_FIELDS = {f.name for f in fields(ChatStats)}


class StorageError(GemmaTuiError):
    """The chat history could not be read or written (locked too long, disk full, …)."""


class CorruptHistory(StorageError):
    """The history file is not a sound SQLite database (truncated, overwritten, damaged)."""


#: SQLite's primary result codes for a damaged file.
_CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _is_corrupt(err: BaseException) -> bool:
    """Whether SQLite said the file itself is damaged (not locked, not read-only)."""
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _CORRUPT_CODES


def _check_integrity(path: Path) -> None:
    """Raise :class:`CorruptHistory` if ``path`` exists and SQLite finds it damaged.

    A file cut short can open and still fail on the first read of a lost page: the
    quick check reads every page once, so the damage shows now, not mid-chat. The
    connection is read-only: closing a read-write one on a damaged file deletes its
    ``-wal`` and ``-shm`` files, which may hold the last conversations.
    Anything else (a file that cannot be read here) is left to the real open to report.
    """
    if not path.is_file():
        return
    try:
        probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return
    try:
        rows = probe.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.Error as err:
        if _is_corrupt(err):
            raise CorruptHistory(f"the chat history {path} is damaged: {err}") from None
        return
    finally:
        probe.close()
    verdict = str(rows[0][0]) if rows else "ok"
    if verdict != "ok":
        raise CorruptHistory(f"the chat history {path} is damaged: {verdict}")


@contextmanager
def _friendly(path: Path) -> Iterator[None]:
    """Turn SQLite's exceptions into one line a person can act on."""
    try:
        yield
    except sqlite3.IntegrityError as err:
        raise StorageError(
            f"chat history: {err} (was the conversation deleted elsewhere?)"
        ) from None
    except sqlite3.Error as err:
        if _is_corrupt(err):
            raise CorruptHistory(f"the chat history {path} is damaged: {err}") from None
        raise StorageError(f"chat history {path}: {err}") from None


@dataclass(frozen=True)
class Conversation:
    """One saved conversation. ``title`` is empty until the first user message names it."""

    id: int
    title: str
    model: str
    system_prompt: str
    created_at: float  # seconds since the epoch
    updated_at: float

    @property
    def display_title(self) -> str:
        """The title, or a placeholder for a conversation nobody has written in yet."""
        return self.title or UNTITLED


@dataclass(frozen=True)
class StoredImage:
    """An image saved with a message: what the database says about it.

    Its bytes are in a file (:attr:`path`); :meth:`ConversationStore.load_image` reads
    them back, or says the file is missing.

    Attributes:
        sha256: Hex digest of the bytes: the file's name.
        name: What it was called when attached (a file name).
        format: ``"png"``, ``"jpeg"``, ``"webp"`` or ``"gif"``.
        width: Pixels.
        height: Pixels.
        size: Bytes.
        path: Where its file is (or would be: it may be missing); ``None`` for a store
            kept in memory.
    """

    sha256: str
    name: str
    format: str
    width: int
    height: int
    size: int
    path: Path | None = None

    def card(self) -> str:
        """One line, as :meth:`Attachment.card <gemmatui.core.images.Attachment.card>` has it.

        >>> StoredImage("ab" * 32, "cat.png", "png", 640, 480, 320_000).card()
        'cat.png · 640×480 · 312.5 KiB'
        """
        return f"{self.name} · {self.width}×{self.height} · {format_bytes(self.size)}"


@dataclass(frozen=True)
class StoredMessage:
    """One saved message. ``stats`` is Ollama's final metrics for a finished reply;
    ``images`` the pictures sent with a user message, in order."""

    id: int
    conversation_id: int
    role: Role
    content: str
    status: Status
    model: str
    stats: ChatStats | None
    created_at: float
    images: tuple[StoredImage, ...] = ()


def title_from(text: str) -> str:
    """A conversation title from the first user message: its first non-empty line, cut short.

    >>> title_from("\\n  How big is Gemma 3 27B?\\nAnd 12B?")
    'How big is Gemma 3 27B?'
    >>> len(title_from("x" * 500)) <= 60
    True
    """
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if len(line) > TITLE_LENGTH:
        line = line[: TITLE_LENGTH - 1].rstrip() + "…"
    return line


def _stats_to_json(stats: ChatStats | None) -> str | None:
    return None if stats is None else json.dumps(asdict(stats))


def _stats_from_json(text: str | None) -> ChatStats | None:
    if not text:
        return None
    table = json.loads(text)
    return ChatStats(**{k: v for k, v in table.items() if k in _STATS_FIELDS})


class ConversationStore:
    """Saved conversations and their messages, safe to share between threads and processes.

    Args:
        directory: Where ``conversations.db`` lives; created when missing.
        clock: Wall-clock seconds for ``created_at`` / ``updated_at`` (tests freeze it).
        memory: Keep everything in memory and write nothing to ``directory`` (history
            off: the app works, nothing outlives the session). :attr:`path` still
            names where the file would be (exports go beside it).

    Raises:
        CorruptHistory: The file exists but is damaged (it is left as it is).
        StorageError: The file cannot be opened or created (read-only data dir, …).

    Attributes:
        saved: Whether the conversations are written to disk (``False`` with ``memory``).
    """

    def __init__(
        self, directory: Path, *, clock: Callable[[], float] = time.time, memory: bool = False
    ) -> None:
        self.path = Path(directory) / DB_NAME
        self.images_dir = Path(directory) / IMAGES_DIR
        self.saved = not memory
        self._now = clock
        self._lock = threading.RLock()
        # History off: image bytes live here for the session (nothing is written).
        self._memory_images: dict[str, bytes] = {}
        self._db: sqlite3.Connection | None = None
        if not memory:
            _check_integrity(self.path)
        try:
            if not memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                ":memory:" if memory else self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # autocommit; transactions are explicit below
                check_same_thread=False,  # shared between threads, guarded by self._lock
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as err:
            self._close_quietly()
            if _is_corrupt(err):
                raise CorruptHistory(f"the chat history {self.path} is damaged: {err}") from None
            raise StorageError(f"cannot open the chat history at {self.path}: {err}") from None
        try:
            with self._write() as db:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except StorageError:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, committed on exit (rolled back on error).

        ``BEGIN IMMEDIATE`` takes the write lock up front, so a second process waits
        for it here (busy_timeout) rather than failing half-way through.
        """
        with self._lock, _friendly(self.path):
            db = self._connection
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            try:
                db.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (disk full) leaves the transaction open on this
                # connection: end it, or every later write would fail to begin.
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock, _friendly(self.path):
            return self._connection.execute(sql, params).fetchall()

    @property
    def _connection(self) -> sqlite3.Connection:
        assert self._db is not None, "the store failed to open"
        return self._db

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
        with self._lock:
            self._close_quietly()

    # ------------------------------------------------------------------ conversations

    def create_conversation(
        self, model: str, system_prompt: str = "", title: str | None = None
    ) -> Conversation:
        """Start a conversation with ``model``; it is saved at once."""
        now = self._now()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO conversations (title, model, system_prompt, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (title or "", model, system_prompt, now, now),
            )
            conv_id = int(cursor.lastrowid or 0)
        return Conversation(conv_id, title or "", model, system_prompt, now, now)

    def get(self, conversation_id: int) -> Conversation | None:
        """The conversation with this id, or ``None`` when there is none (e.g. deleted)."""
        rows = self._read("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        return _conversation(rows[0]) if rows else None

    def list_conversations(self) -> list[Conversation]:
        """Every conversation, the most recently changed first."""
        rows = self._read("SELECT * FROM conversations ORDER BY updated_at DESC, id DESC")
        return [_conversation(row) for row in rows]

    def last_conversation(self) -> Conversation | None:
        """The most recently changed conversation: the one to resume on start."""
        rows = self._read("SELECT * FROM conversations ORDER BY updated_at DESC, id DESC LIMIT 1")
        return _conversation(rows[0]) if rows else None

    def rename(self, conversation_id: int, title: str) -> None:
        """Give a conversation a title (an empty title shows as "New conversation")."""
        with self._write() as db:
            db.execute(
                "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?",
                (title.strip(), self._now(), conversation_id),
            )

    def set_system_prompt(self, conversation_id: int, system_prompt: str) -> None:
        """Change the system prompt sent with this conversation's next requests."""
        with self._write() as db:
            db.execute(
                "UPDATE conversations SET system_prompt = ?, updated_at = ? WHERE id = ?",
                (system_prompt, self._now(), conversation_id),
            )

    def set_model(self, conversation_id: int, model: str) -> None:
        """Record that the conversation now talks to another model."""
        with self._write() as db:
            db.execute(
                "UPDATE conversations SET model = ?, updated_at = ? WHERE id = ?",
                (model, self._now(), conversation_id),
            )

    def delete(self, conversation_id: int) -> None:
        """Delete a conversation and all its messages, and the image files no other
        message uses (see the module's notes for how two copies stay safe)."""
        with self._write() as db:
            shas = _shas(
                db,
                "SELECT DISTINCT i.sha256 FROM message_images i"
                " JOIN messages m ON m.id = i.message_id WHERE m.conversation_id = ?",
                (conversation_id,),
            )
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        self._sweep(shas)

    # ------------------------------------------------------------------ messages

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        """The conversation's messages, oldest first, each with its images."""
        # One read transaction: one snapshot, so no message without its images.
        with self._lock, _friendly(self.path):
            db = self._connection
            db.execute("BEGIN")
            try:
                rows = db.execute(
                    "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id",
                    (conversation_id,),
                ).fetchall()
                image_rows = db.execute(
                    "SELECT i.* FROM message_images i JOIN messages m ON m.id = i.message_id"
                    " WHERE m.conversation_id = ? ORDER BY i.message_id, i.position",
                    (conversation_id,),
                ).fetchall()
            finally:
                db.execute("COMMIT")
        images: dict[int, list[StoredImage]] = {}
        for row in image_rows:
            images.setdefault(row["message_id"], []).append(self._image(row))
        return [_message(row, tuple(images.get(row["id"], ()))) for row in rows]

    def add_message(
        self,
        conversation_id: int,
        role: Role,
        content: str,
        status: Status = "complete",
        stats: ChatStats | None = None,
        model: str = "",
        images: Sequence[Attachment] = (),
    ) -> int:
        """Save one message and return its id; it is committed when this returns.

        The first user message of an untitled conversation also becomes its title.

        Args:
            images: Pictures sent with the message, in order: each is stored once by
                its content (:meth:`_put_file` before the transaction, checked again
                inside it, after its reference row: see the module's notes).

        Raises:
            StorageError: The database or an image file could not be written (then
                nothing of the message is saved).
        """
        now = self._now()
        for image in images:  # outside the lock: a large file must not hold up the other copy
            self._put_file(image)
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO messages"
                " (conversation_id, role, content, status, model, stats_json, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, role, content, status, model, _stats_to_json(stats), now),
            )
            message_id = int(cursor.lastrowid or 0)
            db.executemany(
                "INSERT INTO message_images"
                " (message_id, position, sha256, name, format, width, height, size)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (message_id, i, a.sha256, a.name, a.format, a.width, a.height, a.size)
                    for i, a in enumerate(images)
                ],
            )
            # Referenced now, under the write lock: a delete in another copy that swept
            # this file since it was written above is over, and no new sweep can start
            # before this commits. Put it back if it went.
            for image in images:
                self._put_file(image)
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )
            if role == "user":
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = ''",
                    (title_from(content), conversation_id),
                )
            return message_id

    def delete_messages(self, conversation_id: int, message_ids: Iterable[int]) -> None:
        """Delete exactly these messages of the conversation (regenerate a reply).

        Only the given ids go: messages another copy of the app added to the same
        conversation meanwhile stay, whatever their ids. Ids of other conversations
        are ignored.
        """
        ids = sorted(set(message_ids))
        if not ids:
            return
        with self._write() as db:
            shas: set[str] = set()
            for message_id in ids:
                shas |= _shas(
                    db,
                    "SELECT i.sha256 FROM message_images i JOIN messages m ON m.id = i.message_id"
                    " WHERE m.conversation_id = ? AND m.id = ?",
                    (conversation_id, message_id),
                )
            db.executemany(
                "DELETE FROM messages WHERE conversation_id = ? AND id = ?",
                [(conversation_id, message_id) for message_id in ids],
            )
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?",
                (self._now(), conversation_id),
            )
        self._sweep(shas)

    # ------------------------------------------------------------------ images

    def image_path(self, sha256: str, format: str) -> Path:
        """Where the image with this digest and format is kept (it may not exist).

        >>> store = ConversationStore(Path("/data"), memory=True)
        >>> store.image_path("ab" + "0" * 62, "jpeg").as_posix()  # doctest: +ELLIPSIS
        '/data/images/ab/ab000...000.jpg'
        """
        return self.images_dir / sha256[:2] / f"{sha256}.{_EXTENSIONS.get(format, 'bin')}"

    def load_image(self, image: StoredImage) -> Attachment | None:
        """The image's bytes, checked, as an :class:`Attachment` to show and send again.

        Returns:
            ``None`` when the file is missing, cannot be read, or no longer holds the
            bytes it was saved with (its digest differs): the image is shown as missing
            and not sent. Never raises.
        """
        if self.saved:
            try:
                data = self.image_path(image.sha256, image.format).read_bytes()
            except OSError:
                return None
        else:
            data = self._memory_images.get(image.sha256, b"")
        if hashlib.sha256(data).hexdigest() != image.sha256:
            return None
        try:
            loaded = from_bytes(data, image.name)
        except ImageError:
            return None
        return loaded

    def _image(self, row: sqlite3.Row) -> StoredImage:
        return StoredImage(
            sha256=row["sha256"],
            name=row["name"],
            format=row["format"],
            width=row["width"],
            height=row["height"],
            size=row["size"],
            path=self.image_path(row["sha256"], row["format"]) if self.saved else None,
        )

    def _put_file(self, image: Attachment) -> None:
        """Make sure the image's file is there, whole: written atomically when it is
        missing or of the wrong size (an identical image is never written twice).

        Raises:
            StorageError: The file could not be written (disk full, read-only dir).
        """
        if not self.saved:
            self._memory_images[image.sha256] = image.data
            return
        path = self.image_path(image.sha256, image.format)
        try:
            if path.stat().st_size == image.size:
                return
        except OSError:
            pass  # missing: write it
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(
                prefix=f".{image.sha256[:12]}-", suffix=".tmp", dir=path.parent
            )
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(image.data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, path)
            except BaseException:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
                raise
        except OSError as err:
            raise StorageError(
                f"cannot save the image {sanitize_line(image.name)} under {self.images_dir}: "
                f"{err.strerror or err}"
            ) from None

    def _sweep(self, shas: Iterable[str]) -> None:
        """Unlink the files of these images that no message references any more.

        Counted and unlinked inside one write transaction, so no other copy can add a
        reference between the count and the unlink (and one that added a reference
        just before re-creates the file in its own transaction). A file that cannot be
        removed stays (a leak, never an error).
        """
        shas = sorted(set(shas))
        if not shas:
            return
        with self._write() as db:
            for sha in shas:
                if _shas(db, "SELECT sha256 FROM message_images WHERE sha256 = ? LIMIT 1", (sha,)):
                    continue
                if not self.saved:
                    self._memory_images.pop(sha, None)
                    continue
                for ext in sorted(set(_EXTENSIONS.values())):
                    try:
                        (self.images_dir / sha[:2] / f"{sha}.{ext}").unlink()
                    except OSError:
                        pass  # gone already, or cannot be removed: nothing references it

    # ------------------------------------------------------------------ export

    def export_markdown(self, conversation_id: int, *, folder: Path | None = None) -> str:
        """The conversation as a Markdown document (title, model, system prompt, turns).

        Every stored text is sanitised (:mod:`gemmatui.core.text`), each on its own: a
        file a person opens (or prints with ``cat``) must not carry a model's escape
        sequences. The history itself keeps the raw text.

        A user message's images follow its text as Markdown image links to the stored
        files: ``![cat.png](../images/ab/ab12….png)``, relative to ``folder`` (where the
        export is written: the document keeps working when the data dir moves with it),
        or ``file://`` URIs when no folder is given. An image whose file is missing is
        listed as text, marked missing; with history off (nothing on disk) as not saved.

        Args:
            folder: The folder the document will be written to (links relative to it).

        Raises:
            KeyError: There is no conversation with this id.
        """
        conv = self.get(conversation_id)
        if conv is None:
            raise KeyError(conversation_id)
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(conv.created_at))
        title, model = sanitize_line(conv.display_title), sanitize_line(conv.model)
        lines = [f"# {title}", "", f"- Model: `{model}`", f"- Started: {created}"]
        if conv.system_prompt:
            lines += ["", "## System prompt", "", *_quote(sanitize(conv.system_prompt))]
        for msg in self.messages(conversation_id):
            lines.append("")
            content = sanitize(msg.content)
            if msg.role == "user":
                lines += ["## You", "", content]
                lines += [self._image_link(image, folder) for image in msg.images]
            elif msg.role == "assistant":
                lines += [f"## {sanitize_line(msg.model) if msg.model else model}", "", content]
                if msg.status == "partial":
                    lines += ["", "*(stopped: the reply is incomplete)*"]
                elif msg.status == "error":
                    lines += ["", "*(interrupted: the reply is incomplete)*"]
            elif msg.role == "error":
                lines += _quote(f"**Error:** {content}")
            else:
                lines += ["## System", "", *_quote(content)]
        return "\n".join(lines).rstrip() + "\n"

    def _image_link(self, image: StoredImage, folder: Path | None) -> str:
        """One exported image: a Markdown image link, or a line saying why there is none."""
        alt = _markdown_alt(image.name)
        if image.path is None:
            return f"- *(image not saved: {alt} · {image.width}×{image.height})*"
        if not image.path.is_file():
            return f"- *(image missing: {alt} · {image.width}×{image.height}, was {image.path})*"
        if folder is None:
            target = image.path.resolve().as_uri()
        else:
            target = Path(os.path.relpath(image.path, folder)).as_posix()
        return f"![{alt}]({target})"


def _markdown_alt(name: str) -> str:
    r"""An image's name as Markdown alt text: one sanitised line, brackets escaped.

    >>> _markdown_alt("a [b].png")
    'a \\[b\\].png'
    """
    text = sanitize_line(name) or "image"
    for char in "\\[]":
        text = text.replace(char, "\\" + char)
    return text


def _shas(db: sqlite3.Connection, sql: str, params: tuple = ()) -> set[str]:
    """The first column of a query's rows, as a set (image digests)."""
    return {str(row[0]) for row in db.execute(sql, params).fetchall()}


@dataclass(frozen=True)
class HistoryNotice:
    """What went wrong opening the chat history at start-up, for the app to say.

    Attributes:
        saved: Whether conversations are saved this session (``False``: history off).
        reason: What went wrong, one line.
        moved_to: Where the damaged file now is; ``None`` when nothing was moved.
    """

    saved: bool
    reason: str
    moved_to: Path | None = None


def open_history(
    directory: Path, *, clock: Callable[[], float] = time.time
) -> tuple[ConversationStore, HistoryNotice | None]:
    """Open the chat history for the app; never fails.

    * A damaged file is moved aside (:func:`move_aside`: renamed, never deleted) and a
      new, empty history started in its place.
    * A history that cannot be opened or created (read-only or missing data dir, a
      damaged file that cannot be moved) gives an in-memory store: the app works,
      nothing is saved.

    Returns:
        The store, and what went wrong (``None`` when nothing did).
    """
    path = Path(directory) / DB_NAME
    try:
        return ConversationStore(directory, clock=clock), None
    except CorruptHistory as err:
        damage = str(err)
    except StorageError as err:
        return ConversationStore(directory, clock=clock, memory=True), HistoryNotice(
            saved=False, reason=str(err)
        )
    try:
        moved = move_aside(path, clock())
    except OSError as err:
        reason = f"{damage}; it could not be moved aside ({err.strerror or err})"
        return ConversationStore(directory, clock=clock, memory=True), HistoryNotice(
            saved=False, reason=reason
        )
    try:
        return ConversationStore(directory, clock=clock), HistoryNotice(True, damage, moved)
    except StorageError as err:
        return ConversationStore(directory, clock=clock, memory=True), HistoryNotice(
            saved=False, reason=f"{damage}; a new one could not be started: {err}", moved_to=moved
        )


def move_aside(path: Path, when: float) -> Path:
    """Rename a damaged database to ``<name>.corrupt-<YYYYmmdd-HHMMSS>``, with its
    ``-wal`` and ``-shm`` files renamed to match (SQLite finds them by that name).

    A name already taken gets ``-2``, ``-3``... Nothing is deleted.

    Returns:
        The new path of the database file.

    Raises:
        OSError: The file could not be renamed (read-only data dir).
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    base = f"{path.name}.corrupt-{stamp}"
    target = path.with_name(base)
    copy = 1
    while any(
        Path(f"{target}{suffix}").exists() for suffix in ("", "-wal", "-shm")
    ):
        copy += 1
        target = path.with_name(f"{base}-{copy}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        sibling = Path(f"{path}{suffix}")
        if sibling.exists():
            sibling.rename(Path(f"{target}{suffix}"))
    return target


def _quote(text: str) -> list[str]:
    return [f"> {line}" if line else ">" for line in text.splitlines() or [""]]


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        title=row["title"],
        model=row["model"],
        system_prompt=row["system_prompt"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _message(row: sqlite3.Row, images: tuple[StoredImage, ...] = ()) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        conversation_id=row["conversation_id"],
        role=row["role"],
        content=row["content"],
        status=row["status"],
        model=row["model"],
        stats=_stats_from_json(row["stats_json"]),
        created_at=row["created_at"],
        images=images,
    )
