"""ConversationStore: saved chats in SQLite (WAL), shared safely between processes."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gemmatui.core.images import Attachment, from_bytes
from gemmatui.core.storage import (
    DB_NAME,
    ConversationStore,
    CorruptHistory,
    StorageError,
    move_aside,
    open_history,
    title_from,
)
from gemmatui.core.types import ChatStats

MODEL = "gemma3:4b-it-qat"


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    s = ConversationStore(tmp_path / "data")
    yield s
    s.close()


def test_creates_directory_and_wal_database(tmp_path: Path) -> None:
    """The data dir is created on demand and the database runs in WAL mode."""
    store = ConversationStore(tmp_path / "a" / "b")
    store.create_conversation(MODEL)
    db = sqlite3.connect(tmp_path / "a" / "b" / DB_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    store.close()


def test_conversation_round_trip_and_title_from_first_user_message(
    store: ConversationStore,
) -> None:
    """A new conversation is untitled until the first user message names it; a later
    user message does not rename it."""
    conv = store.create_conversation(MODEL, system_prompt="Be brief.")
    assert conv.title == "" and conv.display_title == "New conversation"
    store.add_message(conv.id, "user", "\n  What is QAT?  \nexplain")
    store.add_message(conv.id, "user", "second question")
    got = store.get(conv.id)
    assert got is not None
    assert (got.title, got.model, got.system_prompt) == ("What is QAT?", MODEL, "Be brief.")


def test_messages_keep_order_status_and_stats(store: ConversationStore) -> None:
    """Messages come back oldest first with their status and Ollama's final stats."""
    conv = store.create_conversation(MODEL)
    stats = ChatStats(eval_count=42, eval_duration_s=1.5, prompt_eval_count=7, load_duration_s=2.0)
    store.add_message(conv.id, "user", "hi")
    store.add_message(conv.id, "assistant", "hello", stats=stats, model=MODEL)
    store.add_message(conv.id, "assistant", "half a rep", status="partial", model=MODEL)
    store.add_message(conv.id, "error", "Ollama stopped answering")
    msgs = store.messages(conv.id)
    assert [(m.role, m.content, m.status) for m in msgs] == [
        ("user", "hi", "complete"),
        ("assistant", "hello", "complete"),
        ("assistant", "half a rep", "partial"),
        ("error", "Ollama stopped answering", "complete"),
    ]
    assert msgs[1].stats == stats and msgs[1].model == MODEL
    assert msgs[0].stats is None


def test_list_is_newest_first_and_last_conversation(tmp_path: Path) -> None:
    """The sidebar order: the conversation changed last comes first, and is resumed."""
    ticks = iter(range(100, 200))
    store = ConversationStore(tmp_path, clock=lambda: float(next(ticks)))
    a = store.create_conversation(MODEL, title="a")
    store.create_conversation(MODEL, title="b")
    assert [c.title for c in store.list_conversations()] == ["b", "a"]
    store.add_message(a.id, "user", "back to a")
    assert [c.title for c in store.list_conversations()] == ["a", "b"]
    last = store.last_conversation()
    assert last is not None and last.id == a.id
    store.close()


def test_rename_system_prompt_model_and_delete_cascades(store: ConversationStore) -> None:
    """Rename, change system prompt and model; deleting removes the messages too."""
    conv = store.create_conversation(MODEL)
    store.add_message(conv.id, "user", "x")
    store.rename(conv.id, "  Plans  ")
    store.set_system_prompt(conv.id, "You are terse.")
    store.set_model(conv.id, "gemma3:12b-it-qat")
    got = store.get(conv.id)
    assert got is not None
    assert (got.title, got.system_prompt, got.model) == (
        "Plans",
        "You are terse.",
        "gemma3:12b-it-qat",
    )
    store.delete(conv.id)
    assert store.get(conv.id) is None
    assert store.messages(conv.id) == []
    assert store.last_conversation() is None
    rows = store._read("SELECT COUNT(*) FROM messages")
    assert rows[0][0] == 0


