"""``gemmatui ask`` in a subprocess against the fake Ollama, plus the sanitiser it
streams through on a terminal (``gemmatui.core.text``)."""

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
from gemmatui.commands.ask import read_prompt
from gemmatui.core.errors import NoSuitableModel, UsageError
from gemmatui.core.text import Sanitizer
from gemmatui.core.types import InstalledModel
from gemmatui.core.units import GiB
from tests.cli.conftest import REPO, Run, write_config
from tests.fake_ollama import DEFAULT_REPLY, FakeLlamaServer, FakeOllama, closed_port_url

WORDS = DEFAULT_REPLY.split(" ")
ASK = ("ask", "--model", "4b", "--ctx", "8k")


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


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
        ("--seed", "1.5", f"must be a whole number from {-(2**63)} to {2**63 - 1}, not '1.5'"),
        (
            "--seed",
            "99999999999999999999999",
            f"must be a whole number from {-(2**63)} to {2**63 - 1}, "
            "not '99999999999999999999999'",
        ),
        ("--seed", str(2**63), f"must be a whole number from {-(2**63)} to {2**63 - 1}, "
         f"not '{2**63}'"),
        ("--timeout", "0", "must be a number of seconds above 0, not '0'"),
        ("--timeout", "nan", "must be a number of seconds above 0, not 'nan'"),
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
    assert (obj["error"], obj["exit_code"]) == ("interrupted", 130)
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


# --------------------------------------------------------------------------- odd OLLAMA_HOST values


@pytest.mark.parametrize("spelling", ["127.0.0.1:{port} ", '"127.0.0.1:{port}"', " '{url}' "])
def test_an_ollama_host_ollama_accepts_works(
    gemmatui: Run, fake: FakeOllama, spelling: str
) -> None:
    """Ollama strips spaces and quotes around OLLAMA_HOST; the official Python client
    parses the raw value when it is imported, and used to fail with a ValueError."""
    raw = spelling.format(port=fake.port, url=fake.url)
    done = gemmatui(*ASK, "hi", env={"OLLAMA_HOST": raw})
    assert (done.returncode, done.stdout, done.stderr) == (0, DEFAULT_REPLY + "\n", "")


@pytest.mark.parametrize("bad", ['"127.0.0.1:1"', "127.0.0.1:1 ", "127.0.0.1:notaport"])
def test_host_flag_wins_whatever_ollama_host_holds(
    gemmatui: Run, fake: FakeOllama, bad: str
) -> None:
    done = gemmatui(*ASK, "--host", fake.url, "hi", env={"OLLAMA_HOST": bad})
    assert (done.returncode, done.stdout, done.stderr) == (0, DEFAULT_REPLY + "\n", "")


# --------------------------------------------------------------------------- context and seed


def test_a_context_above_the_models_maximum_is_capped_and_said_once(
    gemmatui: Run, fake: FakeOllama
) -> None:
    fake.set_installed(["1b"])
    done = gemmatui("ask", "--model", "1b", "--ctx", "128k", "--stats", "hi")
    assert done.returncode == 0 and done.stdout == DEFAULT_REPLY + "\n"
    assert fake.chat_requests()[0]["options"]["num_ctx"] == 32768
    note, stats = done.stderr.splitlines()
    assert note == "gemmatui: 1b reads at most 32k tokens; using 32k"
    assert stats.startswith("gemma3:1b-it-qat at 32k: ")


def test_the_config_context_is_capped_too_and_json_says_the_real_value(
    gemmatui: Run, fake: FakeOllama, cli_env: dict
) -> None:
    fake.set_installed(["1b"])
    write_config(cli_env, 'num_ctx = "64k"\n')
    done = gemmatui("ask", "--model", "1b", "--json", "hi")
    assert done.returncode == 0
    assert json.loads(done.stdout)["num_ctx"] == 32768
    assert done.stderr == "gemmatui: 1b reads at most 32k tokens; using 32k\n"


def test_a_vision_model_gets_the_context_ollama_gives_it(gemmatui: Run, fake: FakeOllama) -> None:
    done = gemmatui("ask", "--model", "4b", "--ctx", "1024", "--json", "hi")
    assert done.returncode == 0 and json.loads(done.stdout)["num_ctx"] == 2048
    assert fake.chat_requests()[0]["options"]["num_ctx"] == 2048
    assert "using 2k" in one_line(done.stderr)


