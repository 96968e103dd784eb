"""``gemmatui models``: installed Gemma 3 QAT variants, their size, fit and load state."""

from __future__ import annotations

import contextlib
import http.client
import json
from urllib.parse import urlsplit

import pytest

from tests.cli.conftest import Run
from tests.fake_ollama import FakeLlamaServer, FakeOllama, closed_port_url


def load(fake: FakeOllama, tag: str, num_ctx: int) -> None:
    parts = urlsplit(fake.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    body = {"model": tag, "messages": [], "options": {"num_ctx": num_ctx}}
    conn.request("POST", "/api/chat", body=json.dumps(body))
    assert conn.getresponse().status == 200


def test_lists_installed_variants_with_size_fit_and_load(gemmatui: Run, fake: FakeOllama) -> None:
    fake.set_installed(["27b", "4b"])
    fake.config.vram_fraction = 0.5
    load(fake, "gemma3:4b-it-qat", 8192)
    done = gemmatui("models", "--ctx", "8k")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"Gemma 3 QAT models on {fake.url} (fit at 8k context: --ctx, ")
    assert lines[1].split() == ["MODEL", "SIZE", "FIT", "HERE", "LOADED"]
    assert lines[2].startswith("gemma3:4b-it-qat ") and " 4.0 GB " in lines[2]
    assert lines[2].endswith("8k ctx, 50% GPU")
    assert (
        lines[3].startswith("gemma3:27b-it-qat ")
        and " 18 GB " in lines[3]
        and lines[3].endswith("  -")
    )
    assert lines[4] == "not installed: 1b, 12b"
    assert done.stderr == ""
    shown = sorted(body["model"] for body in fake.bodies("/api/show"))
    assert shown == ["gemma3:27b-it-qat", "gemma3:4b-it-qat"]  # architecture of the real blobs


def test_json_has_the_fit_of_each_installed_variant(gemmatui: Run, fake: FakeOllama) -> None:
    done = gemmatui("models", "--ctx", "16k", "--json")
    assert done.returncode == 0
    obj = json.loads(done.stdout)
    assert obj["num_ctx"] == 16384 and obj["num_ctx_source"] == "--ctx"
    (model,) = obj["models"]
    assert model["tag"] == "gemma3:4b-it-qat" and model["ctx"] == 16384
    assert model["verdict"] in ("gpu", "partial", "cpu", "none")
    assert model["size_bytes"] == 4_005_066_360 and model["loaded"] is None
    assert obj["not_installed"] == ["1b", "12b", "27b"]


def test_nothing_installed_says_so(gemmatui: Run, fake: FakeOllama) -> None:
    fake.set_installed([])
    done = gemmatui("models", "--ctx", "4k")
    assert done.returncode == 0
    assert done.stdout.splitlines()[1:3] == ["none installed", "not installed: 1b, 4b, 12b, 27b"]


def test_server_down_exits_3(gemmatui: Run) -> None:
    done = gemmatui("models", env={"OLLAMA_HOST": closed_port_url()})
    assert done.returncode == 3
    assert len(done.stderr.splitlines()) == 1 and "is Ollama running?" in done.stderr


def test_llama_server_at_the_host_is_named_exit_3(gemmatui: Run) -> None:
    # --engine ollama: with auto the llama-server would be used (tests/cli/test_engine.py).
    with FakeLlamaServer() as server:
        done = gemmatui("models", env={"OLLAMA_HOST": server.url, "GEMMATUI_ENGINE": "ollama"})
    assert done.returncode == 3 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"gemmatui: error: the server at {server.url} is not Ollama (it answered 404 to "
        "/api/version: File Not Found); it looks like llama.cpp's llama-server"
    )


@pytest.mark.parametrize(
    ("setup", "args", "code", "error"),
    [
        (None, (), 0, None),
        ("down", (), 3, "cannot reach Ollama at"),
        ("llama", (), 3, "is not Ollama"),
        (None, ("--ctx", "nonsense"), 2, "invalid --ctx 'nonsense'"),
        ("bad host", (), 2, "invalid Ollama host"),
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
    with contextlib.ExitStack() as stack:
        if setup == "down":
            env["OLLAMA_HOST"] = closed_port_url()
        elif setup == "llama":
            env["OLLAMA_HOST"] = stack.enter_context(FakeLlamaServer()).url
            env["GEMMATUI_ENGINE"] = "ollama"  # auto would use the llama-server
        elif setup == "bad host":
            env["OLLAMA_HOST"] = "127.0.0.1:notaport"
        done = gemmatui("models", "--json", *args, env=env)
    assert done.returncode == code
    obj = json.loads(done.stdout)  # exactly one object: nothing else on stdout
    assert isinstance(obj, dict) and obj["exit_code"] == code
    keys = {"host", "num_ctx", "models", "not_installed", "recommended", "error", "exit_code"}
    assert keys <= set(obj)
    if error is None:
        assert obj["error"] is None and obj["models"] and done.stderr == ""
    else:
        assert error in obj["error"] and obj["models"] is None
        assert done.stderr == f"gemmatui: error: {obj['error']}\n"
        assert obj["host"] == (None if setup == "bad host" else env.get("OLLAMA_HOST", fake.url))
