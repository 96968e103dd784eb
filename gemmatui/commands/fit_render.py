"""Plain-text rendering of a :class:`~gemmatui.core.fit.FitReport` for the terminal.

Standard library only (no rich): ``gemmatui fit`` must start fast. Colour is plain
ANSI SGR and only used when asked (a TTY without ``NO_COLOR``).
"""

from __future__ import annotations

from gemmatui.core.fit import FitReport, VariantFit
from gemmatui.core.units import format_bytes, format_ctx

BAR_WIDTH = 30
#: Width of the label column ("Hardware", "Recommended:" ...): the longest label and a space.
LABEL_WIDTH = 13
#: What the table's glyphs become where the output encoding has no Unicode (an ASCII
#: ``PYTHONIOENCODING``, an old console): same width, so the columns stay aligned.
ASCII_FALLBACK = str.maketrans(
    {
        "█": "#",
        "▓": "=",
        "░": "-",
        "·": ".",
        "│": "|",
        "▶": ">",
        "≈": "~",
        "–": "-",
        "—": "-",
        "…": "...",
        "×": "x",
    }
)
_SGR = {
    "weights": "34",  # blue
    "kv": "35",  # magenta
    "rest": "36",  # cyan
    "over": "31",  # red
    "gpu": "32",
    "partial": "33",
    "cpu": "33",
    "none": "31",
    "dim": "2",
    "bold": "1",
}


class _Style:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, text: str, role: str) -> str:
        if not self.colour or not text:
            return text
        return f"\x1b[{_SGR[role]}m{text}\x1b[0m"


def for_encoding(text: str, encoding: str | None) -> str:
    """``text`` as ``encoding`` can show it: unchanged if it can, else with the table's
    Unicode glyphs replaced by ASCII look-alikes of the same width (``█`` → ``#``,
    ``·`` → ``.``, the `` · `` between parts → `` - ``); anything else it cannot show
    is left to the stream's error handler.

    >>> for_encoding("▶ 27B ██▓░·│ ≈38 tok/s · CUDA 12.4", "ascii")
    '> 27B ##=-.| ~38 tok/s - CUDA 12.4'
    >>> for_encoding("▶ 27B", "utf-8")
    '▶ 27B'
    """
    try:
        text.encode(encoding or "utf-8")
    except UnicodeEncodeError:
        return text.replace(" · ", " - ").translate(ASCII_FALLBACK)
    except LookupError:  # an encoding Python does not know: leave it to the stream
        pass
    return text


def _label(text: str) -> str:
    """``text`` padded to the label column, always followed by at least one space."""
    return f"{text:<{LABEL_WIDTH - 1}} "


def _hardware_lines(report: FitReport, s: _Style) -> list[str]:
    hw = report.hardware
    lines = []
    label = "Hardware"
    if hw.simulated:
        label = "Simulated"
    if not hw.gpus:
        lines.append(f"{_label(label)}CPU only: no GPU found")
    for gpu, budget in zip(hw.gpus, report.budgets):
        parts = [f"GPU {gpu.index}: {gpu.name}"]
        if gpu.total_bytes:
            parts.append(f"{format_bytes(gpu.total_bytes)}, {format_bytes(budget.free)} free ({format_bytes(budget.usable)} usable)")
        if gpu.unified_memory:
            parts.append("unified memory")
        if gpu.driver_version:
            parts.append(f"driver {gpu.driver_version}")
        if gpu.cuda_version:
            parts.append(f"CUDA {gpu.cuda_version}")
        bw = gpu.bandwidth_bytes_per_s
        if bw:
            parts.append(f"{bw / 1e9:.0f} GB/s")
        lines.append(_label(label) + " · ".join(parts))
        label = ""
    lines.append(
        f"{_label('')}RAM {format_bytes(hw.ram_total_bytes)}, "
        f"{format_bytes(hw.ram_available_bytes)} available"
        + (f" · {hw.cpu_name}" if hw.cpu_name else "")
    )
    for note in hw.notes:
        lines.append(f"{_label('')}{s(note, 'dim')}")
    return lines


def _settings_line(report: FitReport) -> str:
    """Each setting and where it came from, flat: ``context 8k from OLLAMA_CONTEXT_LENGTH
    of ollama serve, pid 42 · KV cache f16 from Ollama default · ...``."""
    st = report.settings
    src = st.sources
    fa = "on" if st.flash_attention else "off"
    parts = [
        f"context {format_ctx(st.num_ctx or 0)} from {src.get('num_ctx', 'Ollama default')}",
        f"KV cache {st.kv_type} from {src.get('kv_type', 'Ollama default')}",
        f"flash attention {fa} from {src.get('flash_attention', 'Ollama default')}",
        f"parallel {st.num_parallel}",
    ]
    return _label("Settings") + " · ".join(parts)


def _bar(row: VariantFit, scale: float, reference: int, s: _Style) -> str:
    bd = row.breakdown
    segments = [
        ("weights", bd.weights, "█"),
        ("kv", bd.kv, "▓"),
        ("rest", bd.compute + bd.output + bd.margin, "░"),
    ]
    cells: list[tuple[str, str]] = []
    filled = 0.0
    for role, size, char in segments:
        filled += size
        target = round(filled / scale * BAR_WIDTH)
        while len(cells) < min(target, BAR_WIDTH):
            cells.append((char, role))
    marker = min(BAR_WIDTH - 1, max(0, round(reference / scale * BAR_WIDTH) - 1)) if reference else None
    out = []
    for i in range(BAR_WIDTH):
        char, role = cells[i] if i < len(cells) else ("·", "dim")
        if marker is not None and i > marker and i < len(cells):
            role = "over"
        if marker is not None and i == marker and i >= len(cells):
            char, role = "│", "bold"
        out.append(s(char, role))
    return "".join(out)


