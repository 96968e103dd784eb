"""``gemmatui serve GGUF``: start llama-server with the settings the fit chose."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gemmatui.core.catalog import Variant
    from gemmatui.core.fit import VariantFit
    from gemmatui.core.launch import LaunchSettings

HELP = "start llama.cpp's llama-server on a Gemma 3 GGUF with the settings the fit chose"

DESCRIPTION = """\
Plan the GGUF file with the same memory model as `gemmatui fit --gguf`, start
llama-server with the settings that plan chose (-c, -np, -ctk/-ctv, -fa, -b/-ub,
-ngl; --chat-template gemma when the file has no chat template), wait until the
model is loaded, and print the plan next to llama.cpp's own allocations (its log's
buffer lines). Then it serves until Ctrl-C:

  gemmatui serve gemma-3-4b-it-q4_0.gguf --mmproj mmproj-model-f16.gguf --ctx 32k
  gemmatui ask --host http://127.0.0.1:8080 "hello"

The program is `llama-server` on PATH, else the Python build from
`pip install 'gemmatui[llamacpp]'` (xllamacpp). It runs in its own process, stopped
when gemmatui stops; its log is kept in the user cache dir
(~/.cache/gemmatui/logs/llama-server-PORT.log on Linux). See docs/engines.md.

exit codes: 0 stopped with Ctrl-C (or SIGTERM) after it served; 1 it cannot start
(no llama-server, the port is in use, it exited while loading, the model does not
fit in memory) or it stopped by itself; 2 usage error (a bad GGUF, settings
llama-server refuses); 130 Ctrl-C before it was ready."""


#: The same as :data:`gemmatui.core.launch.DEFAULT_PORT` / ``DEFAULT_BIND`` (a test
#: checks), written out so that building the parser does not import the launcher.
DEFAULT_PORT = 8080
DEFAULT_BIND = "127.0.0.1"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand (standard library only)."""
    p = sub.add_parser("serve", help=HELP, description=DESCRIPTION)
    p.add_argument("gguf", metavar="GGUF", help="a Gemma 3 GGUF model file")
    p.add_argument("--mmproj", metavar="FILE", help="its vision projector (mmproj) GGUF")
    p.add_argument(
        "--ctx", metavar="N", help="context per sequence (default: as fit, capped at the model's)"
    )
    p.add_argument("--kv-cache", metavar="TYPE", help="KV cache type: f16, q8_0 or q4_0 (default: f16)")
    p.add_argument("--parallel", metavar="N", help="parallel sequences, -np (default: 1)")
    p.add_argument(
        "--flash-attention",
        choices=("auto", "on", "off"),
        help="flash attention (default: auto, on where the GPU supports it)",
    )
    p.add_argument(
        "--port",
        metavar="P",
        default=str(DEFAULT_PORT),
        help=f"port to listen on; 0 picks a free one (default: {DEFAULT_PORT})",
    )
    p.add_argument(
        "--host-bind",
        metavar="ADDR",
        default=DEFAULT_BIND,
        help=f"address to listen on (default: {DEFAULT_BIND}, this machine only)",
    )
    p.add_argument(
        "--timeout",
        metavar="SECONDS",
        default="600",
        help="give up when the model has not loaded after this long (default: 600)",
    )


def run(args: argparse.Namespace) -> int:
    """Plan, start, show plan vs actual, serve until Ctrl-C."""
    import signal

    from gemmatui.core.errors import EXIT_INTERRUPTED, EXIT_OK, LaunchError
    from gemmatui.core.launch import (
        EngineProcess,
        command_line,
        find_program,
        free_port,
        log_path,
        program_name,
        render_plan_vs_actual,
        shell_line,
    )

    port, timeout = _port(args.port), _seconds(args.timeout)
    variant, row, settings = plan_gguf(args)
    program = find_program()
    port = free_port(args.host_bind, port)
    launch = _with_port(settings, args.host_bind, port)
    argv = command_line(launch, program)
    engine = EngineProcess(argv, log_path(port), launch.url)
    _note(f"starting {program_name(program)}: {shell_line(command_line(launch))}")
    _note(f"its log: {engine.log}")
    # SIGTERM and SIGHUP (a closed terminal) stop the server as Ctrl-C does.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        engine.start()
        try:
            engine.wait_ready(timeout)
        except KeyboardInterrupt:
            engine.stop()
            _note("interrupted while llama-server was loading; stopped it")
            return EXIT_INTERRUPTED
        print(f"plan vs actual for {variant.label} ({launch.model.name}):")
        print(render_plan_vs_actual(row.breakdown, engine.buffers()))
        print(
            f"serving {variant.label} at {launch.url} — ask with: "
            f'gemmatui ask --host {launch.url} "hello"   (Ctrl-C stops it)',
            flush=True,
        )
        try:
            code = engine.wait()
        except KeyboardInterrupt:
            engine.stop()
            _note(f"stopped llama-server at {launch.url}")
            return EXIT_OK
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        raise LaunchError(f"llama-server stopped by itself ({how}); its log: {engine.log}")
    finally:
        engine.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def plan_gguf(args: argparse.Namespace) -> tuple[Variant, VariantFit, LaunchSettings]:
    """Read the GGUF, plan it with ``fit``'s machinery for llama-server, and turn the
    plan into launch settings (port and address are filled in later).

    Raises:
        GgufError: The file is missing, not a GGUF, cut short or not Gemma 3 (exit 2).
        UsageError: Bad options, or settings llama-server refuses (exit 2).
        LaunchError: The model does not fit in this machine's memory (exit 1).
    """
    from pathlib import Path

    from gemmatui.commands.fit import gguf_report
    from gemmatui.core.launch import launch_plan

    report, variant, has_template = gguf_report(args, engine="llama-server")
    row, settings = launch_plan(
        report,
        model=Path(args.gguf),
        mmproj=Path(args.mmproj) if args.mmproj else None,
        builtin_template=not has_template,
    )
    if not has_template:
        _note(
            f"{Path(args.gguf).name} has no chat template; llama-server uses its built-in "
            "Gemma template (--chat-template gemma)"
        )
    return variant, row, settings


def _with_port(settings: LaunchSettings, host: str, port: int) -> LaunchSettings:
    from dataclasses import replace

    return replace(settings, host=host, port=port)


def _port(text: str) -> int:
    from gemmatui.core.fit import parse_count

    return parse_count(text, "--port", 0, 65535)


def _seconds(text: str) -> float:
    import math

    from gemmatui.core.errors import UsageError

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"invalid --timeout {text!r}: use a number of seconds above 0")
    return value


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _note(line: str) -> None:
    print(f"gemmatui: {line}", file=sys.stderr, flush=True)