def test_delete_messages_drops_the_reply_to_regenerate(store: ConversationStore) -> None:
    """Regenerate deletes the last reply and the error after it, keeping the question."""
    conv = store.create_conversation(MODEL)
    store.add_message(conv.id, "user", "q1")
    store.add_message(conv.id, "assistant", "a1")
    store.add_message(conv.id, "user", "q2")
    reply = store.add_message(conv.id, "assistant", "a2")
    error = store.add_message(conv.id, "error", "oops")
    store.delete_messages(conv.id, [reply, error])
    assert [m.content for m in store.messages(conv.id)] == ["q1", "a1", "q2"]


def test_adding_to_a_deleted_conversation_is_a_friendly_error(store: ConversationStore) -> None:
    """Another copy deleted the conversation: the error is one line, not sqlite's."""
    conv = store.create_conversation(MODEL)
    store.delete(conv.id)
    with pytest.raises(StorageError, match="deleted elsewhere"):
        store.add_message(conv.id, "user", "hello?")


def test_unopenable_path_is_a_storage_error(tmp_path: Path) -> None:
    """A data dir that is a file gives a StorageError naming the path."""
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StorageError, match="cannot open the chat history"):
        ConversationStore(blocker)


def test_export_markdown(tmp_path: Path) -> None:
    """Export: title, model, system prompt as a quote, turns as sections, incomplete
    replies and errors marked."""
    store = ConversationStore(tmp_path, clock=lambda: 0.0)
    conv = store.create_conversation(MODEL, system_prompt="Be brief.\nUse lists.")
    store.add_message(conv.id, "user", "Explain *QAT*")
    store.add_message(conv.id, "assistant", "QAT is **quantization-aware** training.", model=MODEL)
    store.add_message(conv.id, "user", "More")
    store.add_message(conv.id, "assistant", "Half", status="partial", model=MODEL)
    store.add_message(conv.id, "assistant", "Cut", status="error", model=MODEL)
    store.add_message(conv.id, "error", "Ollama stopped answering")
    text = store.export_markdown(conv.id)
    assert text.startswith("# Explain *QAT*\n\n- Model: `gemma3:4b-it-qat`\n")
    assert "## System prompt\n\n> Be brief.\n> Use lists.\n" in text
    assert (
        "## You\n\nExplain *QAT*\n\n## gemma3:4b-it-qat\n\nQAT is **quantization-aware** training."
        in text
    )
    assert "Half\n\n*(stopped: the reply is incomplete)*" in text
    assert "Cut\n\n*(interrupted: the reply is incomplete)*" in text
    assert text.endswith("> **Error:** Ollama stopped answering\n")
    with pytest.raises(KeyError):
        store.export_markdown(999)
    store.close()


def test_title_from_cuts_long_lines() -> None:
    """Long first lines are cut to 60 characters with an ellipsis."""
    title = title_from("word " * 40)
    assert len(title) == 60 and title.endswith("…")
    assert title_from("   \n\n") == ""


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.text(), title=st.text(max_size=80))
def test_unicode_round_trips(store: ConversationStore, content: str, title: str) -> None:
    """Any unicode text (NULs, emoji, combining marks, RTL, newlines) comes back exactly."""
    conv = store.create_conversation(MODEL, system_prompt=content)
    msg_id = store.add_message(conv.id, "assistant", content)
    store.rename(conv.id, title)
    [msg] = store.messages(conv.id)
    got = store.get(conv.id)
    assert got is not None
    assert msg.id == msg_id and msg.content == content
    assert got.system_prompt == content and got.title == title.strip()


# --------------------------------------------------------------------------- processes

