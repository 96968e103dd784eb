"""The fake speaks Ollama's wire format, checked at the HTTP level with the stdlib client."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.fake_ollama import FakeLlamaServer, FakeOllama, _parse_keep_alive


def request(
    fake: FakeOllama, method: str, path: str, body: object = None
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    payload = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=payload)
    return conn.getresponse()


def ndjson(response: http.client.HTTPResponse) -> list[dict]:
    return [json.loads(line) for line in response.read().splitlines()]


def test_root_and_head(fake: FakeOllama) -> None:
    get = request(fake, "GET", "/")
    assert (get.status, get.read()) == (200, b"Ollama is running")
    head = request(fake, "HEAD", "/")
    assert head.status == 200 and head.read() == b""


def test_unknown_path_and_wrong_method_are_plain_text(fake: FakeOllama) -> None:
    missing = request(fake, "GET", "/api/nope")
    assert (missing.status, missing.getheader("Content-Type"), missing.read()) == (
        404,
        "text/plain",
        b"404 page not found",
    )
    wrong = request(fake, "GET", "/api/chat")
    assert (wrong.status, wrong.read()) == (405, b"405 method not allowed")


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (None, 400, "missing request body"),
        ({"messages": []}, 400, "model is required"),
        (
            {"model": "gemma3:27b-it-qat", "messages": []},
            404,
            "model 'gemma3:27b-it-qat' not found",
        ),
    ],
)
def test_chat_request_errors(fake: FakeOllama, body: object, status: int, error: str) -> None:
    response = request(fake, "POST", "/api/chat", body)
    assert response.status == status
    assert json.loads(response.read()) == {"error": error}


def test_chat_stream_is_chunked_ndjson_with_omitted_zero_fields(fake: FakeOllama) -> None:
    body = {
        "model": "gemma3:4b-it-qat",
        "messages": [{"role": "user", "content": "hi"}],
        "options": {"num_ctx": 8192},
    }
    response = request(fake, "POST", "/api/chat", body)
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Type") == "application/x-ndjson"
    lines = ndjson(response)
    assert set(lines[0]) == {"model", "created_at", "message", "done"}
    assert lines[0]["message"]["role"] == "assistant" and lines[0]["done"] is False
    final = lines[-1]
    assert (
        final["done"] is True
        and final["done_reason"] == "stop"
        and final["message"]["content"] == ""
    )
    assert all(
        isinstance(final[k], int) and final[k] > 0
        for k in ("total_duration", "eval_duration", "eval_count")
    )
    assert lines[0]["created_at"].endswith("Z") and len(lines[0]["created_at"].split(".")[1]) == 10


def test_load_only_chat_and_unload(fake: FakeOllama) -> None:
    loaded = json.loads(
        request(fake, "POST", "/api/chat", {"model": "gemma3:4b-it-qat", "messages": []}).read()
    )
    assert loaded["done_reason"] == "load"
    assert fake.loaded() == {"gemma3:4b-it-qat": 4096}
    body = {"model": "gemma3:4b-it-qat", "messages": [], "keep_alive": 0}
    unloaded = json.loads(request(fake, "POST", "/api/chat", body).read())
    assert unloaded["done_reason"] == "unload"
    assert fake.loaded() == {}


def test_num_ctx_is_capped_at_the_trained_length(fake: FakeOllama) -> None:
    fake.set_installed(["1b"])
    body = {"model": "gemma3:1b-it-qat", "messages": [], "options": {"num_ctx": 131072}}
    request(fake, "POST", "/api/chat", body).read()
    assert fake.loaded() == {"gemma3:1b-it-qat": 32768}


def test_non_streamed_chat_is_one_object(fake: FakeOllama) -> None:
    body = {
        "model": "gemma3:4b-it-qat",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
    }
    reply = json.loads(request(fake, "POST", "/api/chat", body).read())
    assert reply["done"] is True and reply["message"]["content"] == fake.config.reply


def test_pull_lines_match_ollamas_shapes(fake: FakeOllama) -> None:
    lines = ndjson(request(fake, "POST", "/api/pull", {"model": "gemma3:1b-it-qat"}))
    assert lines[0] == {"status": "pulling manifest"}
    first = lines[1]
    assert set(first) == {"status", "digest", "total"}  # completed omitted while 0
    assert first["status"] == "pulling " + first["digest"][7:19]
    assert lines[-3:] == [
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]


def test_show_parameters_are_a_go_formatted_string(fake: FakeOllama) -> None:
    shown = json.loads(request(fake, "POST", "/api/show", {"model": "gemma3:4b-it-qat"}).read())
    assert shown["parameters"].splitlines()[0] == "stop" + " " * 27 + '"<end_of_turn>"'
    assert shown["model_info"]["gemma3.context_length"] == 131072


def test_keep_alive_parsing() -> None:
    assert _parse_keep_alive("10m") == 600
    assert _parse_keep_alive("1h30m") == 5400
    assert _parse_keep_alive(0) == 0
    assert _parse_keep_alive(-1) is None
    assert _parse_keep_alive("-1m") is None
    with pytest.raises(ValueError, match="missing unit"):
        _parse_keep_alive("-1")
    with pytest.raises(ValueError):
        _parse_keep_alive("ten minutes")


def test_runs_by_hand_and_prints_its_url() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_ollama",
            "--port",
            "0",
            "--installed",
            "1b,27b",
            "--rate",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.request("GET", "/api/tags")
        names = [m["name"] for m in json.loads(conn.getresponse().read())["models"]]
        assert sorted(names) == ["gemma3:1b-it-qat", "gemma3:27b-it-qat"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_llama_server_fake_answers_like_llama_server() -> None:
    """The shapes of ``/work/shared/reference/llama-server.md``'s HTTP table."""
    with FakeLlamaServer() as server:
        port = int(server.url.rsplit(":", 1)[1])

        def get(method: str, path: str) -> tuple[int, object]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request(method, path, body=b"{}" if method == "POST" else None)
            response = conn.getresponse()
            return response.status, json.loads(response.read())

        not_found = {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}}
        for method, path in [("GET", "/api/version"), ("GET", "/api/tags"), ("POST", "/api/chat")]:
            assert get(method, path) == (404, not_found)
        assert get("GET", "/health") == (200, {"status": "ok"})
        status, props = get("GET", "/props")
        assert status == 200 and isinstance(props, dict)
        assert props["default_generation_settings"]["n_ctx"] > 0 and props["model_path"]
    assert server.paths == ["/api/version", "/api/tags", "/api/chat", "/health", "/props"]
