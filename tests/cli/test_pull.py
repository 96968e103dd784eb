"""``gemmatui pull``: progress lines, resume, failures, disk space and the terminal bar."""

from __future__ import annotations

import io
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gemmatui.commands.pull import _BarView, check_disk_space
from gemmatui.core.catalog import get_variant
from gemmatui.core.errors import GemmaTuiError
from gemmatui.core.types import PullProgress
from tests.cli.conftest import REPO, Run
from tests.fake_ollama import GEMMA3_QAT, FakeOllama, closed_port_url

TAG = "gemma3:1b-it-qat"


def test_pull_prints_one_line_per_stage(gemmatui: Run, fake: FakeOllama) -> None:
    done = gemmatui("pull", "1b")
    assert done.returncode == 0, done.stderr
    layers = [f"pulling {digest[7:19]}" for digest, _ in GEMMA3_QAT[TAG].layers()]
    assert done.stderr.splitlines() == [
        "pulling manifest",
        f"{layers[0]} (999 MB)",
        f"{layers[1]} (358 B)",
        f"{layers[2]} (8.4 KB)",
        f"{layers[3]} (77 B)",
        f"{layers[4]} (490 B)",
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ]
    assert done.stdout == f'{TAG} is ready: gemmatui ask --model 1b "hello"\n'
    assert TAG in fake.installed()
    assert fake.bodies("/api/pull") == [{"model": TAG, "insecure": False, "stream": True}]


def test_interrupted_pull_resumes_when_run_again(gemmatui: Run, fake: FakeOllama) -> None:
    fake.add_fault("/api/pull", "drop", after=8)
    failed = gemmatui("pull", "gemma3:12b-it-qat")
    assert failed.returncode == 1
    # The server is still up: nothing to start, only the same pull to run again.
    assert failed.stderr.splitlines()[-1] == (
        "gemmatui: error: the pull of gemma3:12b-it-qat broke off (the connection dropped); "
        f"Ollama still answers at {fake.url}: run `gemmatui pull 12b` again to resume"
    )
    assert "ollama serve" not in failed.stderr
    share = fake.partial_bytes("12b") / GEMMA3_QAT["gemma3:12b-it-qat"].blob_bytes
    resumed = gemmatui("pull", "12b")
    assert resumed.returncode == 0
    assert f"resuming at {share:.0%})" in resumed.stderr.splitlines()[1]
    assert "gemma3:12b-it-qat" in fake.installed()


def test_disk_full_on_the_server_is_reported(gemmatui: Run, fake: FakeOllama) -> None:
    fake.add_fault("/api/pull", "error_line", after=3)
    done = gemmatui("pull", "1b")
    assert done.returncode == 1
    last = done.stderr.splitlines()[-1]
    assert last.startswith("gemmatui: error: Ollama could not pull gemma3:1b-it-qat: write ")
    assert last.endswith(
        "no space left on device (run the pull again to resume once this is fixed)"
    )


def test_unknown_name_is_a_usage_error(gemmatui: Run, fake: FakeOllama) -> None:
    done = gemmatui("pull", "3b")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "gemmatui: error: unknown model '3b': choose one of 1b, 4b, 12b, 27b"
    )
    assert fake.bodies("/api/pull") == []


def test_tag_missing_from_the_registry(gemmatui: Run, fake: FakeOllama) -> None:
    del fake.config.registry["gemma3:27b-it-qat"]
    done = gemmatui("pull", "27b")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "pulling manifest",
        "gemmatui: error: Ollama could not pull gemma3:27b-it-qat: pull model manifest: "
        "file does not exist (the registry has no such model; check the name)",
    ]


def test_server_down_exits_3(gemmatui: Run) -> None:
    done = gemmatui("pull", "1b", env={"OLLAMA_HOST": closed_port_url()})
    assert done.returncode == 3
    assert len(done.stderr.splitlines()) == 1 and "ollama serve" in done.stderr


