"""Which engine the CLI talks to: --engine / GEMMATUI_ENGINE / config, what auto finds at
the host, and what each command says when the engine is not the one it needs."""

from __future__ import annotations

import json

from tests.cli.conftest import Run, write_config
from tests.fake_ollama import FakeLlamaServer, FakeOllama


def test_auto_uses_a_llama_server_at_the_host_and_errors_name_it(gemmatui: Run) -> None:
    with FakeLlamaServer() as server:
        done = gemmatui("ask", "--json", "hi", env={"OLLAMA_HOST": server.url})
    # The fake answers /props but 404s every chat: a llama-server that fails the request.
    assert done.returncode == 5
    obj = json.loads(done.stdout)
    assert obj["engine"] == "llama-server" and obj["num_ctx"] == 4096
    assert obj["model"] == "gemma-3-270m-it-Q4_K_M.gguf"
    assert obj["error"] == "llama-server answered 404: File Not Found"
    assert server.paths[:3] == ["/api/version", "/health", "/props"]
    assert "/v1/chat/completions" in server.paths and "/api/chat" not in server.paths


def test_models_lists_the_served_model(gemmatui: Run) -> None:
    with FakeLlamaServer() as server:
        done = gemmatui("models", env={"OLLAMA_HOST": server.url})
        as_json = gemmatui("models", "--json", env={"OLLAMA_HOST": server.url})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"llama-server unknown build at {server.url} serves one model")
    assert "gemma-3-270m-it-Q4_K_M.gguf" in done.stdout and "4k per slot" in done.stdout
    obj = json.loads(as_json.stdout)
    assert obj["engine"] == "llama-server" and obj["num_ctx"] == 4096
    assert [m["tag"] for m in obj["models"]] == ["gemma-3-270m-it-Q4_K_M.gguf"]


def test_a_server_that_is_no_engine_is_named(gemmatui: Run) -> None:
    with FakeLlamaServer(health=False) as server:
        done = gemmatui("ask", "hi", env={"OLLAMA_HOST": server.url})
    assert done.returncode == 3
    assert done.stderr.strip() == (
        f"gemmatui: error: the server at {server.url} is not Ollama or llama-server (it "
        "answered 404 to /api/version: File Not Found) (host from OLLAMA_HOST)"
    )


def test_pull_needs_ollama(gemmatui: Run) -> None:
    with FakeLlamaServer() as server:
        done = gemmatui("pull", "1b", "--host", server.url)
    assert done.returncode == 3
    assert f"llama-server at {server.url} cannot download models" in done.stderr
    assert "needs Ollama" in done.stderr


def test_engine_ollama_from_each_source_keeps_ollama(gemmatui: Run, fake: FakeOllama, cli_env: dict) -> None:
    for args, env in (
        (("--engine", "ollama"), {}),
        ((), {"GEMMATUI_ENGINE": "ollama"}),
    ):
        done = gemmatui("ask", "--json", *args, "hi", env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["engine"] == "ollama"
    write_config(cli_env, 'engine = "ollama"\n')
    done = gemmatui("ask", "--json", "hi")
    assert json.loads(done.stdout)["engine"] == "ollama"


def test_engine_llama_server_against_ollama_names_llama_server(gemmatui: Run, fake: FakeOllama) -> None:
    done = gemmatui("ask", "--engine", "llama-server", "hi")
    assert done.returncode != 0
    assert done.stderr.startswith("gemmatui: error: llama-server answered 404")


def test_bad_engine_values_are_usage_errors(gemmatui: Run, cli_env: dict) -> None:
    done = gemmatui("ask", "--engine", "vllm", "hi")
    assert done.returncode == 2 and "--engine: unknown engine 'vllm'" in done.stderr
    done = gemmatui("models", env={"GEMMATUI_ENGINE": "tgi"})
    assert done.returncode == 2 and "GEMMATUI_ENGINE: unknown engine 'tgi'" in done.stderr
    write_config(cli_env, 'engine = "lmstudio"\n')
    done = gemmatui("ask", "hi")
    assert done.returncode == 2 and "engine: unknown engine 'lmstudio'" in done.stderr