_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from gemmatui.core.storage import ConversationStore

    directory, conv_id = Path(sys.argv[1]), int(sys.argv[2])
    tag, count = sys.argv[3], int(sys.argv[4])
    store = ConversationStore(directory)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(count):
        store.add_message(conv_id, "user", f"{tag}-{i}")
        store.list_conversations()  # readers interleave with the other writer
    store.close()
    """
)


def _spawn(code: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    """Two app copies append to the same conversation at the same time: every message
    of both is there afterwards, each copy's in its own order."""
    store = ConversationStore(tmp_path)
    conv = store.create_conversation(MODEL)
    count = 150
    procs = [_spawn(_WRITER, tmp_path, conv.id, tag, count) for tag in ("a", "b")]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    contents = [m.content for m in store.messages(conv.id)]
    assert len(contents) == 2 * count
    for tag in ("a", "b"):
        assert [c for c in contents if c.startswith(f"{tag}-")] == [
            f"{tag}-{i}" for i in range(count)
        ]
    assert sqlite3.connect(store.path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()


_CRASHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from gemmatui.core.storage import ConversationStore

    store = ConversationStore(Path(sys.argv[1]))
    conv = store.create_conversation("m")
    for i in range(20):
        print(store.add_message(conv.id, "user", f"msg-{i}"), flush=True)
    sys.stdin.readline()  # the parent kills us here, connection still open
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_process_loses_nothing_committed(tmp_path: Path) -> None:
    """A copy killed (SIGKILL) right after add_message returned: every message it
    reported saved is in the database, which opens cleanly."""
    proc = _spawn(_CRASHER, tmp_path)
    assert proc.stdout is not None
    ids = [int(proc.stdout.readline()) for _ in range(20)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    store = ConversationStore(tmp_path)
    last = store.last_conversation()
    assert last is not None
    msgs = store.messages(last.id)
    assert [m.id for m in msgs] == ids
    assert [m.content for m in msgs] == [f"msg-{i}" for i in range(20)]
    store.close()


def test_delete_messages_removes_only_the_given_ids(tmp_path: Path) -> None:
    """Two stores on the same file: deleting the ids one shows leaves the messages the
    other added in between."""
    one, two = ConversationStore(tmp_path), ConversationStore(tmp_path)
    try:
        conv = one.create_conversation("m")
        question = one.add_message(conv.id, "user", "q")
        reply = one.add_message(conv.id, "assistant", "a")
        theirs = two.add_message(conv.id, "user", "from two")
        error = one.add_message(conv.id, "error", "oops")
        other_conv = two.create_conversation("m")
        elsewhere = two.add_message(other_conv.id, "user", "x")
        one.delete_messages(conv.id, [reply, error, elsewhere])
        assert [m.id for m in two.messages(conv.id)] == [question, theirs]
        assert [m.id for m in one.messages(other_conv.id)] == [elsewhere]
        one.delete_messages(conv.id, [])
        assert len(one.messages(conv.id)) == 2
    finally:
        one.close()
        two.close()


def _history_with_one_conversation(directory: Path) -> None:
    store = ConversationStore(directory)
    conv = store.create_conversation(MODEL)
    for i in range(200):
        store.add_message(conv.id, "user", f"message {i} " * 40)
    store.close()


def _garbage(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not SQLite\n" * 500)


def _truncated(path: Path) -> None:
    _history_with_one_conversation(path.parent)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage", [_garbage, _truncated], ids=["garbage", "truncated"])
def test_a_damaged_file_is_a_corrupt_history_error(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    """Garbage or a file cut short: CorruptHistory (a StorageError), file left as it is."""
    path = tmp_path / DB_NAME
    damage(path)
    before = path.read_bytes()
    with pytest.raises(CorruptHistory, match="is damaged"):
        ConversationStore(tmp_path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("damage", [_garbage, _truncated], ids=["garbage", "truncated"])
def test_open_history_moves_a_damaged_file_aside_and_starts_fresh(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    """The damaged file and its -wal (which may hold the last turns) are renamed, never
    deleted, to conversations.db.corrupt-<timestamp>[-wal], the -shm along with them; a
    new, working history takes their place."""
    path = tmp_path / DB_NAME
    damage(path)
    before = path.read_bytes()
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    wal.write_bytes(b"old wal")
    shm.write_bytes(b"old shm")
    noon = time.mktime((2025, 3, 14, 12, 0, 0, 0, 0, -1))
    store, notice = open_history(tmp_path, clock=lambda: noon)
    try:
        assert notice is not None and notice.saved
        assert "is damaged" in notice.reason
        moved = tmp_path / f"{DB_NAME}.corrupt-20250314-120000"
        assert notice.moved_to == moved
        assert moved.read_bytes() == before
        assert Path(f"{moved}-wal").read_bytes() == b"old wal"
        assert Path(f"{moved}-shm").exists()  # SQLite's scratch index: moved, not kept as is
        assert store.saved and store.list_conversations() == []
        conv = store.create_conversation(MODEL)
        store.add_message(conv.id, "user", "a fresh start")
    finally:
        store.close()
    again = ConversationStore(tmp_path)
    assert [c.title for c in again.list_conversations()] == ["a fresh start"]
    again.close()


def test_move_aside_never_overwrites_an_earlier_copy(tmp_path: Path) -> None:
    """Two damaged files in the same second: the second gets its own name."""
    path = tmp_path / DB_NAME
    first, second = b"first", b"second"
    path.write_bytes(first)
    one = move_aside(path, 0.0)
    path.write_bytes(second)
    two = move_aside(path, 0.0)
    assert one != two and one.read_bytes() == first and two.read_bytes() == second
    assert not path.exists()


def test_open_history_on_an_unusable_data_dir_runs_in_memory(tmp_path: Path) -> None:
    """A data dir that cannot be created (here: a file is in the way): the store works
    in memory, saves nothing, and the notice says history is off and why."""
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    store, notice = open_history(blocker / "data")
    try:
        assert notice is not None and not notice.saved and notice.moved_to is None
        assert "cannot open the chat history" in notice.reason
        assert not store.saved
        conv = store.create_conversation(MODEL)
        store.add_message(conv.id, "user", "kept for this session")
        assert [m.content for m in store.messages(conv.id)] == ["kept for this session"]
    finally:
        store.close()
    assert blocker.read_text() == "not a dir"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_open_history_on_a_read_only_data_dir_runs_in_memory(tmp_path: Path) -> None:
    """A read-only data dir without a history: history off, nothing written there."""
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o500)
    try:
        store, notice = open_history(data)
        store.close()
        assert notice is not None and not notice.saved
        assert list(data.iterdir()) == []
    finally:
        data.chmod(0o700)


def test_open_history_keeps_a_sound_history(tmp_path: Path) -> None:
    """Nothing wrong: the history opens as it is, no notice."""
    _history_with_one_conversation(tmp_path)
    store, notice = open_history(tmp_path)
    try:
        assert notice is None and store.saved and len(store.list_conversations()) == 1
    finally:
        store.close()
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []


# --------------------------------------------------------------------------- images


def _png(seed: int = 0, width: int = 3, height: int = 2) -> bytes:
    from tests.unit.test_images import make_png

    return make_png(width, height, seed=seed)


def _image(seed: int = 0, name: str = "cat.png") -> Attachment:
    return from_bytes(_png(seed), name)


def _files(store: ConversationStore) -> list[Path]:
    """The image files under the store's images folder (temporary files included)."""
    if not store.images_dir.exists():
        return []
    return sorted(p for p in store.images_dir.rglob("*") if p.is_file())


def test_images_are_stored_by_content_and_come_back_with_their_message(
    store: ConversationStore,
) -> None:
    """The file is ``images/<2 hex>/<sha256>.png`` with the exact bytes; the message lists
    its images in order, and load_image gives the same bytes back."""
    cat, dog = _image(1, "cat.png"), _image(2, "dog.png")
    conv = store.create_conversation(MODEL)
    store.add_message(conv.id, "user", "what is this?", images=[cat, dog])
    [msg] = store.messages(conv.id)
    assert [(i.name, i.sha256, i.format, i.width, i.height, i.size) for i in msg.images] == [
        ("cat.png", cat.sha256, "png", 3, 2, cat.size),
        ("dog.png", dog.sha256, "png", 3, 2, dog.size),
    ]
    path = store.images_dir / cat.sha256[:2] / f"{cat.sha256}.png"
    assert msg.images[0].path == path and path.read_bytes() == cat.data
    loaded = store.load_image(msg.images[0])
    assert loaded is not None and loaded.data == cat.data and loaded.name == "cat.png"
    assert hashlib.sha256(loaded.data).hexdigest() == cat.sha256
    assert len(_files(store)) == 2  # no temporary file left behind


def test_an_identical_image_is_stored_once(store: ConversationStore) -> None:
    """The same bytes under two names, in two conversations: one file."""
    one, two = store.create_conversation(MODEL), store.create_conversation(MODEL)
    store.add_message(one.id, "user", "a", images=[_image(5, "a.png")])
    store.add_message(two.id, "user", "b", images=[_image(5, "b.png"), _image(5, "c.png")])
    assert len(_files(store)) == 1
    assert [i.name for i in store.messages(two.id)[0].images] == ["b.png", "c.png"]


def test_deleting_removes_only_images_no_other_message_uses(store: ConversationStore) -> None:
    """Deleting a conversation removes its own images' files and keeps the ones another
    conversation still sends; deleting that one too removes the last file."""
    shared, own = _image(1), _image(2)
    keep, drop = store.create_conversation(MODEL), store.create_conversation(MODEL)
    store.add_message(keep.id, "user", "k", images=[shared])
    store.add_message(drop.id, "user", "d", images=[shared, own])
    store.delete(drop.id)
    assert [p.name for p in _files(store)] == [f"{shared.sha256}.png"]
    assert store.load_image(store.messages(keep.id)[0].images[0]) is not None
    store.delete(keep.id)
    assert _files(store) == []


def test_deleting_messages_sweeps_their_images(store: ConversationStore) -> None:
    conv = store.create_conversation(MODEL)
    first = store.add_message(conv.id, "user", "1", images=[_image(1)])
    store.add_message(conv.id, "user", "2", images=[_image(2)])
    store.delete_messages(conv.id, [first])
    assert [p.name for p in _files(store)] == [f"{_image(2).sha256}.png"]


def test_a_missing_image_file_is_reported_not_raised(store: ConversationStore) -> None:
    """A file deleted by hand, or overwritten with other bytes: load_image says None."""
    conv = store.create_conversation(MODEL)
    store.add_message(conv.id, "user", "x", images=[_image(1), _image(2)])
    first, second = store.messages(conv.id)[0].images
    assert first.path is not None and second.path is not None
    first.path.unlink()
    second.path.write_bytes(_png(9))
    assert store.load_image(first) is None
    assert store.load_image(second) is None
    assert "missing" in store.export_markdown(conv.id)


def test_a_failed_image_write_saves_nothing_of_the_message(
    store: ConversationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    conv = store.create_conversation(MODEL)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gemmatui.core.storage.tempfile.mkstemp", full)
    with pytest.raises(StorageError, match="cannot save the image cat.png.*No space left"):
        store.add_message(conv.id, "user", "x", images=[_image(1)])
    assert store.messages(conv.id) == []


def test_export_links_images_relative_to_the_export_folder(store: ConversationStore) -> None:
    """Relative to the folder given (exports/ beside the images: ../images/...), else
    file:// URIs; the name is one line with its brackets escaped."""
    img = _image(3, "shot [1].png")
    conv = store.create_conversation(MODEL)
    store.add_message(conv.id, "user", "look", images=[img])
    exports = store.path.parent / "exports"
    relative = f"../images/{img.sha256[:2]}/{img.sha256}.png"
    text = store.export_markdown(conv.id, folder=exports)
    assert f"look\n![shot \\[1\\].png]({relative})" in text
    assert (exports / relative).resolve().read_bytes() == img.data
    uri = (store.images_dir / img.sha256[:2] / f"{img.sha256}.png").resolve().as_uri()
    assert f"![shot \\[1\\].png]({uri})" in store.export_markdown(conv.id)


def test_history_off_keeps_images_in_memory_only(tmp_path: Path) -> None:
    memory = ConversationStore(tmp_path / "ro", memory=True)
    conv = memory.create_conversation(MODEL)
    memory.add_message(conv.id, "user", "x", images=[_image(1)])
    [image] = memory.messages(conv.id)[0].images
    assert image.path is None and not (tmp_path / "ro").exists()
    loaded = memory.load_image(image)
    assert loaded is not None and loaded.data == _png(1)
    assert "image not saved: cat.png" in memory.export_markdown(conv.id)
    memory.delete(conv.id)
    assert memory.load_image(image) is None
    memory.close()


def test_a_version_1_history_gains_the_images_table(tmp_path: Path) -> None:
    """A database written before images existed opens, keeps its messages and takes
    images from then on."""
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / DB_NAME)
    db.executescript(
        """
        CREATE TABLE conversations (id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL DEFAULT '', model TEXT NOT NULL,
            system_prompt TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL,
            updated_at REAL NOT NULL);
        CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL, content TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'complete',
            model TEXT NOT NULL DEFAULT '', stats_json TEXT, created_at REAL NOT NULL);
        INSERT INTO conversations VALUES (1, 'old', 'gemma3:4b-it-qat', '', 1.0, 1.0);
        INSERT INTO messages VALUES (1, 1, 'user', 'old text', 'complete', '', NULL, 1.0);
        PRAGMA user_version = 1;
        """
    )
    db.close()
    store = ConversationStore(data)
    [old] = store.messages(1)
    assert (old.content, old.images) == ("old text", ())
    store.add_message(1, "user", "new", images=[_image(1)])
    assert len(store.messages(1)[1].images) == 1
    store.close()
    db = sqlite3.connect(data / DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()


def test_a_delete_in_one_copy_never_loses_an_image_the_other_copy_is_adding(
    tmp_path: Path,
) -> None:
    """Copy A deletes the last conversation using an image at the worst moment: after
    copy B wrote the file, before B's transaction referenced it. B's transaction puts
    the file back, so B's message keeps its image."""
    a, b = ConversationStore(tmp_path / "data"), ConversationStore(tmp_path / "data")
    img = _image(7)
    doomed = a.create_conversation(MODEL)
    a.add_message(doomed.id, "user", "old", images=[img])
    mine = b.create_conversation(MODEL)
    real_put = b._put_file
    calls: list[str] = []

    def put_then_other_copy_deletes(image: Attachment) -> None:
        real_put(image)
        calls.append(image.sha256)
        if len(calls) == 1:  # the write outside B's transaction
            a.delete(doomed.id)  # A sees no reference left: it sweeps the file
            assert _files(a) == []

    b._put_file = put_then_other_copy_deletes  # type: ignore[method-assign]
    b.add_message(mine.id, "user", "new", images=[img])
    [image] = a.messages(mine.id)[0].images
    loaded = a.load_image(image)
    assert loaded is not None and loaded.data == img.data
    assert len(calls) == 2
    a.close()
    b.close()


def test_a_delete_after_the_other_copy_referenced_an_image_keeps_it(tmp_path: Path) -> None:
    a, b = ConversationStore(tmp_path / "data"), ConversationStore(tmp_path / "data")
    img = _image(8)
    doomed = a.create_conversation(MODEL)
    a.add_message(doomed.id, "user", "old", images=[img])
    mine = b.create_conversation(MODEL)
    b.add_message(mine.id, "user", "new", images=[img])
    a.delete(doomed.id)
    assert b.load_image(b.messages(mine.id)[0].images[0]) is not None
    a.close()
    b.close()


def test_two_copies_adding_and_deleting_at_once_never_lose_an_image(tmp_path: Path) -> None:
    """Two stores on one data dir (as two running copies), in two threads: A keeps adding
    and deleting conversations with the same images that B keeps sending. Every
    message B saved still has every image afterwards."""
    a, b = ConversationStore(tmp_path / "data"), ConversationStore(tmp_path / "data")
    images = [_image(seed) for seed in range(3)]
    mine = b.create_conversation(MODEL)
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            while not stop.is_set():
                conv = a.create_conversation(MODEL)
                a.add_message(conv.id, "user", "churn", images=images)
                a.delete(conv.id)
        except BaseException as err:  # surfaced below
            errors.append(err)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for i in range(60):
            b.add_message(mine.id, "user", f"m{i}", images=[images[i % 3]])
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not errors
    saved = b.messages(mine.id)
    assert len(saved) == 60
    for msg in saved:
        assert all(b.load_image(image) is not None for image in msg.images), msg.content
    b.delete(mine.id)
    assert _files(b) == []
    a.close()
    b.close()