def test_a_context_within_the_models_range_is_sent_silently(
    gemmatui: Run, fake: FakeOllama
) -> None:
    done = gemmatui(*ASK, "hi")
    assert done.stderr == "" and fake.chat_requests()[0]["options"]["num_ctx"] == 8192


@pytest.mark.parametrize("value", ["3", "255", "1m", "200k"])
def test_a_context_out_of_range_is_a_usage_error(
    gemmatui: Run, fake: FakeOllama, value: str
) -> None:
    done = gemmatui("ask", "--model", "4b", "--ctx", value, "hi")
    assert done.returncode == 2 and done.stdout == ""
    line = one_error_line(done.stderr)
    assert line.endswith("is out of range: a context is from 256 to 128k tokens")
    assert fake.requests == []  # refused before talking to anyone


def test_a_config_context_out_of_range_is_a_usage_error(
    gemmatui: Run, fake: FakeOllama, cli_env: dict
) -> None:
    write_config(cli_env, "num_ctx = 100\n")
    done = gemmatui("ask", "--model", "4b", "hi")
    assert done.returncode == 2
    assert "config num_ctx 100 is out of range" in one_error_line(done.stderr)
    assert fake.chat_requests() == []


@pytest.mark.parametrize("value", [str(-(2**63)), str(2**63 - 1), "0"])
def test_every_seed_ollama_takes_is_sent(gemmatui: Run, fake: FakeOllama, value: str) -> None:
    assert gemmatui(*ASK, "--seed", value, "hi").returncode == 0
    assert fake.chat_requests()[0]["options"]["seed"] == int(value)


# --------------------------------------------------------------------------- stalls


