"""The core never imports Textual, and the fast paths (--help, --version, fit) load
neither Textual nor the Ollama client stack; ``fit`` loads no more than it runs
(issue #11: its start is measured against ``python -c pass``)."""

from __future__ import annotations

import os
import subprocess
import sys

HEAVY = ("textual", "rich", "ollama", "httpx", "pydantic")

# What `gemmatui fit` does not run, so does not load: the other commands, and the Ollama
# records of gemmatui.core.types (fit plans with gemmatui.core.machine's).
NOT_FOR_FIT = (
    "gemmatui.commands.ask",
    "gemmatui.commands.models",
    "gemmatui.commands.pull",
    "gemmatui.commands.serve",
    "gemmatui.core.types",
)


def _loaded_after(code: str, modules: tuple[str, ...] = HEAVY) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
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


def _run_reporting_modules(
    code: str, modules: tuple[str, ...], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python; it then writes to stderr which of ``modules``
    it loaded (nothing, when none)."""
    report = f"print(' '.join(m for m in {modules!r} if m in sys.modules), file=sys.stderr)\n"
    return subprocess.run(
        [sys.executable, "-c", "import sys\n" + code + report],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_fit_command_runs_without_textual_or_ollama(tmp_path):
    env = {**os.environ, "GEMMATUI_CONFIG": str(tmp_path / "c.toml"), "OLLAMA_HOST": "127.0.0.1:9"}
    out = _run_reporting_modules(
        "from gemmatui.cli import main\n"
        "rc = main(['fit', '--vram', '24G', '--ctx', '32k', '--json'])\n",
        HEAVY,
        env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == ""


def test_fit_as_the_program_loads_only_what_it_runs(tmp_path):
    """``main()`` reading ``sys.argv``, as the console script calls it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "GEMMATUI_"))}
    env.update(GEMMATUI_CONFIG=str(tmp_path / "c.toml"), OLLAMA_HOST="127.0.0.1:9")
    unwanted = HEAVY + NOT_FOR_FIT
    out = _run_reporting_modules(
        "sys.argv = ['gemmatui', 'fit', '--json']\nfrom gemmatui.cli import main\nrc = main()\n",
        unwanted,
        env,
    )
    assert out.stdout.startswith("{"), out.stderr
    assert out.stderr.strip() == ""


def test_the_command_line_is_built_without_shutil():
    """argparse's own help formatter imports shutil (with bz2, lzma, zlib: ~3 ms) for
    the terminal's width; the CLI's formatter reads it without."""
    code = "import gemmatui.cli; gemmatui.cli.build_parser().parse_args(['fit', '--json'])"
    assert _loaded_after(code, ("shutil",)) == set()


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


def _imported_modules(path, package: str) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (``TYPE_CHECKING`` blocks and
    function bodies included), relative imports resolved against ``package``; for
    ``from X import name`` both ``X`` and ``X.name`` are counted."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_screens_and_widgets_never_import_the_app():
    """The layers read one way: the app imports the screens, which use the session;
    no screen, widget, banner or the session imports ``gemmatui.tui.app``."""
    import pathlib

    tui = pathlib.Path(__file__).resolve().parents[1] / "gemmatui" / "tui"
    files = [
        *((p, "gemmatui.tui.screens") for p in (tui / "screens").glob("*.py")),
        *((p, "gemmatui.tui.widgets") for p in (tui / "widgets").glob("*.py")),
        *((tui / name, "gemmatui.tui") for name in ("banner.py", "session.py", "commands.py")),
    ]
    assert len(files) > 10
    offenders = [
        str(path.relative_to(tui))
        for path, package in files
        if any(m == "gemmatui.tui.app" or m.startswith("gemmatui.tui.app.")
               for m in _imported_modules(path, package))
    ]  # fmt: skip
    assert offenders == []


def test_the_import_check_sees_type_checking_and_relative_imports(tmp_path):
    """The check above would catch the old form (under ``TYPE_CHECKING``) and a
    relative import."""
    old = tmp_path / "old.py"
    old.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from gemmatui.tui.app import GemmaApp\n",
        encoding="utf-8",
    )
    relative = tmp_path / "relative.py"
    relative.write_text("def f():\n    from ..app import GemmaApp\n", encoding="utf-8")
    assert "gemmatui.tui.app" in _imported_modules(old, "gemmatui.tui.screens")
    assert "gemmatui.tui.app" in _imported_modules(relative, "gemmatui.tui.screens")
