"""OllamaClient against the fake server: every endpoint, every scripted fault.

Each failure must end in the project's own error type with a message a person can act
on, and nothing may hang: timeouts are a second or less.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import sys
import time

import httpx
import pytest

from gemmatui.core.errors import (
    ModelNotFound,
    NotOllama,
    OllamaError,
    OllamaHTTPError,
    OllamaPullError,
    OllamaStreamError,
    OllamaTimeout,
    OllamaUnavailable,
    UsageError,
)
from gemmatui.core.ollama import OllamaClient, gemma_installed, parse_parameters
from gemmatui.core.text import error_text as _error_text
from gemmatui.core.types import ChatChunk, PullProgress
from tests.fake_ollama import (
    DEFAULT_REPLY,
    GEMMA3_QAT,
    LOAD_ERROR,
    FakeLlamaServer,
    FakeOllama,
    closed_port_url,
)

TAG = "gemma3:4b-it-qat"
HELLO = [{"role": "user", "content": "Why is the sky blue?"}]
WORDS = DEFAULT_REPLY.split(" ")


async def collect(client: OllamaClient, **kwargs: object) -> list[ChatChunk]:
    params: dict = {"num_ctx": 8192, "keep_alive": "10m", **kwargs}
    return [chunk async for chunk in client.chat(TAG, HELLO, **params)]


async def pull_all(client: OllamaClient, model: str) -> list[PullProgress]:
    return [p async for p in client.pull(model)]


def first_words(n: int) -> str:
    return " ".join(WORDS[:n])


# --------------------------------------------------------------------------- plain calls


async def test_version_and_liveness(client: OllamaClient) -> None:
    assert await client.version() == "0.32.15"
    assert await client.is_running() is True


async def test_is_running_is_false_when_nothing_listens() -> None:
    async with OllamaClient(closed_port_url(), connect_timeout=1.0) as client:
        assert await client.is_running() is False


async def test_list_models_keeps_context_length_and_capabilities(
    client: OllamaClient, fake: FakeOllama
) -> None:
    fake.set_installed(["27b", "1b"])
    models = await client.list_models()
    by_name = {m.name: m for m in models}
    assert set(by_name) == {"gemma3:27b-it-qat", "gemma3:1b-it-qat"}
    big = by_name["gemma3:27b-it-qat"]
    assert big.size_bytes == GEMMA3_QAT["gemma3:27b-it-qat"].total_bytes
    assert big.context_length == 131072
    assert big.capabilities == ("completion", "vision")
    assert big.quantization_level == "Q4_0"
    assert len(big.digest) == 64
    assert list(gemma_installed(models)) == ["gemma3:1b-it-qat", "gemma3:27b-it-qat"]


async def test_list_models_when_nothing_is_installed(
    client: OllamaClient, fake: FakeOllama
) -> None:
    fake.set_installed([])
    assert await client.list_models() == []


async def test_show_returns_architecture_and_parsed_parameters(client: OllamaClient) -> None:
    details = await client.show(TAG)
    assert details.model_info["gemma3.block_count"] == 34
    assert details.model_info["gemma3.attention.head_count_kv"] == 4
    assert details.model_info["gemma3.attention.sliding_window"] == 1024
    assert details.parameters == {
        "stop": ["<end_of_turn>"],
        "temperature": 1,
        "top_k": 64,
        "top_p": 0.95,
    }
    assert details.capabilities == ("completion", "vision")
    assert details.quantization_level == "Q4_0"


async def test_show_unknown_model_says_how_to_pull(client: OllamaClient) -> None:
    with pytest.raises(ModelNotFound) as err:
        await client.show("gemma3:27b-it-qat")
    assert err.value.status == 404
    assert "gemmatui pull 27b" in str(err.value)


async def test_ps_reports_the_context_the_chat_asked_for(
    client: OllamaClient, fake: FakeOllama
) -> None:
    assert await client.ps() == []
    await collect(client, num_ctx=16384)
    (running,) = await client.ps()
    assert running.name == TAG
    assert running.context_length == 16384
    assert running.size_vram_bytes == running.size_bytes > GEMMA3_QAT[TAG].blob_bytes
    assert running.expires_at


async def test_ps_shows_a_partial_offload(fake: FakeOllama) -> None:
    fake.config.vram_fraction = 0.5
    async with OllamaClient(fake.url, read_timeout=1.0) as client:
        await collect(client)
        (running,) = await client.ps()
    assert running.on_cpu_bytes == running.size_bytes - running.size_vram_bytes > 0


async def test_delete_removes_the_model(client: OllamaClient, fake: FakeOllama) -> None:
    await client.delete(TAG)
    assert fake.installed() == []
    with pytest.raises(ModelNotFound):
        await client.delete(TAG)
    assert fake.bodies("/api/delete") == [{"model": TAG}, {"model": TAG}]


async def test_a_plain_text_404_at_api_version_means_no_ollama_there(fake: FakeOllama) -> None:
    url = fake.url + "/not-ollama"
    async with OllamaClient(url, read_timeout=1.0) as client:
        with pytest.raises(NotOllama) as err:
            await client.version()
    assert str(err.value) == (
        f"the server at {url} is not Ollama (it answered 404 to /api/version: "
        "404 page not found); point --host or OLLAMA_HOST at an Ollama server "
        "(default port 11434)"
    )
    assert err.value.exit_code == 3 and err.value.looks_like == ""


# --------------------------------------------------------------------------- not Ollama


@pytest.mark.parametrize("call", ["version", "list_models", "show", "ps", "delete", "chat", "pull"])
async def test_llama_server_is_named_not_taken_for_a_missing_model(call: str) -> None:
    with FakeLlamaServer() as server:
        async with OllamaClient(server.url, connect_timeout=1.0, read_timeout=1.0) as client:
            with pytest.raises(NotOllama) as err:
                if call == "chat":
                    await collect(client)
                elif call == "pull":
                    await pull_all(client, TAG)
                elif call in ("show", "delete"):
                    await getattr(client, call)(TAG)
                else:
                    await getattr(client, call)()
    assert str(err.value) == (
        f"the server at {server.url} is not Ollama (it answered 404 to /api/version: "
        "File Not Found); it looks like llama.cpp's llama-server; point --host or OLLAMA_HOST "
        "at an Ollama server (default port 11434)"
    )
    assert err.value.exit_code == 3 and err.value.looks_like == "llama.cpp's llama-server"
    assert "/api/version" in server.paths


async def test_another_server_answering_404_objects_is_not_called_llama_server() -> None:
    with FakeLlamaServer(health=False) as server:
        async with OllamaClient(server.url, connect_timeout=1.0, read_timeout=1.0) as client:
            with pytest.raises(NotOllama) as err:
                await client.list_models()
    assert "answered 404 to /api/version: File Not Found)" in str(err.value)
    assert "llama-server" not in str(err.value) and "{" not in str(err.value)


async def test_a_version_answer_without_a_version_is_not_ollama(fake: FakeOllama) -> None:
    fake.config.version = ""
    async with OllamaClient(fake.url, read_timeout=1.0) as client:
        with pytest.raises(NotOllama) as err:
            await client.version()
    assert 'answered /api/version with: {"version":""})' in str(err.value)


async def test_a_real_missing_model_is_still_a_missing_model(
    client: OllamaClient, fake: FakeOllama
) -> None:
    with pytest.raises(ModelNotFound):
        await client.show("gemma3:27b-it-qat")
    assert fake.bodies("/api/version") == [None]  # the 404 was checked against /api/version


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"error":"model \'x\' not found"}', "model 'x' not found"),
        ('{"error":{"message":"File Not Found","type":"not_found_error","code":404}}',
         "File Not Found"),
        ('{"error":{"type":"not_found_error","code":404}}',
         '{"type": "not_found_error", "code": 404}'),
        ("404 page not found\n", "404 page not found"),
        ('{"error":"\\u001b]52;c;UFdORUQ=\\u0007boom\\u001b[2J\\u009b31m"}', "boom"),
        ('{"error":"\u001b]0;raw controls are not JSON\u0007boom"}', '{"error":"boom"}'),
        ("bad \x1b]0;title\x07gateway\r\n\r\n<html>", "bad gateway <html>"),
    ],
)
def test_error_text_handles_objects_and_never_passes_controls(body: str, message: str) -> None:
    assert _error_text(body) == message


HOSTILE_ERROR = "CUDA \x1b]52;c;UFdORUQ=\x07error\x1b[2J:\x9b31m out of\nmemory\u202e"


async def test_server_text_in_errors_is_sanitised(client: OllamaClient, fake: FakeOllama) -> None:
    fake.add_fault("/api/chat", "error_line", after=2, message=HOSTILE_ERROR)
    with pytest.raises(OllamaStreamError) as stream_err:
        await collect(client)
    fake.add_fault("/api/chat", "http_error", status=500, message=HOSTILE_ERROR)
    with pytest.raises(OllamaHTTPError) as http_err:
        await collect(client)
    fake.add_fault("/api/pull", "error_line", after=2, message=HOSTILE_ERROR)
    with pytest.raises(OllamaPullError) as pull_err:
        await pull_all(client, "gemma3:1b-it-qat")
    clean = "CUDA error: out of memory\ufffd"
    assert str(stream_err.value) == f"Ollama stopped the reply: {clean}"
    assert http_err.value.message == clean
    assert str(pull_err.value).startswith(f"Ollama could not pull gemma3:1b-it-qat: {clean} (")


def test_importing_ollama_never_sees_a_raw_ollama_host(fake: FakeOllama) -> None:
    """``import ollama`` parses OLLAMA_HOST itself; a value Ollama accepts must not
    break it, and the user's environment is left as it was (a fresh interpreter: the
    package is already imported here)."""
    code = (
        "import asyncio, os, sys\n"
        "from gemmatui.core.ollama import OllamaClient\n"
        "async def main():\n"
        "    async with OllamaClient(sys.argv[1]) as client:\n"
        "        chunks = [c async for c in client.chat("
        "'gemma3:4b-it-qat', [{'role': 'user', 'content': 'hi'}], num_ctx=4096, keep_alive=0)]\n"
        "    return ''.join(c.content for c in chunks)\n"
        "reply = asyncio.run(main())\n"
        "print(reply == sys.argv[2], repr(os.environ['OLLAMA_HOST']))\n"
    )
    port = fake.url.rsplit(":", 1)[1]
    for raw in (f"127.0.0.1:{port} ", f'"127.0.0.1:{port}"', "127.0.0.1:notaport"):
        done = subprocess.run(
            [sys.executable, "-c", code, fake.url, DEFAULT_REPLY],
            env={**os.environ, "OLLAMA_HOST": raw},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"True {raw!r}\n"


# --------------------------------------------------------------------------- chat


async def test_chat_streams_the_reply_and_final_stats(client: OllamaClient) -> None:
    chunks = await collect(client)
    assert "".join(c.content for c in chunks) == DEFAULT_REPLY
    assert [c.done for c in chunks].count(True) == 1 and chunks[-1].done
    stats = chunks[-1].stats
    assert stats is not None and all(c.stats is None for c in chunks[:-1])
    assert stats.eval_count == len(WORDS)
    assert stats.done_reason == "stop"
    assert stats.prompt_eval_count > 0
    assert stats.load_duration_s > 0.05 and stats.reloaded  # first request loads the model
    assert stats.time_to_first_token_s is not None and 0 <= stats.time_to_first_token_s < 1
    assert stats.eval_rate is not None and stats.eval_rate > 0


async def test_chat_reports_length_when_num_predict_cuts_the_reply(client: OllamaClient) -> None:
    chunks = await collect(client, options={"num_predict": 3})
    assert "".join(c.content for c in chunks) == first_words(3)
    assert chunks[-1].stats is not None and chunks[-1].stats.done_reason == "length"


async def test_every_chat_request_carries_num_ctx_and_keep_alive(
    client: OllamaClient, fake: FakeOllama
) -> None:
    await collect(client, num_ctx=8192, keep_alive="10m")
    await collect(client, num_ctx=32768, keep_alive=0, options={"temperature": 0.2, "seed": 7})
    await collect(client, num_ctx=4096, keep_alive=-1, options={"num_ctx": 1})  # the argument wins
    bodies = fake.chat_requests()
    assert [b["options"]["num_ctx"] for b in bodies] == [8192, 32768, 4096]
    assert [b["keep_alive"] for b in bodies] == ["10m", 0, -1]
    assert bodies[1]["options"]["temperature"] == 0.2 and bodies[1]["options"]["seed"] == 7
    assert all(b["model"] == TAG and b["stream"] is True for b in bodies)
    assert bodies[0]["messages"] == HELLO


@pytest.mark.parametrize("keep_alive", [300, 90.5, 0, -1, "0", "-1m", "1h30m", ".5s", "250ms"])
async def test_keep_alive_reaches_ollama_as_given(
    client: OllamaClient, fake: FakeOllama, keep_alive: str | int | float
) -> None:
    chunks = await collect(client, keep_alive=keep_alive)
    assert "".join(c.content for c in chunks) == DEFAULT_REPLY
    (body,) = fake.chat_requests()
    assert body["keep_alive"] == keep_alive  # seconds stay a JSON number, never "300"
    assert isinstance(body["keep_alive"], str) == isinstance(keep_alive, str)


@pytest.mark.parametrize(
    ("keep_alive", "message"),
    [
        ("300", 'time: missing unit in duration "300"'),
        ("-1", 'time: missing unit in duration "-1"'),
        ("5 min", 'time: unknown unit " min" in duration "5 min"'),
        ("ten minutes", 'time: invalid duration "ten minutes"'),
        ("", 'time: invalid duration ""'),
        ("3000000h", 'time: invalid duration "3000000h"'),
    ],
)
async def test_a_keep_alive_go_cannot_parse_is_refused_like_ollama(
    client: OllamaClient, keep_alive: str, message: str
) -> None:
    with pytest.raises(OllamaHTTPError) as err:
        await collect(client, keep_alive=keep_alive)
    assert (err.value.status, err.value.message) == (400, message)


async def test_a_keep_alive_of_another_json_type_is_refused_like_ollama(fake: FakeOllama) -> None:
    body = {"model": TAG, "messages": HELLO, "keep_alive": True}
    async with httpx.AsyncClient(base_url=fake.url) as raw:
        response = await raw.post("/api/chat", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "Unsupported type: 'bool'"}


@pytest.mark.parametrize(
    ("messages", "options", "reason"),
    [
        ([{"role": "user", "content": "caf\udce9"}], {}, "not valid UTF-8"),  # a stray byte
        (HELLO, {"temperature": math.nan}, "NaN or infinite"),
        (HELLO, {"temperature": math.inf}, "NaN or infinite"),
    ],
)
async def test_a_request_that_cannot_be_sent_is_not_blamed_on_ollama(
    client: OllamaClient, fake: FakeOllama, messages: list, options: dict, reason: str
) -> None:
    with pytest.raises(UsageError) as err:
        async for _ in client.chat(TAG, messages, num_ctx=4096, keep_alive="5m", options=options):
            pass
    assert str(err.value).startswith("cannot send the request to Ollama: ")
    assert reason in str(err.value) and err.value.exit_code == 2
    assert fake.chat_requests() == []  # nothing was sent


async def test_a_malformed_first_line_is_still_ollamas(
    client: OllamaClient, fake: FakeOllama
) -> None:
    fake.add_fault("/api/chat", "malformed", after=0)
    with pytest.raises(OllamaStreamError) as err:
        await collect(client)
    assert str(err.value) == "Ollama sent a malformed line during the reply"
    assert err.value.partial == ""


async def test_num_ctx_is_a_required_argument(client: OllamaClient) -> None:
    with pytest.raises(TypeError):
        client.chat(TAG, HELLO, keep_alive="10m")  # type: ignore[call-arg]


async def test_chat_unknown_model_says_how_to_pull(client: OllamaClient) -> None:
    with pytest.raises(ModelNotFound) as err:
        [c async for c in client.chat("gemma3:27b-it-qat", HELLO, num_ctx=4096, keep_alive="5m")]
    assert err.value.exit_code == 4
    assert str(err.value) == (
        "model 'gemma3:27b-it-qat' is not installed; pull it first: gemmatui pull 27b"
    )


async def test_load_failure_is_an_http_error_with_ollamas_message(
    client: OllamaClient, fake: FakeOllama
) -> None:
    fake.add_fault("/api/chat", "http_error", status=500)
    with pytest.raises(OllamaHTTPError) as err:
        await collect(client)
    assert err.value.status == 500
    assert err.value.message == LOAD_ERROR
    assert str(err.value) == f"Ollama answered 500: {LOAD_ERROR}"


async def test_error_line_mid_stream_keeps_the_partial_text(
    client: OllamaClient, fake: FakeOllama
) -> None:
    fake.add_fault("/api/chat", "error_line", after=3, message="CUDA error: out of memory")
    received: list[str] = []
    with pytest.raises(OllamaStreamError) as err:
        async for chunk in client.chat(TAG, HELLO, num_ctx=4096, keep_alive="5m"):
            received.append(chunk.content)
    assert err.value.partial == first_words(3) == "".join(received)
    assert str(err.value) == "Ollama stopped the reply: CUDA error: out of memory"
    assert err.value.exit_code == 5


async def test_dropped_connection_mid_stream_keeps_the_partial_text(
    client: OllamaClient, fake: FakeOllama
) -> None:
    fake.add_fault("/api/chat", "drop", after=4)
    with pytest.raises(OllamaStreamError) as err:
        await collect(client)
    assert err.value.partial == first_words(4)
    assert "connection to Ollama dropped" in str(err.value)


async def test_malformed_line_mid_stream_keeps_the_partial_text(
    client: OllamaClient, fake: FakeOllama
) -> None:
    fake.add_fault("/api/chat", "malformed", after=2)
    with pytest.raises(OllamaStreamError) as err:
        await collect(client)
    assert err.value.partial == first_words(2)
    assert "malformed line" in str(err.value)


async def test_stall_before_any_byte_times_out_and_hangs_up(fake: FakeOllama) -> None:
    fake.add_fault("/api/chat", "stall", after=0, seconds=30)
    started = time.monotonic()
    async with OllamaClient(fake.url, read_timeout=0.3) as client:
        with pytest.raises(OllamaTimeout) as err:
            await collect(client)
    assert time.monotonic() - started < 5
    assert fake.url in str(err.value) and "sent nothing for 0.3 s" in str(err.value)
    assert fake.wait_for_disconnect(timeout=2)


async def test_stall_mid_stream_times_out(fake: FakeOllama) -> None:
    fake.add_fault("/api/chat", "stall", after=2, seconds=30)
    received: list[str] = []
    async with OllamaClient(fake.url, read_timeout=0.3) as client:
        with pytest.raises(OllamaTimeout):
            async for chunk in client.chat(TAG, HELLO, num_ctx=4096, keep_alive="5m"):
                received.append(chunk.content)
    assert "".join(received) == first_words(2)
    assert fake.wait_for_disconnect(timeout=2)


async def test_slow_first_token_within_the_read_timeout_is_measured(
    client: OllamaClient, fake: FakeOllama
) -> None:
    fake.add_fault("/api/chat", "slow_first_token", seconds=0.4)
    chunks = await collect(client)
    stats = chunks[-1].stats
    assert stats is not None and stats.time_to_first_token_s is not None
    assert 0.4 <= stats.time_to_first_token_s < 1.0
    assert "".join(c.content for c in chunks) == DEFAULT_REPLY


async def test_slow_first_token_beyond_the_read_timeout_is_a_timeout(fake: FakeOllama) -> None:
    fake.add_fault("/api/chat", "slow_first_token", seconds=5)
    async with OllamaClient(fake.url, read_timeout=0.3) as client:
        with pytest.raises(OllamaTimeout):
            await collect(client)


async def test_cancelling_the_consumer_closes_the_connection(fake: FakeOllama) -> None:
    fake.config.token_rate = 20  # 50 ms per token: the stream is still running when cancelled
    first = asyncio.Event()

    async def consume(client: OllamaClient) -> None:
        async for _ in client.chat(TAG, HELLO, num_ctx=4096, keep_alive="5m"):
            first.set()

    async with OllamaClient(fake.url, read_timeout=1.0) as client:
        task = asyncio.create_task(consume(client))
        await asyncio.wait_for(first.wait(), 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert fake.wait_for_disconnect(timeout=2)
    assert fake.disconnects == ["/api/chat"]


async def test_closing_the_iterator_early_closes_the_connection(fake: FakeOllama) -> None:
    fake.config.token_rate = 20
    async with OllamaClient(fake.url, read_timeout=1.0) as client:
        async with contextlib.aclosing(
            client.chat(TAG, HELLO, num_ctx=4096, keep_alive="5m")
        ) as stream:
            async for chunk in stream:
                assert chunk.content
                break
        assert fake.wait_for_disconnect(timeout=2)


# --------------------------------------------------------------------------- connection refused


@pytest.mark.parametrize("call", ["version", "list_models", "show", "ps", "delete", "chat", "pull"])
async def test_nothing_listening_is_unavailable_with_a_start_hint(call: str) -> None:
    url = closed_port_url()
    async with OllamaClient(url, connect_timeout=1.0, read_timeout=1.0) as client:
        with pytest.raises(OllamaUnavailable) as err:
            if call == "chat":
                await collect(client)
            elif call == "pull":
                await pull_all(client, TAG)
            elif call in ("show", "delete"):
                await getattr(client, call)(TAG)
            else:
                await getattr(client, call)()
    assert (
        str(err.value)
        == f"cannot reach Ollama at {url}: is Ollama running? start it with `ollama serve`"
    )
    assert err.value.exit_code == 3


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectTimeout("timed out"), OllamaUnavailable),
        (httpx.ConnectError("refused"), OllamaUnavailable),
        (ConnectionError("Failed to connect to Ollama"), OllamaUnavailable),
        (httpx.ReadTimeout("timed out"), OllamaTimeout),
        (httpx.PoolTimeout("timed out"), OllamaTimeout),
        (httpx.ReadError("reset"), OllamaError),
        (httpx.RemoteProtocolError("peer closed"), OllamaError),
        (httpx.DecodingError("bad gzip"), OllamaError),
    ],
)
async def test_library_errors_never_escape(exc: Exception, expected: type[Exception]) -> None:
    async with OllamaClient("http://127.0.0.1:9") as client:
        translated = client._translate(exc)
    assert type(translated) is expected
    assert "127.0.0.1:9" in str(translated)


# --------------------------------------------------------------------------- pull


async def test_pull_streams_exact_statuses_with_overall_totals(
    client: OllamaClient, fake: FakeOllama
) -> None:
    tag = "gemma3:1b-it-qat"
    model = GEMMA3_QAT[tag]
    progress = await pull_all(client, tag)
    statuses = [p.status for p in progress]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layer_statuses = {f"pulling {digest[7:19]}" for digest, _ in model.layers()}
    assert set(statuses[1:-3]) == layer_statuses
    assert progress[1].completed is None  # omitted while 0
    assert all(p.digest and p.digest.startswith("sha256:") for p in progress[1:-3])
    overall = [p.overall_completed for p in progress]
    assert overall == sorted(overall)
    assert progress[-1].overall_total == progress[-1].overall_completed == model.total_bytes
    assert tag in fake.installed()


async def test_pull_of_an_installed_model_reports_each_layer_once(client: OllamaClient) -> None:
    progress = await pull_all(client, TAG)
    layer_lines = [p for p in progress if p.digest]
    assert len(layer_lines) == 5
    assert all(p.completed == p.total for p in layer_lines)


async def test_pull_unknown_model_fails_after_the_manifest(client: OllamaClient) -> None:
    seen: list[str] = []
    with pytest.raises(OllamaPullError) as err:
        async for p in client.pull("gemma3:99b-it-qat"):
            seen.append(p.status)
    assert seen == ["pulling manifest"]
    assert str(err.value) == (
        "Ollama could not pull gemma3:99b-it-qat: pull model manifest: file does not exist "
        "(the registry has no such model; check the name)"
    )


@pytest.mark.parametrize("kind", ["error_line", "drop"])
async def test_interrupted_pull_resumes(client: OllamaClient, fake: FakeOllama, kind: str) -> None:
    tag = "gemma3:12b-it-qat"
    fake.add_fault("/api/pull", kind, after=6)
    with pytest.raises(OllamaPullError) as err:
        await pull_all(client, tag)
    if kind == "error_line":
        assert "no space left on device" in str(err.value)
    else:
        assert "dropped while pulling gemma3:12b-it-qat; run the pull again to resume" in str(
            err.value
        )
    done = fake.partial_bytes(tag)
    assert 0 < done < GEMMA3_QAT[tag].blob_bytes
    assert tag not in fake.installed()

    progress = await pull_all(client, tag)
    first_layer = progress[1]
    assert first_layer.completed == done  # continues from the bytes already there
    assert progress[-1].status == "success"
    assert tag in fake.installed()


async def test_pull_stall_times_out(fake: FakeOllama) -> None:
    fake.add_fault("/api/pull", "stall", after=3, seconds=30)
    async with OllamaClient(fake.url, read_timeout=0.3) as client:
        with pytest.raises(OllamaTimeout):
            await pull_all(client, "gemma3:1b-it-qat")


async def test_cancelling_a_pull_closes_the_connection(fake: FakeOllama) -> None:
    fake.config.pull_step_seconds = 0.05
    async with OllamaClient(fake.url, read_timeout=1.0) as client:
        async with contextlib.aclosing(client.pull("gemma3:27b-it-qat")) as stream:
            async for p in stream:
                if p.completed:
                    break
        assert fake.wait_for_disconnect(timeout=2)
    assert fake.disconnects == ["/api/pull"]


# --------------------------------------------------------------------------- parsing


def test_parse_parameters_collects_repeated_keys() -> None:
    text = (
        'stop    "<end_of_turn>"\nstop    "<eos>"\n'
        "num_ctx    8192\nmirostat_tau    5.5\npenalize_newline    false"
    )
    assert parse_parameters(text) == {
        "stop": ["<end_of_turn>", "<eos>"],
        "num_ctx": 8192,
        "mirostat_tau": 5.5,
        "penalize_newline": False,
    }
    assert parse_parameters("") == {}


def test_doctests() -> None:
    import doctest

    from gemmatui.core import ollama

    result = doctest.testmod(ollama)
    assert result.attempted >= 2 and result.failed == 0
