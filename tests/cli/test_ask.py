"""``gemmatui ask`` in a subprocess against the fake Ollama, plus its terminal filter."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemmatui.commands._common import choose_installed
from gemmatui.core.catalog import model_tag
from gemmatui.commands.ask import ControlFilter, read_prompt
from gemmatui.core.errors import NoSuitableModel, UsageError
from gemmatui.core.types import InstalledModel
from gemmatui.core.units import GiB
from tests.cli.conftest import REPO, Run, write_config
from tests.fake_ollama import DEFAULT_REPLY, FakeOllama, closed_port_url

WORDS = DEFAULT_REPLY.split(" ")
ASK = ("ask", "--model", "4b", "--ctx", "8k")


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("gemmatui: error: ")
    return lines[0]


# --------------------------------------------------------------------------- replies


def test_streams_the_reply_with_the_planned_context(gemmatui: Run, fake: FakeOllama) -> None:
    done = gemmatui(*ASK, "why", "is", "the", "sky", "blue?")
    assert (done.returncode, done.stdout, done.stderr) == (0, DEFAULT_REPLY + "\n", "")
    (body,) = fake.chat_requests()
    assert body["model"] == "gemma3:4b-it-qat"
    assert body["options"]["num_ctx"] == 8192
    assert body["keep_alive"] == "10m"  # the config default
    assert body["messages"] == [{"role": "user", "content": "why is the sky blue?"}]


def test_keep_alive_in_seconds_reaches_ollama_as_a_number(
    gemmatui: Run, fake: FakeOllama, cli_env: dict
) -> None:
    write_config(cli_env, "keep_alive = 300\n")
    done = gemmatui(*ASK, "hi")
    assert (done.returncode, done.stdout) == (0, DEFAULT_REPLY + "\n")
    (body,) = fake.chat_requests()
    assert body["keep_alive"] == 300 and not isinstance(body["keep_alive"], str)


def test_keep_alive_without_a_unit_is_a_config_error(
    gemmatui: Run, fake: FakeOllama, cli_env: dict
) -> None:
    write_config(cli_env, 'keep_alive = "300"\n')
    done = gemmatui(*ASK, "hi")
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert cli_env["GEMMATUI_CONFIG"] in line and "keep_alive '300'" in line
    assert fake.chat_requests() == []


def test_model_context_and_keep_alive_come_from_config(
    gemmatui: Run, fake: FakeOllama, cli_env: dict
) -> None:
    write_config(
        cli_env, 'model = "4b"\nnum_ctx = "16k"\nkeep_alive = "30m"\nsystem_prompt = "Be terse."\n'
    )
    assert gemmatui("ask", "hi").returncode == 0
    (body,) = fake.chat_requests()
    assert body["options"]["num_ctx"] == 16384
    assert body["keep_alive"] == "30m"
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}


def test_without_any_context_setting_the_fit_default_is_sent(
    gemmatui: Run, fake: FakeOllama
) -> None:
    assert gemmatui("ask", "--model", "4b", "hi").returncode == 0
    (body,) = fake.chat_requests()
    assert isinstance(body["options"]["num_ctx"], int) and body["options"]["num_ctx"] >= 2048


def test_sampling_options_and_system_prompt_reach_ollama(gemmatui: Run, fake: FakeOllama) -> None:
    done = gemmatui(
        *ASK, "--system", "You are terse.", "--temperature", "0.2", "--seed", "42", "hi"
    )
    assert done.returncode == 0
    (body,) = fake.chat_requests()
    assert body["options"] == {"num_ctx": 8192, "temperature": 0.2, "seed": 42}
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}


def test_piped_stdin_follows_the_prompt_after_a_blank_line(gemmatui: Run, fake: FakeOllama) -> None:
    done = gemmatui(*ASK, "summarize this", input="line one\nline two\n")
    assert done.returncode == 0 and done.stdout == DEFAULT_REPLY + "\n"
    assert (
        fake.chat_requests()[0]["messages"][-1]["content"]
        == "summarize this\n\nline one\nline two\n"
    )


@pytest.mark.parametrize("io_encoding", ["utf-8:strict", "utf-8:surrogateescape"])
def test_stdin_that_is_not_utf8_is_decoded_with_replacement(
    cli_env: dict, fake: FakeOllama, io_encoding: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gemmatui", *ASK, "x"],
        cwd=REPO,
        env={**cli_env, "PYTHONIOENCODING": io_encoding},
        input=b"caf\xe9\n",
        capture_output=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    assert fake.chat_requests()[0]["messages"][-1]["content"] == "x\n\ncaf\ufffd\n"


def test_dash_reads_the_whole_prompt_from_stdin(gemmatui: Run, fake: FakeOllama) -> None:
    assert gemmatui(*ASK, "-", input="only stdin").returncode == 0
    assert fake.chat_requests()[0]["messages"][-1]["content"] == "only stdin"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--temperature", "nan", "must be a finite number of 0 or more, not 'nan'"),
        ("--temperature", "inf", "must be a finite number of 0 or more, not 'inf'"),
        ("--temperature", "-0.5", "must be a finite number of 0 or more, not '-0.5'"),
        ("--temperature", "warm", "must be a finite number of 0 or more, not 'warm'"),
        ("--seed", "1.5", "invalid int value: '1.5'"),
    ],
)
def test_bad_sampling_options_are_one_line_usage_errors(
    gemmatui: Run, fake: FakeOllama, option: str, value: str, message: str
) -> None:
    done = gemmatui(*ASK, option, value, "hi")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"gemmatui ask: error: argument {option}: {message}\n"
    assert fake.chat_requests() == []


def test_zero_temperature_is_allowed(gemmatui: Run, fake: FakeOllama) -> None:
    assert gemmatui(*ASK, "--temperature", "0", "hi").returncode == 0
    assert fake.chat_requests()[0]["options"]["temperature"] == 0


def test_no_prompt_is_a_usage_error(gemmatui: Run, fake: FakeOllama) -> None:
    done = gemmatui(*ASK)
    assert done.returncode == 2
    assert "no prompt" in one_error_line(done.stderr)
    assert fake.chat_requests() == []


def test_json_prints_one_object(gemmatui: Run) -> None:
    done = gemmatui(*ASK, "--json", "hi")
    assert done.returncode == 0
    obj = json.loads(done.stdout)
    assert obj["model"] == "gemma3:4b-it-qat" and obj["num_ctx"] == 8192
    assert obj["response"] == DEFAULT_REPLY
    assert obj["stats"]["eval_count"] == len(WORDS)
    assert obj["stats"]["done_reason"] == "stop"
    assert obj["stats"]["time_to_first_token_s"] >= 0


def test_stats_line_goes_to_stderr(gemmatui: Run) -> None:
    done = gemmatui(*ASK, "--stats", "hi")
    assert done.stdout == DEFAULT_REPLY + "\n"
    assert done.stderr.startswith("gemma3:4b-it-qat at 8k: 20 tokens, ")
    assert "tok/s" in done.stderr and "done: stop" in done.stderr


# --------------------------------------------------------------------------- failures


def test_server_down_exits_3_with_one_line(gemmatui: Run) -> None:
    url = closed_port_url()
    done = gemmatui(*ASK, "hi", env={"OLLAMA_HOST": url})
    assert done.returncode == 3 and done.stdout == ""
    assert one_error_line(done.stderr) == (
        f"gemmatui: error: cannot reach Ollama at {url}: is Ollama running? "
        "start it with `ollama serve` (host from OLLAMA_HOST)"
    )


def test_model_missing_exits_4_with_the_pull_hint(gemmatui: Run) -> None:
    done = gemmatui("ask", "--model", "27b", "--ctx", "8k", "hi")
    assert done.returncode == 4
    assert one_error_line(done.stderr).endswith("pull it first: gemmatui pull 27b")


def test_nothing_installed_exits_4(gemmatui: Run, fake: FakeOllama) -> None:
    fake.set_installed([])
    done = gemmatui("ask", "--ctx", "8k", "hi")
    assert done.returncode == 4
    one_error_line(done.stderr)
    assert fake.chat_requests() == []


def test_bad_model_name_is_a_usage_error(gemmatui: Run) -> None:
    done = gemmatui("ask", "--model", "5b", "hi")
    assert done.returncode == 2
    assert "unknown model '5b'" in one_error_line(done.stderr)


@pytest.mark.parametrize("kind", ["error_line", "drop", "malformed"])
def test_error_mid_stream_exits_5_keeping_the_partial_text(
    gemmatui: Run, fake: FakeOllama, kind: str
) -> None:
    fake.add_fault("/api/chat", kind, after=3, message="CUDA error: out of memory")
    done = gemmatui(*ASK, "hi")
    assert done.returncode == 5
    assert done.stdout == " ".join(WORDS[:3]) + "\n"
    line = one_error_line(done.stderr)
    if kind == "error_line":
        assert line == "gemmatui: error: Ollama stopped the reply: CUDA error: out of memory"


def test_error_mid_stream_with_json_reports_partial_and_error(
    gemmatui: Run, fake: FakeOllama
) -> None:
    fake.add_fault("/api/chat", "error_line", after=2, message="boom")
    done = gemmatui(*ASK, "--json", "hi")
    assert done.returncode == 5
    obj = json.loads(done.stdout)
    assert obj["response"] == " ".join(WORDS[:2])
    assert obj["error"] == "Ollama stopped the reply: boom"


def test_load_failure_exits_with_ollamas_message(gemmatui: Run, fake: FakeOllama) -> None:
    fake.add_fault(
        "/api/chat", "http_error", status=500, message="llama runner process has terminated"
    )
    done = gemmatui(*ASK, "hi")
    assert done.returncode == 5
    assert (
        one_error_line(done.stderr)
        == "gemmatui: error: Ollama answered 500: llama runner process has terminated"
    )


def test_ctrl_c_exits_130_keeping_the_partial_text(cli_env: dict, fake: FakeOllama) -> None:
    fake.config.token_rate = 10
    proc = subprocess.Popen(
        [sys.executable, "-m", "gemmatui", *ASK, "hi"],
        cwd=REPO,
        env=cli_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no output within 30 s"
        first = os.read(proc.stdout.fileno(), 1)  # type: ignore[union-attr]
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    out = (first + rest).decode()
    assert proc.returncode == 130
    assert out.endswith("\n") and out.strip() and DEFAULT_REPLY.startswith(out.rstrip("\n"))
    assert out.rstrip("\n") != DEFAULT_REPLY  # it really was cut short
    assert err.decode() == "gemmatui: interrupted\n"
    assert fake.wait_for_disconnect(timeout=5)


def test_ctrl_c_with_json_prints_the_partial_reply_and_exits_130(
    cli_env: dict, fake: FakeOllama
) -> None:
    fake.config.token_rate = 5  # four seconds for the whole reply
    proc = subprocess.Popen(
        [sys.executable, "-m", "gemmatui", *ASK, "--json", "hi"],
        cwd=REPO,
        env=cli_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not fake.chat_requests():
            assert time.monotonic() < deadline, "no chat request within 30 s"
            time.sleep(0.05)
        time.sleep(1.0)  # a few tokens in
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.decode() == "gemmatui: interrupted\n"
    obj = json.loads(out)
    assert (obj["model"], obj["num_ctx"], obj["stats"]) == ("gemma3:4b-it-qat", 8192, None)
    assert obj["error"] == "interrupted"
    assert obj["response"] and DEFAULT_REPLY.startswith(obj["response"])
    assert obj["response"] != DEFAULT_REPLY  # it really was cut short


def test_closed_stdout_is_one_line_on_stderr(cli_env: dict, fake: FakeOllama) -> None:
    done = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "gemmatui", *ASK, "--json", "hi"],
        cwd=REPO,
        env=cli_env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    one_error_line(done.stderr)


# --------------------------------------------------------------------------- control sequences

HOSTILE = (
    "safe \x1b[31mred\x1b[0m \x1b]0;pwned\x07title \x1b[3 1mx \x9b2Jbell\x07 "
    "\x1b]8;;http://x\x1b\\link \r\nend"
)
CLEAN = "safe red title x bell link \nend"


def run_in_pty(cli_env: dict) -> bytes:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gemmatui", *ASK, "hi"],
        cwd=REPO,
        env=cli_env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    output = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                output += data
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        os.close(master)
    return output


def test_control_sequences_are_stripped_on_a_terminal(cli_env: dict, fake: FakeOllama) -> None:
    fake.config.reply = HOSTILE
    output = run_in_pty(cli_env).decode()
    assert output == CLEAN.replace("\n", "\r\n") + "\r\n"  # the terminal turns \n into \r\n


def test_control_sequences_pass_through_a_pipe(cli_env: dict, fake: FakeOllama) -> None:
    fake.config.reply = HOSTILE
    done = subprocess.run(
        [sys.executable, "-m", "gemmatui", *ASK, "hi"],
        cwd=REPO,
        env=cli_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert done.stdout == (HOSTILE + "\n").encode()  # bytes: keep the \r as sent


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("plain\ttext\n", "plain\ttext\n"),
        ("\x1b[1;31mbold\x1b[0m", "bold"),
        ("a\x1bPdevice control\x1b\\b", "ab"),
        ("a\x1b(Bb", "ab"),  # charset designation: ESC ( B
        ("a\x1b7b\x1b8c", "abc"),  # save/restore cursor
        ("\x00\x01\x08bs\x7f\x85\x9c", "bs"),
        ("é ✓ 日本", "é ✓ 日本"),
        ("\x1b\x1b[2Jx", "x"),
        ("\x1b[12\x07x", "x"),  # a control char aborts the CSI and is itself dropped
    ],
)
def test_control_filter_table(text: str, clean: str) -> None:
    assert ControlFilter().feed(text) == clean


def test_unterminated_string_gives_up_after_a_limit() -> None:
    f = ControlFilter()
    assert f.feed("\x1b]" + "x" * ControlFilter.MAX_STRING) == ""
    assert f.feed("xvisible") == "visible"  # one character past the limit ends the string


@settings(deadline=None)
@given(
    st.text(alphabet="ab\n\t\x1b[]0;m\x07\\\x9b\x9dP", max_size=60),
    st.lists(st.integers(0, 60), max_size=6),
)
def test_control_filter_is_the_same_however_the_stream_is_cut(text: str, cuts: list[int]) -> None:
    whole = ControlFilter().feed(text)
    f = ControlFilter()
    points = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assert "".join(f.feed(piece) for piece in pieces) == whole
    assert "\x1b" not in whole and "\x9b" not in whole and "\x07" not in whole


# --------------------------------------------------------------------------- prompt and imports


class FakeStdin(io.BytesIO):
    def __init__(self, text: str, tty: bool) -> None:
        super().__init__(text.encode())
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_read_prompt_leaves_a_terminal_alone() -> None:
    assert read_prompt(["hi", "there"], FakeStdin("ignored", tty=True)) == "hi there"
    assert read_prompt([], FakeStdin("piped", tty=False)) == "piped"
    assert read_prompt(["q"], FakeStdin("  \n", tty=False)) == "q"
    with pytest.raises(UsageError):
        read_prompt([], FakeStdin("", tty=True))


def test_ask_never_imports_textual_and_imports_ollama_only_to_talk(
    fake: FakeOllama, cli_env: dict
) -> None:
    code = (
        "import sys\n"
        "from gemmatui.cli import main\n"
        "rc = main(['ask', '--ctx', 'nonsense', 'hi'])\n"
        "rc += main(['ask', '--model', '5b', 'hi'])\n"
        "before = 'ollama' in sys.modules\n"
        "rc2 = main(['ask', '--model', '4b', '--ctx', '4k', 'hi'])\n"
        "loaded = 'ollama' in sys.modules, 'textual' in sys.modules\n"
        "print(rc, before, rc2, *loaded, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=cli_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stderr.splitlines()[-1] == "4 False 0 True False"  # two usage errors, then ok


# --------------------------------------------------------------------------- default model


def report_for(vram_gib: int, ram_gib: int):
    from gemmatui.core.fit import layered_settings, plan
    from gemmatui.core.hardware import simulated_snapshot

    return plan(simulated_snapshot(vram_gib * GiB, ram_gib * GiB), layered_settings({}, ctx=8192))


def installed(*keys: str) -> dict[str, InstalledModel]:
    tags = [f"gemma3:{key}-it-qat" for key in keys]
    return {tag: InstalledModel(tag, 1, "digest") for tag in tags}


@pytest.mark.parametrize(
    ("vram", "ram", "have", "chosen"),
    [
        (24, 64, ("4b", "12b"), "12b"),  # everything fits: the largest installed
        (24, 64, ("1b", "27b"), "27b"),
        (8, 32, ("1b", "4b", "12b"), "4b"),  # 12b would only run partly offloaded
        (0, 32, ("1b", "12b"), "1b"),  # no GPU: nothing above the fit's CPU choice (4b)
        (0, 32, ("4b",), "4b"),
    ],
)
def test_default_model_is_the_largest_installed_that_fits(
    vram: int, ram: int, have: tuple[str, ...], chosen: str
) -> None:
    assert choose_installed(report_for(vram, ram), installed(*have)).variant.key == chosen


@pytest.mark.parametrize(
    ("vram", "ram", "have", "pull"),
    [(24, 64, (), "27b"), (8, 32, ("12b", "27b"), "4b"), (0, 32, ("12b",), "4b")],
)
def test_no_suitable_model_says_what_to_pull(
    vram: int, ram: int, have: tuple[str, ...], pull: str
) -> None:
    with pytest.raises(NoSuitableModel) as err:
        choose_installed(report_for(vram, ram), installed(*have))
    assert f"pull one first: gemmatui pull {pull}, or choose one with --model" in str(err.value)
    assert err.value.exit_code == 4


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("27B", "gemma3:27b-it-qat"),
        ("gemma3:4b-it-qat", "gemma3:4b-it-qat"),
        ("llama3:8b", "llama3:8b"),
    ],
)
def test_model_names(name: str, tag: str) -> None:
    assert model_tag(name) == tag


def test_unknown_short_model_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown model '5b'"):
        model_tag("5b")


def test_doctests() -> None:
    import doctest

    from gemmatui.commands import ask

    result = doctest.testmod(ask)
    assert result.attempted >= 2 and result.failed == 0