def test_a_stall_ends_after_the_timeout_keeping_the_partial_text(
    gemmatui: Run, fake: FakeOllama
) -> None:
    fake.add_fault("/api/chat", "stall", after=3, seconds=120)
    started = time.monotonic()
    done = gemmatui(*ASK, "--timeout", "1", "hi", timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode == 5
    assert done.stdout == " ".join(WORDS[:3]) + "\n"
    line = one_error_line(done.stderr)
    assert f"Ollama at {fake.url} sent nothing for 1 s" in line and "--timeout" in line
    assert fake.wait_for_disconnect(timeout=5)


def test_a_stall_before_the_first_byte_with_json(gemmatui: Run, fake: FakeOllama) -> None:
    fake.add_fault("/api/chat", "stall", after=0, seconds=120)
    done = gemmatui(*ASK, "--timeout", "0.5", "--json", "hi", timeout=60)
    assert done.returncode == 5
    obj = json.loads(done.stdout)
    assert (obj["response"], obj["exit_code"], obj["num_ctx"]) == ("", 5, 8192)
    assert "sent nothing for 0.5 s" in obj["error"]


def test_a_slow_model_load_within_the_timeout_is_waited_for(
    gemmatui: Run, fake: FakeOllama
) -> None:
    fake.add_fault("/api/chat", "slow_first_token", seconds=1.5)
    done = gemmatui(*ASK, "--timeout", "3", "hi", timeout=60)
    assert (done.returncode, done.stdout) == (0, DEFAULT_REPLY + "\n")


# --------------------------------------------------------------------------- not Ollama


def test_llama_server_at_the_host_is_named_exit_3(gemmatui: Run) -> None:
    # --engine ollama: with auto the llama-server would be used (tests/cli/test_engine.py).
    with FakeLlamaServer() as server:
        done = gemmatui(*ASK, "hi", env={"OLLAMA_HOST": server.url, "GEMMATUI_ENGINE": "ollama"})
    assert done.returncode == 3 and done.stdout == ""
    line = one_error_line(done.stderr)
    assert line.startswith(
        f"gemmatui: error: the server at {server.url} is not Ollama (it answered 404 to "
        "/api/version: File Not Found); it looks like llama.cpp's llama-server"
    )
    assert "not installed" not in line and "{" not in line
    assert server.paths[0] == "/api/version" and "/api/chat" not in server.paths


# --------------------------------------------------------------------------- server text


def test_server_text_in_an_error_cannot_drive_the_terminal(
    gemmatui: Run, fake: FakeOllama
) -> None:
    fake.add_fault(
        "/api/chat", "error_line", after=1, message="boom\x1b]52;c;UFdORUQ=\x07\x1b[2J\x9b1m!"
    )
    done = gemmatui(*ASK, "hi")
    assert done.returncode == 5
    assert one_error_line(done.stderr) == "gemmatui: error: Ollama stopped the reply: boom!"


# --------------------------------------------------------------------------- --json outcomes


def one_object(stdout: str) -> dict:
    """``stdout`` holds exactly one JSON object, with ``error`` and ``exit_code``."""
    obj = json.loads(stdout)  # raises on nothing, or on two objects
    assert isinstance(obj, dict) and stdout.endswith("}\n") and stdout.count("\n") == 1
    assert {"model", "num_ctx", "response", "stats", "error", "exit_code"} <= set(obj)
    return obj


@pytest.mark.parametrize(
    ("setup", "args", "code", "error"),
    [
        (None, ASK, 0, None),
        (None, ("ask", "--model", "27b", "--ctx", "8k"), 4, "is not installed; pull it first"),
        ("nothing", ("ask", "--ctx", "8k"), 4, "no installed Gemma 3 QAT model suits"),
        ("down", ASK, 3, "cannot reach Ollama at"),
        ("llama", ASK, 3, "is not Ollama"),
        ("error_line", ASK, 5, "Ollama stopped the reply: boom"),
        ("http_error", ASK, 5, "Ollama answered 500: "),
        ("stall", (*ASK, "--timeout", "0.5"), 5, "sent nothing for 0.5 s"),
        (None, (*ASK[:-1], "3"), 2, "--ctx 3 is out of range"),
        (None, ("ask", "--model", "5b"), 2, "unknown model '5b'"),
        (None, ("ask", "--ctx", "nonsense"), 2, "invalid --ctx 'nonsense'"),
    ],
)
def test_json_is_one_object_whatever_the_outcome(
    gemmatui: Run,
    fake: FakeOllama,
    setup: str | None,
    args: tuple[str, ...],
    code: int,
    error: str | None,
) -> None:
    env: dict[str, str] = {}
    server = FakeLlamaServer().__enter__() if setup == "llama" else None
    if setup == "nothing":
        fake.set_installed([])
    elif setup == "down":
        env["OLLAMA_HOST"] = closed_port_url()
    elif server is not None:
        env["OLLAMA_HOST"] = server.url
        env["GEMMATUI_ENGINE"] = "ollama"  # auto would use the llama-server
    elif setup in ("error_line", "http_error", "stall"):
        fake.add_fault("/api/chat", setup, after=2, seconds=120, message="boom")
    try:
        done = gemmatui(*args, "--json", "hi", env=env)
    finally:
        if server is not None:
            server.__exit__()
    assert done.returncode == code
    obj = one_object(done.stdout)
    assert obj["exit_code"] == code
    if error is None:
        assert obj["error"] is None and obj["response"] == DEFAULT_REPLY
        assert obj["stats"] is not None and done.stderr == ""
    else:
        assert error in obj["error"] and obj["stats"] is None
        assert one_error_line(done.stderr) == f"gemmatui: error: {obj['error']}"
    if setup in ("error_line", "stall"):
        assert obj["response"] == " ".join(WORDS[:2])


def test_json_escapes_what_could_drive_a_terminal(gemmatui: Run, fake: FakeOllama) -> None:
    fake.config.reply = HOSTILE + " \u202e\u009b\u00e9"
    done = gemmatui(*ASK, "--json", "hi")
    assert done.returncode == 0 and done.stdout.isascii()
    assert "\x1b" not in done.stdout
    assert json.loads(done.stdout)["response"] == fake.config.reply  # nothing lost


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
    assert Sanitizer().feed(text) == clean


def test_unterminated_string_gives_up_after_a_limit() -> None:
    f = Sanitizer()
    assert f.feed("\x1b]" + "x" * Sanitizer.MAX_STRING) == ""
    assert f.feed("xvisible") == "visible"  # one character past the limit ends the string


@settings(deadline=None)
@given(
    st.text(alphabet="ab\n\t\x1b[]0;m\x07\\\x9b\x9dP", max_size=60),
    st.lists(st.integers(0, 60), max_size=6),
)
def test_control_filter_is_the_same_however_the_stream_is_cut(text: str, cuts: list[int]) -> None:
    whole = Sanitizer().feed(text)
    f = Sanitizer()
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
