"""``gemmatui fit --gguf`` (written GGUF files) and ``fit --engine llama-server``."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.gguf_writer import gemma3_metadata, gemma3_tensors, gguf_bytes, write


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write(tmp_path / "tiny gemma.gguf", gguf_bytes(gemma3_metadata(), gemma3_tensors()))


def test_gguf_is_planned_with_the_other_flags_and_json(gemmatui: Run, tiny: Path) -> None:
    done = gemmatui("fit", "--gguf", str(tiny), "--vram", "8G", "--ram", "16G", "--ctx", "8k",
                    "--kv-cache", "q8_0", "--parallel", "2", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    (row,) = obj["variants"]
    assert (row["key"], row["tag"], row["file"]) == ("gguf", "gguf:tiny gemma.gguf", "tiny gemma.gguf")
    assert obj["gguf"] == {"path": str(tiny), "file": tiny.name, "mmproj": None}
    assert obj["checked"] == "gguf" and obj["exit_code"] == 0
    s = obj["settings"]
    assert (s["num_ctx"], s["kv_cache_type"], s["num_parallel"]) == (8192, "q8_0", 2)
    assert obj["engine"] == "ollama" and obj["llama_server_command"] is None


def test_gguf_text_says_to_serve_it(gemmatui: Run, tiny: Path) -> None:
    done = gemmatui("fit", "--gguf", str(tiny), "--vram", "8G", "--ram", "16G", "--ctx", "8k")
    assert done.returncode == 0, done.stderr
    assert "Tiny Gemma (gguf:tiny gemma.gguf) at 8k context" in done.stdout
    assert f"Next:        gemmatui serve '{tiny}' --ctx 8k" in done.stdout
    assert "gemmatui pull" not in done.stdout


def test_engine_llama_server_prints_the_command(gemmatui: Run, tiny: Path) -> None:
    done = gemmatui("--engine", "llama-server", "fit", "--gguf", str(tiny), "--vram", "8G",
                    "--ram", "16G", "--ctx", "4k", "--parallel", "2", "--json")  # fmt: skip
    obj = json.loads(done.stdout)
    command = obj["llama_server_command"]
    assert obj["engine"] == "llama-server" and command["refused"] is None
    argv = shlex.split(command["line"])
    assert argv == command["argv"]
    assert argv[:3] == ["llama-server", "-m", str(tiny)]
    flags = dict(zip(argv[3::2], argv[4::2]))
    assert flags["-c"] == "8192" and flags["-np"] == "2" and flags["-fa"] == "on"
    assert flags["-ngl"] == "7"  # 6 layers and the output layer: it fits on the GPU
    assert flags["--chat-template"] == "gemma"  # the file has no chat template
    # Ollama's settings do not apply to a llama-server gemmatui starts.
    assert obj["settings"]["sources"]["kv_type"] == "gemmatui default"


def test_engine_llama_server_for_a_catalogue_variant_uses_googles_qat_file(gemmatui: Run) -> None:
    done = gemmatui("fit", "--engine", "llama-server", "--vram", "24G", "--ctx", "32k",
                    env={"GEMMATUI_ENGINE": "ollama"})  # the flag wins
    line = next(line for line in done.stdout.splitlines() if line.startswith("llama-server:"))
    argv = shlex.split(line.split(":", 1)[1])
    assert argv[:3] == ["llama-server", "-hf", "google/gemma-3-27b-it-qat-q4_0-gguf"]
    assert "--chat-template" not in argv and argv[argv.index("-ngl") + 1] == "63"


def test_the_template_is_not_forced_when_the_file_has_one(gemmatui: Run, tmp_path: Path) -> None:
    meta = gemma3_metadata(**{"tokenizer.chat_template": "{{ messages }}"})
    path = write(tmp_path / "it.gguf", gguf_bytes(meta, gemma3_tensors()))
    done = gemmatui("fit", "--gguf", str(path), "--engine", "llama-server", "--json")
    assert "--chat-template" not in json.loads(done.stdout)["llama_server_command"]["argv"]


def test_a_refused_combination_is_said_in_the_command(gemmatui: Run, tiny: Path) -> None:
    done = gemmatui("fit", "--gguf", str(tiny), "--engine", "llama-server", "--kv-cache", "q8_0",
                    "--flash-attention", "off", "--json")  # fmt: skip
    obj = json.loads(done.stdout)
    assert "needs flash attention" in obj["llama_server_command"]["refused"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.gguf", "no such file: {p}"),
        (lambda p: write(p / "x.gguf", b"not a gguf at all, just text"), "{p} is not a GGUF file"),
        (lambda p: write(p / "x.gguf", gguf_bytes(gemma3_metadata(), gemma3_tensors())[:40]),
         "{p} is cut short"),
        (lambda p: write(p / "x.gguf", gguf_bytes(gemma3_metadata(**{"general.architecture": "llama"}))),
         "x.gguf is a 'llama' model; gemmatui plans Gemma 3 (gemma3) models only"),
    ],
)
def test_bad_files_are_one_line_and_exit_2(gemmatui: Run, tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    for args in (("fit", "--gguf", str(path)), ("serve", str(path))):
        done = gemmatui(*args)
        assert done.returncode == 2 and done.stdout == ""
        (line,) = done.stderr.splitlines()
        assert line.startswith("gemmatui: error: " + message.format(p=path)), line


def test_mmproj_without_gguf_and_gguf_with_model_are_usage_errors(gemmatui: Run, tiny: Path) -> None:
    done = gemmatui("fit", "--mmproj", str(tiny))
    assert done.returncode == 2 and "--mmproj goes with --gguf" in done.stderr
    done = gemmatui("fit", "--gguf", str(tiny), "--model", "4b")
    assert done.returncode == 2 and "--model and --gguf both name a model" in done.stderr


def test_plain_fit_does_not_import_the_gguf_reader_or_the_engine_code(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    code = (
        "import sys\nfrom gemmatui.cli import main\nmain(['fit', '--vram', '24G', '--json'])\n"
        "mods = ('gemmatui.core.gguf', 'gemmatui.core.launch', 'gemmatui.core.engine', "
        "'gemmatui.core.detect', 'asyncio')\n"
        "print(' '.join(m for m in mods if m in sys.modules), file=sys.stderr)\n"
    )
    env = {**os.environ, "GEMMATUI_CONFIG": str(tmp_path / "c.toml")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stderr.strip() == ""
