"""The llama-server adapter and engine detection against the real server."""

from __future__ import annotations

import asyncio

import pytest

from gemmatui.core.detect import detect
from gemmatui.core.errors import OllamaStreamError, OllamaUnavailable
from gemmatui.core.llamacpp import LlamaServerClient
from tests.engine.llama_harness import RunningServer


async def test_props_models_and_slots(llama_server: RunningServer) -> None:
    async with LlamaServerClient(llama_server.url) as client:
        assert await client.is_running()
        props = await client.props()
        assert props.n_ctx == 4096 and props.n_ctx_train == 32768
        assert props.vision is False and props.total_slots == 1
        assert props.size_bytes == 246_587_904
        (model,) = await client.list_models()
        assert model.context_length == 32768 and model.family == "gemma3"
        (running,) = await client.ps()
        assert running.context_length == 4096
        slots = await client.slots()
        assert slots and slots[0]["n_ctx"] == 4096


async def test_chat_streams_real_tokens_and_stats(llama_server: RunningServer) -> None:
    async with LlamaServerClient(llama_server.url) as client:
        pieces, final = [], None
        async for chunk in client.chat(
            "any", [{"role": "user", "content": "Tell me about Gemma."}],
            options={"num_predict": 12, "seed": 7, "temperature": 0.0},
        ):
            if chunk.done:
                final = chunk
            else:
                pieces.append(chunk.content)
    assert final is not None and final.stats is not None
    stats = final.stats
    assert stats.eval_count == 12 and stats.done_reason == "length"
    assert len([p for p in pieces if p]) >= 6  # streamed piece by piece, not in one lump
    assert stats.prompt_eval_count > 5  # the Gemma chat template wraps the prompt
    assert stats.eval_duration_s > 0 and stats.eval_rate and stats.eval_rate > 0
    assert stats.time_to_first_token_s is not None and stats.time_to_first_token_s > 0


async def test_detect_names_llama_server(llama_server: RunningServer) -> None:
    found = await detect(llama_server.url)
    assert found.kind == "llama-server"
    assert found.describe().startswith("llama-server ")


async def test_engine_killed_mid_reply_keeps_the_partial_text(
    own_llama_server: RunningServer,
) -> None:
    received: list[str] = []
    async with LlamaServerClient(own_llama_server.url) as client:
        with pytest.raises(OllamaStreamError) as err:
            async for chunk in client.chat(
                "any", [{"role": "user", "content": "Write a long story."}],
                options={"num_predict": 2000},
            ):
                received.append(chunk.content)
                if len(received) == 5:
                    await asyncio.to_thread(own_llama_server.kill)
    assert err.value.exit_code == 5
    assert err.value.partial == "".join(received) and len(received) >= 5
    async with LlamaServerClient(own_llama_server.url) as client:
        with pytest.raises(OllamaUnavailable):
            await client.props()
