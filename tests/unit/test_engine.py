"""The engine port: which engine (flag > env > config > default), the adapters connect()
returns, llama-server's command line, and serve's launch helpers (no real server here;
tests/engine/ runs the real one)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gemmatui.core import launch
from gemmatui.core.catalog import get_variant
from gemmatui.core.config import Settings, load_settings, resolve_engine
from gemmatui.core.engine import Engine, connect, engine_for
from gemmatui.core.errors import (
    CannotPull,
    ConfigError,
    LaunchError,
    OllamaUnavailable,
    PortInUse,
    UsageError,
)
from gemmatui.core.fit import estimate, plan
from gemmatui.core.hardware import simulated_snapshot
from gemmatui.core.launch import (
    LaunchSettings,
    check_cache_and_attention,
    command_line,
    gpu_layers,
    render_plan_vs_actual,
    settings_for,
)
from gemmatui.core.llama_log import parse_buffer_log
from gemmatui.core.llamacpp import LlamaServerClient
from gemmatui.core.units import GiB
from tests.fake_ollama import closed_port_url

# --------------------------------------------------------------------------- which engine


@pytest.mark.parametrize(
    ("flag", "env", "config", "expected"),
    [
        ("ollama", "llama-server", "llama-server", ("ollama", "--engine")),
        (None, "llama.cpp", "ollama", ("llama-server", "GEMMATUI_ENGINE")),
        (None, "  ", "llama-server", ("llama-server", "config")),
        (None, None, None, ("auto", "default")),
        ("", None, "ollama", ("ollama", "config")),
        ("AUTO", "ollama", None, ("auto", "--engine")),
    ],
)
def test_engine_precedence_is_flag_env_config_default(
    flag: str | None, env: str | None, config: str | None, expected: tuple[str, str]
) -> None:
    environ = {} if env is None else {"GEMMATUI_ENGINE": env}
    assert resolve_engine(flag, environ, Settings(engine=config)) == expected


@pytest.mark.parametrize(("flag", "env", "where"), [("vllm", None, "--engine"), (None, "lm", "GEMMATUI_ENGINE")])
def test_an_unknown_engine_is_a_usage_error_naming_where(flag, env, where) -> None:
    environ = {} if env is None else {"GEMMATUI_ENGINE": env}
    with pytest.raises(UsageError) as err:
        resolve_engine(flag, environ, Settings())
    assert str(err.value).startswith(f"{where}: unknown engine ")
    assert "auto, ollama, llama-server" in str(err.value)


def test_the_config_engine_is_checked_when_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('engine = "Llama.CPP"\n')
    assert load_settings(path).engine == "llama-server"
    path.write_text('engine = "tgi"\n')
    with pytest.raises(ConfigError, match=r"config.toml: engine: unknown engine 'tgi'"):
        load_settings(path)
    path.write_text("engine = 3\n")
    with pytest.raises(ConfigError, match="engine must be a string"):
        load_settings(path)


# --------------------------------------------------------------------------- adapters


async def test_a_named_engine_gets_its_adapter_without_a_request() -> None:
    url = closed_port_url()  # nothing listens: a request would fail
    ollama = await connect(url, "ollama")
    server = await connect(url, "llama-server")
    assert isinstance(ollama, Engine) and isinstance(server, Engine)
    assert (ollama.kind, ollama.name, ollama.can_pull) == ("ollama", "Ollama", True)
    assert (server.kind, server.name, server.can_pull) == ("llama-server", "llama-server", False)
    assert await ollama.served() is None
    await ollama.aclose()
    await server.aclose()


async def test_auto_with_nothing_there_is_ollamas_unreachable_message() -> None:
    url = closed_port_url()
    with pytest.raises(OllamaUnavailable) as err:
        await connect(url, "auto")
    assert str(err.value) == (
        f"cannot reach Ollama at {url}: is Ollama running? start it with `ollama serve`"
    )
    assert err.value.exit_code == 3


async def test_llama_server_errors_name_llama_server() -> None:
    url = closed_port_url()
    async with LlamaServerClient(url) as client:
        with pytest.raises(OllamaUnavailable, match=f"^cannot reach llama-server at {url}"):
            await client.props()
        with pytest.raises(CannotPull, match="cannot download models .*needs Ollama") as err:
            async for _ in client.pull("gemma3:1b-it-qat"):
                pass
        assert err.value.exit_code == 3


def test_engine_for_refuses_an_unknown_kind() -> None:
    with pytest.raises(UsageError):
        engine_for("vllm", "http://127.0.0.1:1")


# --------------------------------------------------------------------------- command line


def _row(vram: int | None, ctx: int = 8192, kv: str = "f16", key: str = "4b"):
    from gemmatui.core.fit import layered_settings

    hw = simulated_snapshot(vram, 64 * GiB, None)
    report = plan(hw, layered_settings({}, ctx=ctx, kv_type=kv), (get_variant(key),))
    return report.rows[0], hw.backend


def test_full_gpu_offload_passes_every_layer() -> None:
    row, backend = _row(24 * GiB)
    assert row.verdict == "gpu"
    s = settings_for(row, backend=backend, model=Path("/m/g 4b.gguf"), mmproj=Path("p.gguf"), builtin_template=False)
    argv = command_line(s)
    assert argv == [
        "llama-server", "-m", "/m/g 4b.gguf", "--mmproj", "p.gguf",
        "-c", "8192", "-np", "1", "-ctk", "f16", "-ctv", "f16", "-fa", "on",
        "-b", str(row.breakdown.ubatch), "-ub", str(row.breakdown.ubatch),
        "-ngl", "35", "-a", "g 4b", "--host", "127.0.0.1", "--port", "8080",
    ]  # fmt: skip
    assert "'/m/g 4b.gguf'" in launch.shell_line(argv)  # a path with a space is quoted


def test_partial_offload_passes_the_fits_share_and_cpu_passes_none() -> None:
    row, backend = _row(6 * GiB, key="12b")
    assert row.verdict == "partial" and 0 < row.gpu_layer_share < 1
    assert gpu_layers(row, backend) == int(row.gpu_layer_share * 48)
    cpu_row, cpu_backend = _row(None, key="1b")
    assert cpu_backend == "cpu" and gpu_layers(cpu_row, cpu_backend) == 0


def test_parallel_multiplies_the_context_and_template_is_named_when_missing() -> None:
    s = LaunchSettings(Path("m.gguf"), None, 4096, 3, "q8_0", True, 1024, 0, True, "0.0.0.0", 9000)
    argv = command_line(s, ("python", "-m", "x"))
    assert argv[:3] == ["python", "-m", "x"]
    assert argv[argv.index("-c") + 1] == "12288" and argv[argv.index("-np") + 1] == "3"
    assert argv[argv.index("--chat-template") + 1] == "gemma"
    assert s.url == "http://127.0.0.1:9000"  # a bind-all address is reached on loopback


@pytest.mark.parametrize("kv", ["q8_0", "q4_0"])
def test_a_quantized_cache_without_flash_attention_is_refused(kv: str) -> None:
    with pytest.raises(UsageError, match=f"a {kv} KV cache needs flash attention") as err:
        check_cache_and_attention(kv, False)
    assert err.value.exit_code == 2
    check_cache_and_attention("f16", False)
    check_cache_and_attention(kv, True)


# --------------------------------------------------------------------------- launch helpers


def test_no_llama_server_and_no_extra_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(launch.shutil, "which", lambda name: None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LaunchError) as err:
        launch.find_program()
    assert "pip install 'gemmatui[llamacpp]'" in str(err.value)
    assert "llama.cpp" in str(err.value) and err.value.exit_code == 1


def test_a_binary_on_path_wins_over_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch.shutil, "which", lambda name: "/opt/llama/llama-server")
    assert launch.find_program() == ["/opt/llama/llama-server"]
    monkeypatch.setattr(launch.shutil, "which", lambda name: None)
    assert launch.find_program()[1:] == ["-m", "gemmatui.core.launch_xllamacpp"]


def test_a_port_in_use_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse) as err:
            launch.free_port("127.0.0.1", port)
    assert f"port {port} on 127.0.0.1 is in use" in str(err.value) and err.value.port == port
    assert err.value.exit_code == 1
    assert launch.free_port("127.0.0.1", 0) > 0


def test_the_log_lives_in_the_user_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert launch.log_path(8123) == tmp_path / "gemmatui" / "logs" / "llama-server-8123.log"
    assert (tmp_path / "gemmatui" / "logs").is_dir()


def test_plan_vs_actual_table() -> None:
    bd = estimate(get_variant("1b"), 4096, cuda=False, margin=0)
    mib = 2**20
    log = parse_buffer_log(
        f"load_tensors:   CPU_Mapped model buffer size = {bd.weights / mib:.2f} MiB\n"
        "load_tensors:   CPU_REPACK model buffer size =    12.66 MiB\n"
        f"llama_context:        CPU  output buffer size = {bd.output / mib:.2f} MiB\n"
        f"llama_kv_cache:        CPU KV buffer size = {bd.kv / mib / 2:.2f} MiB\n"
        f"llama_kv_cache:        CPU KV buffer size = {bd.kv / mib / 2:.2f} MiB\n"
        f"sched_reserve:        CPU compute buffer size = {bd.compute / mib * 0.9:.2f} MiB\n"
    )
    text = render_plan_vs_actual(bd, log)
    lines = {line.split()[0]: line for line in text.splitlines()}
    assert lines["weights"].endswith("0.0 %") and lines["KV"].endswith("0.0 %")
    assert lines["compute"].endswith("+11.1 %")  # planned 1/0.9 of what was allocated
    assert "12.66 MiB CPU_REPACK" in text and "(CPU, CPU_Mapped)" in text


def test_the_xllamacpp_entry_maps_every_flag() -> None:
    xllamacpp = pytest.importorskip("xllamacpp")
    from gemmatui.core.launch_xllamacpp import params, parser

    s = LaunchSettings(Path("/m/x.gguf"), Path("/m/p.gguf"), 4096, 2, "q8_0", True, 1024, 0, True, port=0)
    args = parser().parse_args(command_line(s)[1:])
    p = params(args, xllamacpp)
    assert (p.model.path, p.mmproj.path, p.n_ctx, p.n_parallel) == ("/m/x.gguf", "/m/p.gguf", 8192, 2)
    assert (p.n_batch, p.n_ubatch, p.n_gpu_layers, p.port) == (1024, 1024, 0, 0)
    assert p.cache_type_k == p.cache_type_v == xllamacpp.ggml_type.GGML_TYPE_Q8_0
    assert p.flash_attn_type == xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_ENABLED
    assert p.chat_template == "gemma" and p.use_jinja is False  # jinja would read "gemma" as text
    assert p.kv_unified is False and p.hostnames == ["127.0.0.1"] and p.model_alias == {"x"}


def test_serves_defaults_are_the_launchers() -> None:
    from gemmatui.commands import serve

    assert (serve.DEFAULT_PORT, serve.DEFAULT_BIND) == (launch.DEFAULT_PORT, launch.DEFAULT_BIND)


def test_llama_server_props_are_sanitised_and_malformed_values_tolerated() -> None:
    """/props comes from whatever answers at the host: escape codes never pass, odd
    types never crash (a number given as text, a meta that is not an object)."""
    from gemmatui.core.llamacpp import _props

    props = _props(
        {
            "model_alias": "evil\x1b]0;PWNED\x07\x1b[31mred",
            "build_info": "b1\x1b[2J",
            "total_slots": "x",
            "model_path": "/m/\x9b2Jmodel.gguf",
            "default_generation_settings": {"n_ctx": -5},
        },
        {"data": [{"id": "-", "meta": "not an object"}]},
    )
    assert props.model == "evilred" and props.build == "b1"
    assert props.total_slots == 1 and props.n_ctx == 0 and props.n_ctx_train is None
    assert "\x1b" not in props.model_path and "\x9b" not in props.model_path
