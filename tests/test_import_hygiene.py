"""The core never imports Textual, and the fast paths (--help, --version, fit) load
neither Textual nor the Ollama client stack."""

from __future__ import annotations

import os
import subprocess
import sys

HEAVY = ("textual", "rich", "ollama", "httpx", "pydantic")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


def test_cli_module_is_light():
    assert _loaded_after("import gemmatui.cli; gemmatui.cli.build_parser()") == set()


def test_core_never_imports_textual():
    code = (
        "import gemmatui.core.units, gemmatui.core.fit, gemmatui.core.catalog, "
        "gemmatui.core.config, gemmatui.core.hardware, gemmatui.core.types, gemmatui.core.errors"
    )
    assert _loaded_after(code) == set()


def test_fit_command_runs_without_textual_or_ollama(tmp_path):
    env = {**os.environ, "GEMMATUI_CONFIG": str(tmp_path / "c.toml"), "OLLAMA_HOST": "127.0.0.1:9"}
    code = (
        "import sys\n"
        "from gemmatui.cli import main\n"
        "rc = main(['fit', '--vram', '24G', '--ctx', '32k', '--json'])\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == ""


def test_help_under_importtime_never_touches_textual():
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gemmatui", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in HEAVY}


def test_no_core_module_mentions_textual_imports():
    import pathlib

    core = pathlib.Path(__file__).resolve().parents[1] / "gemmatui" / "core"
    for path in core.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import textual" not in text and "from textual" not in text, path
        assert "from rich" not in text and "import rich" not in text, path
