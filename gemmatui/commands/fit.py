"""``gemmatui fit``: which Gemma 3 QAT variant fits this machine, before any download."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gemmatui.core.catalog import Variant
    from gemmatui.core.fit import FitReport, VariantFit

HELP = "check which Gemma 3 QAT variant fits this machine (before downloading)"

DESCRIPTION = """\
Estimate, for each Gemma 3 QAT variant, what Ollama will allocate: the weights,
the KV cache at your context length (Gemma 3's sliding-window layers stay small)
and llama-server's compute buffer and margin, against what your GPU has free.

sizes: G, GiB, M, MiB are binary (2^30, 2^20 bytes); GB, MB are decimal (10^9, 10^6).
contexts: 4096, 8k, 32k, 128k (k = 1024 tokens).

any Gemma 3 GGUF: --gguf FILE [--mmproj FILE] plans that file (read from its
header) instead of the catalogue, with every other option and --json.
--engine llama-server plans for a llama-server that gemmatui starts (Ollama's
settings do not apply) and prints its exact command line (see `gemmatui serve`).

exit codes: 0 the recommended (or --model, or --gguf) model fits fully on the
GPU; 1 nothing fits fully (or --model does not); 2 usage error (a bad GGUF too)."""


def register(sub: argparse._SubParsersAction) -> None:
    from gemmatui.cli import add_engine_argument, add_host_argument

    p = sub.add_parser("fit", help=HELP, description=DESCRIPTION)
    p.add_argument("--ctx", metavar="N", help="context length (default: what Ollama would use here)")
    p.add_argument(
        "--kv-cache",
        metavar="TYPE",
        help="KV cache type: f16, q8_0 or q4_0 (default: $OLLAMA_KV_CACHE_TYPE, else f16)",
    )
    p.add_argument("--parallel", metavar="N", help="parallel requests (default: $OLLAMA_NUM_PARALLEL, else 1)")
    p.add_argument(
        "--flash-attention",
        choices=("auto", "on", "off"),
        help="flash attention (default: $OLLAMA_FLASH_ATTENTION, else auto)",
    )
    p.add_argument("--model", metavar="NAME", help="check one variant: 1b, 4b, 12b or 27b")
    p.add_argument("--gguf", metavar="PATH", help="plan this Gemma 3 GGUF file instead")
    p.add_argument("--mmproj", metavar="FILE", help="with --gguf: its vision projector file")
    p.add_argument("--vram", metavar="SIZE", help="plan for a single GPU of this size (e.g. 24G, 8GB)")
    p.add_argument("--ram", metavar="SIZE", help="plan for this much system RAM (e.g. 32G)")
    p.add_argument("--json", action="store_true", help="print one JSON object (schema: docs/fit.md)")
    add_host_argument(p)
    add_engine_argument(p)


def build_report(args: argparse.Namespace) -> FitReport:
    """Parse every option first (so bad input fails before any probing), then plan."""
    if getattr(args, "gguf", None) is not None:
        return gguf_report(args)[0]
    if getattr(args, "mmproj", None) is not None:
        from gemmatui.core.errors import UsageError

        raise UsageError("--mmproj goes with --gguf (the model file it belongs to)")
    return _report(args)


def _report(args: argparse.Namespace, variants: tuple[Variant, ...] | None = None, engine: str | None = None) -> FitReport:
    """The fit report for ``args`` (``fit``'s options; ``serve`` has a subset)."""
    from dataclasses import replace

    from gemmatui.commands._common import fit_report, load_target, parse_ctx_option
    from gemmatui.core import units
    from gemmatui.core.catalog import get_variant
    from gemmatui.core.errors import UsageError
    from gemmatui.core.fit import parse_count, parse_kv_type

    ctx = parse_ctx_option(args.ctx)
    vram_text, ram_text = getattr(args, "vram", None), getattr(args, "ram", None)
    try:
        vram = units.parse_size(vram_text, what="--vram") if vram_text is not None else None
        ram = units.parse_size(ram_text, what="--ram") if ram_text is not None else None
    except units.UnitError as err:
        raise UsageError(str(err)) from None
    kv = parse_kv_type(args.kv_cache, what="--kv-cache") if args.kv_cache is not None else None
    parallel = parse_count(args.parallel, "--parallel", 1, 64) if args.parallel is not None else None
    fa = None if args.flash_attention in (None, "auto") else args.flash_attention == "on"
    if getattr(args, "model", None) is not None:
        if variants is not None:
            raise UsageError("--model and --gguf both name a model: choose one")
        get_variant(args.model)
    target = load_target(args)
    if engine is not None:
        target = replace(target, engine=engine, engine_source="serve")

    hardware = None
    if vram is not None or ram is not None:
        from gemmatui.core.hardware import probe_hardware, simulated_snapshot

        base = None if vram is not None and ram is not None else probe_hardware()
        hardware = simulated_snapshot(vram, ram, base)
    return fit_report(
        target,
        ctx=ctx,
        kv_type=kv,
        num_parallel=parallel,
        flash_attention=fa,
        hardware=hardware,
        variants=variants,
    )


def gguf_report(
    args: argparse.Namespace, engine: str | None = None
) -> tuple[FitReport, Variant, bool]:
    """Plan the file ``args.gguf`` (and ``args.mmproj``) with ``args``' other options.

    The GGUF reader is imported here, so a plain ``fit`` never loads it.

    Returns:
        ``(report, variant, has_chat_template)``: the report has one row, the file's.

    Raises:
        GgufError: Missing, not GGUF, cut short, not Gemma 3 (one line, exit 2).
    """
    from gemmatui.commands._common import parse_ctx_option
    from gemmatui.core.gguf import read_gguf, variant_from_gguf
    from gemmatui.core.launch import has_chat_template

    parse_ctx_option(args.ctx)  # a bad --ctx fails before the file is read
    variant = variant_from_gguf(args.gguf, args.mmproj)
    has_template = has_chat_template(dict(read_gguf(args.gguf).metadata))
    return _report(args, (variant,), engine), variant, has_template


# --------------------------------------------------------------------------- output


def run(args: argparse.Namespace) -> int:
    from gemmatui.core.catalog import get_variant
    from gemmatui.core.errors import EXIT_FAIL, EXIT_OK

    report = build_report(args)
    gguf = args.gguf is not None
    chosen: VariantFit | None
    if gguf:
        chosen = report.rows[0]
    elif args.model is not None:
        chosen = report.row(get_variant(args.model).key)
    else:
        chosen = report.recommended
    command = _llama_server_command(args, report, chosen)
    if args.json:
        import json

        from gemmatui.core.fit import report_to_json

        obj = report_to_json(report)
        obj["checked"] = (
            chosen.variant.key if chosen and (gguf or args.model is not None) else None
        )
        if gguf:
            from pathlib import Path

            obj["gguf"] = {
                "path": str(Path(args.gguf)),
                "file": Path(args.gguf).name,
                "mmproj": None if args.mmproj is None else str(Path(args.mmproj)),
            }
            obj["variants"][0]["file"] = Path(args.gguf).name
        obj["engine"] = report_engine(args)
        obj["llama_server_command"] = command
        obj["exit_code"] = EXIT_OK if chosen is not None and chosen.fits_gpu else EXIT_FAIL
        json.dump(obj, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from gemmatui.commands.fit_render import for_encoding, render_report

        style = _use_colour(sys.stdout)
        text = render_report(
            report,
            only=chosen if (args.model or gguf) else None,
            colour=style,
            next_line=_next_line(args, chosen) if gguf else None,
            command=None if command is None else command["line"],
        )
        # An ASCII-only output (PYTHONIOENCODING=ascii, an old console) gets "#" for "█".
        sys.stdout.write(for_encoding(text, getattr(sys.stdout, "encoding", None)))
    return EXIT_OK if chosen is not None and chosen.fits_gpu else EXIT_FAIL


def report_engine(args: argparse.Namespace) -> str:
    """The engine the plan is for: ``llama-server`` (``--engine``, env or config), else
    ``ollama`` (``auto`` plans for Ollama, as ``fit`` always has)."""
    import os

    from gemmatui.core.config import load_settings, resolve_engine

    engine, _ = resolve_engine(getattr(args, "engine", None), os.environ, load_settings())
    return "llama-server" if engine == "llama-server" else "ollama"


def _llama_server_command(
    args: argparse.Namespace, report: FitReport, chosen: VariantFit | None
) -> dict | None:
    """With ``--engine llama-server``: the command line that starts the chosen (or
    recommended, else fallback) model as planned; ``None`` otherwise.

    For a ``--gguf`` file it names the file; for a catalogue variant, Google's QAT GGUF
    on Hugging Face (``-hf google/gemma-3-<size>-it-qat-q4_0-gguf``, which llama-server
    downloads with its projector).
    """
    if report_engine(args) != "llama-server":
        return None
    from pathlib import Path

    from gemmatui.core.launch import command_line, settings_for, shell_line

    row = chosen or report.recommended or report.fallback
    if row is None:
        return None
    gguf = args.gguf is not None
    model = Path(args.gguf) if gguf else Path(f"gemma-3-{row.variant.key}-it-qat-q4_0.gguf")
    settings = settings_for(
        row,
        backend=report.hardware.backend,
        model=model,
        mmproj=Path(args.mmproj) if gguf and args.mmproj else None,
        builtin_template=gguf and not _has_template(args.gguf),
    )
    argv = command_line(settings)
    if not gguf:
        repo = f"google/gemma-3-{row.variant.key}-it-qat-q4_0-gguf"
        at = argv.index("-m")
        argv[at : at + 2] = ["-hf", repo]
        at = argv.index("-a")
        argv[at + 1] = row.variant.tag.replace(":", "-")
    from gemmatui.core.launch import check_cache_and_attention
    from gemmatui.core.errors import UsageError

    try:
        check_cache_and_attention(settings.kv_type, settings.flash_attention)
        refused = None
    except UsageError as err:
        refused = str(err)
    return {"argv": argv, "line": shell_line(argv), "refused": refused, "model": row.variant.tag}


def _has_template(path: str) -> bool:
    from gemmatui.core.gguf import read_gguf
    from gemmatui.core.launch import has_chat_template

    return has_chat_template(dict(read_gguf(path).metadata))


def _next_line(args: argparse.Namespace, chosen: VariantFit | None) -> str | None:
    """``Next:`` for a GGUF file: ``gemmatui serve`` with the same options."""
    if chosen is None or chosen.verdict == "none":
        return None
    from gemmatui.core.launch import shell_line

    argv = ["gemmatui", "serve", args.gguf]
    for flag, value in (
        ("--mmproj", args.mmproj),
        ("--ctx", args.ctx),
        ("--kv-cache", args.kv_cache),
        ("--parallel", args.parallel),
        ("--flash-attention", args.flash_attention),
    ):
        if value is not None:
            argv += [flag, value]
    return shell_line(argv)


def _use_colour(stream) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty() and os.environ.get("TERM") != "dumb"