def _max_ctx_text(row: VariantFit) -> str:
    return " / ".join(format_ctx(v) if v else "–" for v in row.max_ctx.values())


def _speed_text(row: VariantFit) -> str:
    return f"≈{row.tokens_per_s:.0f} tok/s" if row.tokens_per_s else "–"


def render_report(
    report: FitReport,
    *,
    only: VariantFit | None = None,
    colour: bool = False,
    next_line: str | None = None,
    command: str | None = None,
) -> str:
    """The ``fit`` report as text.

    Args:
        report: The plan.
        only: Show this row in detail instead of every row (``--model``, ``--gguf``).
        colour: Use ANSI colours.
        next_line: The ``Next:`` command, instead of ``gemmatui pull`` (``--gguf``).
        command: llama-server's command line for the plan (``--engine llama-server``).
    """
    s = _Style(colour)
    lines = _hardware_lines(report, s)
    lines.append(_settings_line(report))
    lines.append("")

    rows = [only] if only is not None else list(reversed(report.rows))
    if report.budgets:
        reference, ref_label = report.budget, f"{format_bytes(report.budget)} usable VRAM"
    else:
        reference = report.hardware.ram_available_bytes
        ref_label = f"{format_bytes(reference)} available RAM"
    scale = max([reference] + [r.breakdown.need for r in rows]) or 1
    lines.append(
        s(
            f"   {'MODEL':<6} {'NEED':>9}  {'MEMORY':<{BAR_WIDTH}}   {'VERDICT':<28} {'SPEED':<12} "
            "MAX CTX f16 / q8_0 / q4_0",
            "dim",
        )
    )
    rec = report.recommended or report.fallback
    for row in rows:
        mark = "▶" if rec is not None and row.variant.key == rec.variant.key else " "
        verdict = row.verdict_text
        # The same figure as --json's "need" (without a GPU: no GPU margin in it, so it
        # is the system RAM the model takes).
        need = row.breakdown.need
        lines.append(
            f" {s(mark, 'bold')} {row.variant.params:<6} {format_bytes(need):>9}  "
            f"{_bar(row, scale, reference, s)}   {s(f'{verdict:<28}', row.verdict)} "
            f"{_speed_text(row):<12} {_max_ctx_text(row)}"
        )
        for note in row.notes:
            lines.append(f"{'':<21}{s(note, 'dim')}")
    rest = "compute + margin" if report.budgets else "compute"
    lines.append(s(f"{'':<21}█ weights  ▓ KV cache  ░ {rest}  │ {ref_label}", "dim"))
    lines.append("")

    if only is not None:
        lines.extend(_detail(report, only))
    else:
        label = "Recommended" if report.recommended else "Best option" if report.fallback else "Result"
        lines.append(_label(label + ":") + report.reason)
    if report.hint:
        lines.append(_label("Hint:") + report.hint)
    target = only if only is not None else rec
    if next_line is not None:
        lines.append(f"{_label('Next:')}{next_line}")
    elif target is not None and target.verdict != "none" and target.variant.key != "gguf":
        lines.append(
            f"{_label('Next:')}gemmatui pull {target.variant.key}   "
            f"(or: ollama pull {target.variant.tag})"
        )
    if command is not None:
        lines.append(f"{_label('llama-server:')}{command}")
    for warning in report.warnings:
        lines.append(_label("Warning:") + s(warning, "partial"))
    return "\n".join(lines) + "\n"


def _detail(report: FitReport, row: VariantFit) -> list[str]:
    bd = row.breakdown
    v = row.variant
    a = v.arch
    if report.budgets:
        margin = "kept free by llama-server's --fit"
        of = f"of {format_bytes(report.budget)} usable"
    else:
        margin = "none: no GPU to keep free"
        of = f"of {format_bytes(report.hardware.ram_available_bytes)} available RAM (no GPU)"
    lines = [
        f"{v.label} ({v.tag}) at {format_ctx(bd.ctx)} context, {bd.kv_type} KV cache, "
        f"micro-batch {bd.ubatch}, flash attention {'on' if bd.flash_attention else 'off'}",
        f"  weights  {format_bytes(bd.weights):>10}   the model blob ({v.blob_source})",
        f"  KV cache {format_bytes(bd.kv):>10}   {a.global_layers} global layers x {bd.cells_global} cells"
        f" + {a.sliding_layers} sliding-window layers x {bd.cells_sliding} cells",
        f"  compute  {format_bytes(bd.compute):>10}   llama-server's graph for one micro-batch"
        + (f" (incl. {format_bytes(bd.kv_f16_copy)} f16 KV copy)" if bd.kv_f16_copy else ""),
        f"  output   {format_bytes(bd.output):>10}   one token's logits per sequence",
        f"  margin   {format_bytes(bd.margin):>10}   {margin}",
        f"  need     {format_bytes(bd.need):>10}   {of}",
        f"{_label('Verdict:')}{v.label}: {row.verdict_text}"
        + (f", ≈{row.tokens_per_s:.0f} tokens/s" if row.tokens_per_s else ""),
    ]
    if report.budgets and row.verdict in ("partial", "cpu", "none") and row.ram_need:
        lines.append(
            f"{_label('')}needs {format_bytes(row.ram_need)} of system RAM for the part on the CPU"
        )
    return lines