def test_ctrl_c_cancels_and_a_new_pull_resumes(
    cli_env: dict, fake: FakeOllama, gemmatui: Run
) -> None:
    fake.config.pull_step_seconds = 0.05
    proc = subprocess.Popen(
        [sys.executable, "-m", "gemmatui", "pull", "27b"],
        cwd=REPO,
        env=cli_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while fake.partial_bytes("27b") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130 and out == ""
    assert err.splitlines()[-1] == (
        "gemmatui: pull of gemma3:27b-it-qat interrupted; run `gemmatui pull 27b` again to resume"
    )
    assert fake.wait_for_disconnect(timeout=5)
    fake.config.pull_step_seconds = 0
    resumed = gemmatui("pull", "27b")
    assert resumed.returncode == 0 and "resuming at" in resumed.stderr


def test_server_that_stops_mid_pull_is_told_to_start_again(cli_env: dict, fake: FakeOllama) -> None:
    fake.config.pull_step_seconds = 0.05
    url = fake.url
    proc = subprocess.Popen(
        [sys.executable, "-m", "gemmatui", "pull", "27b"],
        cwd=REPO,
        env=cli_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while fake.partial_bytes("27b") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        fake.stop()  # `ollama serve` went away mid-download
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 3 and out == ""
    last = err.splitlines()[-1]
    assert last.startswith(
        f"gemmatui: error: Ollama at {url} stopped answering during the pull of "
        "gemma3:27b-it-qat: start it again with `ollama serve`, then run `gemmatui pull 27b` "
        "to resume"
    ), last


def test_explain_broken_pull(fake: FakeOllama) -> None:
    """A stream that ended early or stalled: the server's state decides the advice; an
    error the server sent itself is kept as it is."""
    import asyncio

    from gemmatui.commands.pull import explain_broken_pull
    from gemmatui.core.errors import OllamaPullError, OllamaTimeout, OllamaUnavailable

    variant = get_variant("4b")
    early = OllamaPullError(variant.tag, "the pull ended before Ollama reported success")
    up = asyncio.run(explain_broken_pull(fake.url, variant, early))
    assert isinstance(up, OllamaPullError) and "ollama serve" not in str(up)
    assert str(up).endswith(
        f"ended before Ollama reported success; Ollama still answers at {fake.url}: "
        "run `gemmatui pull 4b` again to resume"
    )
    stalled = asyncio.run(explain_broken_pull(fake.url, variant, OllamaTimeout("no bytes")))
    assert "stalled" in str(stalled) and "`gemmatui pull 4b` again" in str(stalled)
    down = asyncio.run(explain_broken_pull(closed_port_url(), variant, early))
    assert isinstance(down, OllamaUnavailable) and "`ollama serve`" in str(down)
    try:
        raise OllamaPullError(variant.tag, "Ollama could not pull it: no space") from ValueError()
    except OllamaPullError as server_said:
        assert asyncio.run(explain_broken_pull(fake.url, variant, server_said)) is server_said


# --------------------------------------------------------------------------- disk space


def test_refuses_when_the_blob_cannot_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 90, 10))  # type: ignore[attr-defined]
    models = tmp_path / "models"  # not created yet: the nearest existing parent is checked
    with pytest.raises(GemmaTuiError) as err:
        check_disk_space(get_variant("27b"), models)
    assert str(err.value) == (
        f"not enough disk space for gemma3:27b-it-qat: it needs 18 GB, {models} has 10 B free "
        "(free some space, or start `ollama serve` with OLLAMA_MODELS on a larger disk)"
    )


def test_bytes_already_downloaded_are_not_needed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variant = get_variant("1b")
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    (blobs / "sha256-abc-partial").write_bytes(b"\1" * 1_000_000)
    (blobs / "sha256-abc-partial-0").write_text("{}")
    on_disk = sum(p.stat().st_blocks * 512 for p in blobs.iterdir())
    free = variant.blob_bytes - on_disk + 1
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(free, 0, free))  # type: ignore[attr-defined]
    check_disk_space(variant, tmp_path)  # enough once the partial download is counted
    (blobs / "sha256-abc-partial").unlink()
    with pytest.raises(GemmaTuiError):
        check_disk_space(variant, tmp_path)


# --------------------------------------------------------------------------- terminal bar


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def progress(
    done: int | None, total: int = 10_000_000_000, overall: int = 10_000_001_000
) -> PullProgress:
    return PullProgress(
        "pulling 7cd4618c1faf", "sha256:7cd4618c1faf" + "0" * 52, total, done, overall, done or 0
    )


def test_terminal_bar_shows_bytes_rate_and_eta() -> None:
    stream, clock = io.StringIO(), Clock()
    view = _BarView(stream, clock=clock, width=lambda: 120)
    view.update(progress(None))
    clock.now += 2
    view.update(progress(1_000_000_000))  # 1 GB in 2 s: 500 MB/s, 18 s to go
    last = stream.getvalue().split("\r")[-1]
    assert last.startswith("pulling 7cd4618c1faf [###")
    assert last.endswith(" 10% 1.0 GB/10 GB 500 MB/s ETA 18s all 10% ETA 18s\x1b[K")
    view.update(PullProgress("verifying sha256 digest"))
    assert stream.getvalue().endswith("\x1b[K\nverifying sha256 digest\n")


def test_terminal_bar_redraws_at_most_ten_times_a_second() -> None:
    stream, clock = io.StringIO(), Clock()
    view = _BarView(stream, clock=clock, width=lambda: 100)
    for step in range(1, 50):
        clock.now += 0.01
        view.update(progress(step * 1000))
    assert 4 <= stream.getvalue().count("\r") <= 6
    view.update(progress(10_000_000_000))  # the last one is always drawn
    assert "100%" in stream.getvalue().split("\r")[-1]


def test_terminal_bar_fits_a_narrow_terminal() -> None:
    stream = io.StringIO()
    view = _BarView(stream, clock=Clock(), width=lambda: 40)
    view.update(progress(5_000_000_000))
    assert len(stream.getvalue().split("\r")[-1].removesuffix("\x1b[K")) <= 39


def test_progress_is_redrawn_in_place_on_a_terminal(cli_env: dict, fake: FakeOllama) -> None:
    import os
    import pty
    import select

    fake.config.pull_step_seconds = 0.02
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gemmatui", "pull", "1b"],
        cwd=REPO,
        env={**cli_env, "COLUMNS": "100"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    shown = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            shown += data
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        os.close(master)
    text = shown.decode()
    assert text.startswith("pulling manifest\r\n")
    big_layer = text.split("\r\n")[1]
    assert big_layer.count("\rpulling ") > 1  # one line, redrawn in place
    last = big_layer.rsplit("\r", 1)[1]
    assert re.fullmatch(r"pulling \w{12} \[#+\] 100% 999 MB/999 MB [\d.]+ [KMG]?B/s\x1b\[K", last)
    assert text.endswith("verifying sha256 digest\r\nwriting manifest\r\nsuccess\r\n")
