"""``gemmatui fit``: which Gemma 3 QAT variant fits this machine, before any download."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gemmatui.core.fit import FitReport, VariantFit

HELP = "check which Gemma 3 QAT variant fits this machine (before downloading)"

DESCRIPTION = """\
Estimate, for each Gemma 3 QAT variant, what Ollama will allocate: the weights,
the KV cache at your context length (Gemma 3's sliding-window layers stay small)
and llama-server's compute buffer and margin, against what your GPU has free.

sizes: G, GiB, M, MiB are binary (2^30, 2^20 bytes); GB, MB are decimal (10^9, 10^6).
contexts: 4096, 8k, 32k, 128k (k = 1024 tokens).

exit codes: 0 the recommended (or --model) variant fits fully on the GPU;
1 nothing fits fully (or --model does not); 2 usage error."""


def register(sub: argparse._SubParsersAction) -> None:
    from gemmatui.cli import add_host_argument

    p = sub.add_parser(
        "fit", help=HELP, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    p.add_argument("--vram", metavar="SIZE", help="plan for a single GPU of this size (e.g. 24G, 8GB)")
    p.add_argument("--ram", metavar="SIZE", help="plan for this much system RAM (e.g. 32G)")
    p.add_argument("--json", action="store_true", help="print one JSON object (schema: docs/fit.md)")
    add_host_argument(p)


def build_report(args: argparse.Namespace) -> FitReport:
    """Parse every option first (so bad input fails before any probing), then plan."""
    from gemmatui.commands._common import fit_report, load_target, parse_ctx_option
    from gemmatui.core import units
    from gemmatui.core.catalog import get_variant
    from gemmatui.core.errors import UsageError
    from gemmatui.core.fit import parse_count, parse_kv_type

    ctx = parse_ctx_option(args.ctx)
    try:
        vram = units.parse_size(args.vram, what="--vram") if args.vram is not None else None
        ram = units.parse_size(args.ram, what="--ram") if args.ram is not None else None
    except units.UnitError as err:
        raise UsageError(str(err)) from None
    kv = parse_kv_type(args.kv_cache, what="--kv-cache") if args.kv_cache is not None else None
    parallel = parse_count(args.parallel, "--parallel", 1, 64) if args.parallel is not None else None
    fa = None if args.flash_attention in (None, "auto") else args.flash_attention == "on"
    if args.model is not None:
        get_variant(args.model)

    hardware = None
    if vram is not None or ram is not None:
        from gemmatui.core.hardware import probe_hardware, simulated_snapshot

        base = None if vram is not None and ram is not None else probe_hardware()
        hardware = simulated_snapshot(vram, ram, base)
    return fit_report(
        load_target(args),
        ctx=ctx,
        kv_type=kv,
        num_parallel=parallel,
        flash_attention=fa,
        hardware=hardware,
    )


# --------------------------------------------------------------------------- output


def run(args: argparse.Namespace) -> int:
    from gemmatui.core.catalog import get_variant
    from gemmatui.core.errors import EXIT_FAIL, EXIT_OK

    report = build_report(args)
    chosen: VariantFit | None
    if args.model is not None:
        chosen = report.row(get_variant(args.model).key)
    else:
        chosen = report.recommended
    if args.json:
        from gemmatui.core.fit import report_to_json

        obj = report_to_json(report)
        obj["checked"] = None if args.model is None else chosen.variant.key if chosen else None
        obj["exit_code"] = EXIT_OK if chosen is not None and chosen.fits_gpu else EXIT_FAIL
        json.dump(obj, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from gemmatui.commands.fit_render import for_encoding, render_report

        style = _use_colour(sys.stdout)
        text = render_report(report, only=chosen if args.model else None, colour=style)
        # An ASCII-only output (PYTHONIOENCODING=ascii, an old console) gets "#" for "█".
        sys.stdout.write(for_encoding(text, getattr(sys.stdout, "encoding", None)))
    return EXIT_OK if chosen is not None and chosen.fits_gpu else EXIT_FAIL


def _use_colour(stream) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty() and os.environ.get("TERM") != "dumb"
