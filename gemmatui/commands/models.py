"""``gemmatui models``: the installed Gemma 3 QAT variants and whether each fits here."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gemmatui.commands._common import Target
    from gemmatui.core.fit import FitReport
    from gemmatui.core.types import InstalledModel, ModelDetails, RunningModel

HELP = "list the installed Gemma 3 QAT models and whether each fits this machine"

DESCRIPTION = """\
List the Gemma 3 QAT variants installed in Ollama, their size, and whether each
fits this machine at the planned context (--ctx, else config num_ctx, else the
context Ollama would pick here), with the same estimate as `gemmatui fit`.

Against a llama-server (--engine, or found by auto): the one model it serves, its
size, and the context and slots it was started with.

exit codes: 0 ok, 2 usage error, 3 engine unreachable (or the server is not
Ollama or llama-server), 130 Ctrl-C. With --json, every outcome is one JSON object on stdout with
"error" and "exit_code"."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``models`` subcommand (standard library only)."""
    from gemmatui.cli import add_engine_argument, add_host_argument

    p = sub.add_parser(
        "models",
        help=HELP,
        description=DESCRIPTION,
    )
    p.add_argument("--ctx", metavar="N", help="context length to check the fit at (e.g. 32k)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (with error and exit_code), whatever the outcome",
    )
    add_host_argument(p)
    add_engine_argument(p)


def run(args: argparse.Namespace) -> int:
    """Ask Ollama what is installed and loaded, plan the fit, print the table.

    With ``--json`` a failure after argument parsing still prints one object (see
    :func:`error_json`) before the error is raised on for the CLI to report.
    """
    from gemmatui.commands._common import load_target
    from gemmatui.core.errors import EXIT_INTERRUPTED, GemmaTuiError

    host: str | None = None
    try:
        target = load_target(args)
        host = target.host
        obj, text = _query(args, target)
    except GemmaTuiError as err:
        if args.json:
            _print_json(error_json(host, str(err), err.exit_code))
        raise
    except KeyboardInterrupt:
        if args.json:
            _print_json(error_json(host, "interrupted", EXIT_INTERRUPTED))
        raise
    if args.json:
        _print_json(obj)
    else:
        sys.stdout.write(text)
    return 0


def _query(args: argparse.Namespace, target: Target) -> tuple[dict[str, Any], str]:
    """Talk to the engine and plan: the ``--json`` object and the table, one of them used."""
    import asyncio

    from gemmatui.commands._common import fit_report, name_the_host, parse_ctx_option
    from gemmatui.core.ollama import gemma_installed

    ctx = parse_ctx_option(args.ctx)
    served: list[Any] = []

    async def query() -> tuple[dict[str, InstalledModel], list[ModelDetails], list[RunningModel]]:
        async with await target.connect() as client:
            await client.version()  # is it that engine at all? (NotOllama: exit 3)
            if client.kind != "ollama":
                served.append((client, await client.served(), await client.list_models()))
                return {}, [], []
            installed = gemma_installed(await client.list_models())
            details = await asyncio.gather(*(client.show(tag) for tag in installed))
            return installed, list(details), await client.ps()

    with name_the_host(target):
        installed, details, running = asyncio.run(query())
    if served:
        engine, props, rows = served[0]
        if args.json:
            return served_json(engine, props, rows), ""
        return {}, render_served(engine, props, rows)
    by_tag = {d.name: d for d in details}
    report = fit_report(target, ctx=ctx, installed=installed, details=by_tag)
    loaded = {r.name: r for r in running}
    if args.json:
        return as_json(report, installed, loaded, target.host), ""
    return {}, render(report, installed, loaded, target.host)


def _print_json(obj: dict[str, Any]) -> None:
    import json

    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def error_json(host: str | None, error: str, exit_code: int) -> dict[str, Any]:
    """The ``--json`` object of a failure: every key of :func:`as_json`, the data ones
    ``null`` (not ``[]``, which would read as "nothing installed"), and the error.

    >>> error_json(None, "cannot reach Ollama", 3)["exit_code"]
    3
    """
    return {
        "host": host,
        "engine": None,
        "num_ctx": None,
        "num_ctx_source": None,
        "kv_cache_type": None,
        "models": None,
        "not_installed": None,
        "recommended": None,
        "error": error,
        "exit_code": exit_code,
    }


def _loaded_text(running: RunningModel | None) -> str:
    if running is None:
        return "-"
    from gemmatui.core.units import format_ctx

    share = running.size_vram_bytes / running.size_bytes if running.size_bytes else 0.0
    ctx = f"{format_ctx(running.context_length)} ctx, " if running.context_length else ""
    return f"{ctx}{share:.0%} GPU"


def render(
    report: FitReport,
    installed: dict[str, InstalledModel],
    loaded: dict[str, RunningModel],
    host: str,
) -> str:
    """The table for people.

    One row per installed variant (size as ``ollama list`` prints it, the fit verdict at
    the planned context, and the context and GPU share if loaded), then what is not
    installed and what to pull.
    """
    from gemmatui.commands._common import suggested
    from gemmatui.core.units import format_ctx, format_decimal_bytes

    settings = report.settings
    ctx = format_ctx(settings.num_ctx or 0)
    source = settings.sources.get("num_ctx", "")
    kv = settings.kv_type
    lines = [f"Gemma 3 QAT models on {host} (fit at {ctx} context: {source}, {kv} KV cache)"]
    rows = [r for r in report.rows if r.variant.tag in installed]
    pick = suggested(report)
    if rows:
        table = [("MODEL", "SIZE", "FIT HERE", "LOADED")]
        for row in rows:
            model = installed[row.variant.tag]
            table.append(
                (
                    row.variant.tag,
                    format_decimal_bytes(model.size_bytes),
                    row.verdict_text,
                    _loaded_text(loaded.get(row.variant.tag)),
                )
            )
        widths = [max(len(r[i]) for r in table) for i in range(3)]
        for r in table:
            cells = [cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)]
            lines.append("  ".join([*cells, r[3]]))
    else:
        lines.append("none installed")
    missing = [r.variant.key for r in report.rows if r.variant.tag not in installed]
    if missing:
        lines.append(f"not installed: {', '.join(missing)}")
    if pick is not None and pick.variant.tag not in installed:
        lines.append(f"recommended here: {pick.variant.key} (gemmatui pull {pick.variant.key})")
    return "\n".join(lines) + "\n"


def as_json(
    report: FitReport,
    installed: dict[str, InstalledModel],
    loaded: dict[str, RunningModel],
    host: str,
) -> dict[str, Any]:
    """The same as :func:`render`, as one JSON object."""
    from gemmatui.commands._common import suggested

    pick = suggested(report)
    models = []
    for row in report.rows:
        if row.variant.tag not in installed:
            continue
        running = loaded.get(row.variant.tag)
        models.append(
            {
                "key": row.variant.key,
                "tag": row.variant.tag,
                "size_bytes": installed[row.variant.tag].size_bytes,
                "verdict": row.verdict,
                "verdict_text": row.verdict_text,
                "ctx": row.breakdown.ctx,
                "need_bytes": row.breakdown.need,
                "loaded": None
                if running is None
                else {
                    "context_length": running.context_length,
                    "size_bytes": running.size_bytes,
                    "size_vram_bytes": running.size_vram_bytes,
                },
            }
        )
    return {
        "host": host,
        "engine": "ollama",
        "num_ctx": report.settings.num_ctx,
        "num_ctx_source": report.settings.sources.get("num_ctx"),
        "kv_cache_type": report.settings.kv_type,
        "models": models,
        "not_installed": [r.variant.key for r in report.rows if r.variant.tag not in installed],
        "recommended": None if pick is None else pick.variant.key,
        "error": None,
        "exit_code": 0,
    }


def render_served(engine: Any, props: Any, rows: list[InstalledModel]) -> str:
    """The table for a fixed-model engine (llama-server): its one model, the context per
    slot and the slots it was started with. Memory is not in its HTTP API (it is in
    its log: ``gemmatui serve`` prints it)."""
    from gemmatui.core.units import format_ctx, format_decimal_bytes

    version = f" {props.build}" if props.build else ""
    lines = [f"{engine.name}{version} at {engine.host} serves one model"]
    table = [("MODEL", "SIZE", "CONTEXT", "SLOTS", "VISION")]
    for row in rows:
        table.append(
            (
                row.name,
                format_decimal_bytes(row.size_bytes) if row.size_bytes else "-",
                f"{format_ctx(props.n_ctx)} per slot" if props.n_ctx else "-",
                str(props.total_slots),
                "yes" if props.vision else "no",
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        cells = [cell.ljust(w) for cell, w in zip(r[:4], widths, strict=True)]
        lines.append("  ".join([*cells, r[4]]))
    if props.n_ctx_train:
        lines.append(f"trained context: {format_ctx(props.n_ctx_train)} (the server runs what -c gave)")
    return "\n".join(lines) + "\n"


def served_json(engine: Any, props: Any, rows: list[InstalledModel]) -> dict[str, Any]:
    """The same as :func:`render_served`, as one JSON object with :func:`as_json`'s keys."""
    return {
        "host": engine.host,
        "engine": engine.kind,
        "num_ctx": props.n_ctx or None,
        "num_ctx_source": f"{engine.name} -c" if props.n_ctx else None,
        "kv_cache_type": None,
        "models": [
            {
                "key": None,
                "tag": row.name,
                "size_bytes": row.size_bytes or None,
                "verdict": None,
                "verdict_text": None,
                "ctx": props.n_ctx or None,
                "need_bytes": None,
                "loaded": {
                    "context_length": props.n_ctx or None,
                    "size_bytes": None,
                    "size_vram_bytes": None,
                },
                "slots": props.total_slots,
                "vision": props.vision,
                "context_length_max": props.n_ctx_train,
            }
            for row in rows
        ],
        "not_installed": None,
        "recommended": None,
        "error": None,
        "exit_code": 0,
    }
