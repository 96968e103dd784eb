"""The model screen: what this machine has, which Gemma 3 QAT variant fits, and at what context.

It shows a hardware card, a context selector (4k ... 128k) and a KV cache selector, and a
table of the four variants: a stacked bar of what each needs (weights | KV cache |
compute + margin) against the memory budget, the verdict, the predicted speed and
whether Ollama has it installed. Every change of context or KV type re-runs the fit
(pure and fast) at once. Enter on a row uses an installed variant or pulls it first.

A GGUF file (``gemmatui --gguf PATH``, or the file a llama-server serves when it is
readable here) is one more row, ``gguf:<name>``, planned as gemmatui starts
llama-server; Enter on the ``--gguf`` row starts llama-server on it and opens the chat.
With a fixed-model engine (llama-server) the screen still plans the machine, and says
that the engine serves one model and that pulling needs Ollama.

Everything comes from the app's :class:`~gemmatui.tui.session.Session`.
"""

from __future__ import annotations

import math
from functools import partial
from collections.abc import Mapping
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.theme import Theme
from textual.widgets import DataTable, Footer, Header, Label, RadioButton, RadioSet, Static

from gemmatui.core.fit import FitReport, GpuBudget, VariantFit
from gemmatui.core.hardware import CPU_ONLY_NOTE
from gemmatui.core.types import KV_TYPES, HardwareSnapshot, InstalledModel
from gemmatui.core.units import format_bytes, format_ctx, format_decimal_bytes
from gemmatui.tui.banner import EngineBanner, HistoryBanner, OllamaBanner
from gemmatui.tui.screens.pull import PullScreen
from gemmatui.tui.session import SessionAccess

#: The key of the GGUF file's row (``--gguf``, or the file a llama-server serves).
GGUF_KEY = "gguf"

#: The contexts offered (tokens); k = 1024.
CONTEXT_CHOICES: tuple[int, ...] = (4096, 8192, 16384, 32768, 65536, 131072)
#: Cells of the stacked memory bar.
BAR_WIDTH = 30
#: Cells of the bar on a narrow screen, where the table must still show every column.
NARROW_BAR_WIDTH = 10
#: Below this many columns the screen is "narrow": the selectors stack and the table
#: shrinks its bar and moves "Installed" next to the model's name.
NARROW_WIDTH = 100


def nearest_context(tokens: int) -> int:
    """The offered context closest to ``tokens`` (on a log scale).

    >>> nearest_context(32768), nearest_context(262144), nearest_context(6000)
    (32768, 131072, 8192)
    """
    return min(CONTEXT_CHOICES, key=lambda c: abs(math.log2(c) - math.log2(max(1, tokens))))


def bar_parts(row: VariantFit, *, on_gpu: bool) -> tuple[int, int, int]:
    """Bytes of the bar's three parts: weights, KV cache, compute (with the 1 MiB output
    buffer, and the GPU margin on a GPU). They add up to the fit's ``need``."""
    bd = row.breakdown
    return bd.weights, bd.kv, bd.compute + bd.output + (bd.margin if on_gpu else 0)


def bar_cells(
    parts: tuple[int, ...], budget: int, scale: int, width: int = BAR_WIDTH
) -> list[tuple[int, str]]:
    """Lay out a stacked bar: for each cell, the part it shows and its glyph.

    Part indexes are those of ``parts``; ``-1`` is unused budget (``░``) or nothing
    (a space, past the budget). Used cells are ``█`` inside the budget and ``▒`` past it.

    >>> "".join(g for _, g in bar_cells((4, 2, 2), budget=10, scale=10, width=10))
    '████████░░'
    >>> "".join(g for _, g in bar_cells((8, 2, 2), budget=10, scale=12, width=12))
    '██████████▒▒'
    >>> [p for p, _ in bar_cells((2, 1, 1), budget=8, scale=8, width=8)]
    [0, 0, 1, 2, -1, -1, -1, -1]
    """
    scale = max(1, scale)
    edges = []
    total = 0
    for size in parts:
        total += size
        edges.append(round(total * width / scale))
    budget_cell = round(budget * width / scale)
    cells = []
    for cell in range(width):
        part = next((index for index, edge in enumerate(edges) if cell < edge), -1)
        inside = cell < budget_cell
        if part >= 0:
            cells.append((part, "█" if inside else "▒"))
        else:
            cells.append((-1, "░" if inside else " "))
    return cells


class HardwareCard(Static):
    """Each GPU with its name, VRAM total / free and driver, or "CPU only", plus RAM."""

    DEFAULT_CSS = """
    HardwareCard {
        height: auto;
        padding: 0 1;
        border: round $primary 60%;
        border-title-color: $primary;
        border-title-style: bold;
        border-subtitle-color: $text-muted;
    }
    """

    def show(self, hw: HardwareSnapshot, budgets: tuple[GpuBudget, ...]) -> None:
        """Describe ``hw``; ``budgets`` (from the fit) give what Ollama can use of each GPU."""
        self.border_title = "Hardware"
        self.border_subtitle = (
            f"{hw.source}{' (simulated)' if hw.simulated and 'simulated' not in hw.source else ''}"
        )
        lines: list[Content] = []
        for gpu, budget in zip(hw.gpus, budgets, strict=True):
            facts = []
            if gpu.total_bytes is not None:
                facts.append(f"{format_bytes(gpu.total_bytes)} VRAM")
            facts.append(
                f"{format_bytes(gpu.free_bytes)} free"
                if gpu.free_bytes is not None
                else "free memory unknown"
            )
            facts.append(f"{format_bytes(budget.usable)} usable")
            if gpu.driver_version:
                facts.append(f"driver {gpu.driver_version}")
            if gpu.cuda_version:
                facts.append(f"CUDA {gpu.cuda_version}")
            lines.append(
                Content.from_markup(
                    "[b]GPU $index[/b]  [b $accent]$name[/]  $facts",
                    index=str(gpu.index),
                    name=gpu.name,
                    facts=" · ".join(facts),
                )
            )
        if not hw.gpus:
            lines.append(
                Content.from_markup(
                    "[b $warning]CPU only[/]: no GPU found, so a model runs from system RAM "
                    "(slowly)."
                )
            )
        cpu = []
        if hw.cpu_count:
            cpu.append(f"{hw.cpu_count} CPU threads")
        if hw.cpu_name:
            cpu.append(hw.cpu_name)
        lines.append(
            Content.from_markup(
                "[b]RAM[/b]  $total total · $available available$cpu",
                total=format_bytes(hw.ram_total_bytes),
                available=format_bytes(hw.ram_available_bytes),
                cpu=(" · " + " · ".join(cpu)) if cpu else "",
            )
        )
        notes = [note for note in hw.notes if note != CPU_ONLY_NOTE]  # said above already
        if notes:
            lines.append(Content.from_markup("[$text-muted]$notes[/]", notes="; ".join(notes)))
        self.update(Content("\n").join(lines))


class FitTable(DataTable[Text]):
    """The four variants: stacked memory bar against the budget, verdict, speed, installed.

    Colours come from the theme through the component classes below.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "fit--weights",
        "fit--kv",
        "fit--compute",
        "fit--free",
        "fit--gpu",
        "fit--partial",
        "fit--cpu",
        "fit--none",
        "fit--muted",
        "fit--star",
    }

    DEFAULT_CSS = """
    FitTable {
        height: auto;
        max-height: 8;
        border: round $panel-lighten-2;
        &:focus { border: round $primary; }
        & > .fit--weights { color: $primary; }
        & > .fit--kv { color: $accent; }
        & > .fit--compute { color: $secondary; }
        & > .fit--free { color: $foreground 25%; }
        & > .fit--gpu { color: $success; }
        & > .fit--partial { color: $warning; }
        & > .fit--cpu { color: $warning; }
        & > .fit--none { color: $error; }
        & > .fit--muted { color: $foreground 60%; }
        & > .fit--star { color: $accent; text-style: bold; }
        /* A neutral cursor: the bar's weights are $primary, the usual cursor colour. */
        & > .datatable--cursor { background: $foreground 8%; color: $foreground; text-style: bold; }
        &:focus > .datatable--cursor {
            background: $foreground 15%;
            color: $foreground;
            text-style: bold;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Use / pull"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        # The bar's colours must survive the cursor: the row's own colours win.
        super().__init__(id=id, cursor_type="row", cursor_foreground_priority="renderable")

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def show(
        self,
        report: FitReport,
        installed: dict[str, InstalledModel] | None,
        cursor_key: str | None,
        *,
        narrow: bool = False,
        files: Mapping[str, str] | None = None,
    ) -> None:
        """Fill the table from ``report`` and put the cursor on ``cursor_key``'s row.

        ``narrow``: a short bar, and "Installed" right after the name, so that what
        matters before Enter is on screen at 80 columns. ``files``: what the
        "Installed" column says for rows that are files, not Ollama tags, by key.
        """
        width = NARROW_BAR_WIDTH if narrow else BAR_WIDTH
        on_gpu = bool(report.budgets)
        budget = report.budget if on_gpu else report.hardware.ram_available_bytes
        needs = [sum(bar_parts(row, on_gpu=on_gpu)) for row in report.rows]
        scale = max([budget, *needs])
        what = "VRAM" if on_gpu else "RAM"
        pick = report.recommended or report.fallback
        part_styles = [
            self._style("fit--weights"),
            self._style("fit--kv"),
            self._style("fit--compute"),
        ]
        free = self._style("fit--free")
        muted = self._style("fit--muted")
        self.clear(columns=True)
        self.add_column(Text(""), key="star", width=1)
        self.add_column(Text("Model"), key="model")
        if narrow:
            self.add_column(Text("Installed"), key="installed")
            self.add_column(Text(f"vs {what}"), key="bar", width=width)
        else:
            self.add_column(
                Text(f"Memory vs {format_bytes(budget)} {what}"), key="bar", width=width
            )
        self.add_column(Text("Needs"), key="need")
        self.add_column(Text("Verdict"), key="verdict")
        self.add_column(Text("Speed"), key="speed")
        if not narrow:
            self.add_column(Text("Installed"), key="installed")
        for row, need in zip(report.rows, needs, strict=True):
            bar = Text(no_wrap=True)
            for part, glyph in bar_cells(
                bar_parts(row, on_gpu=on_gpu), budget, scale, width=width
            ):
                bar.append(glyph, part_styles[part] if part >= 0 else free)
            verdict_style = self._style(f"fit--{row.verdict}")
            star = (
                Text("★", self._style("fit--star"))
                if pick is not None and row is pick
                else Text("")
            )
            speed = Text(f"~{row.tokens_per_s:.0f} tok/s") if row.tokens_per_s else Text("–", muted)
            if files and row.variant.key in files:
                have = Text(files[row.variant.key], self._style("fit--star"))
            elif installed is None:
                have = Text("?", muted)
            elif row.variant.tag in installed:
                have = Text("✓ yes", self._style("fit--gpu"))
            else:
                have = Text("no", muted)
            cells = [
                star,
                Text(row.variant.label, "bold"),
                bar,
                Text(format_bytes(need), verdict_style),
                Text(row.verdict_text, verdict_style),
                speed,
            ]
            if narrow:
                cells.insert(2, have)
            else:
                cells.append(have)
            self.add_row(*cells, key=row.variant.key)
        if cursor_key is not None:
            self.move_cursor(row=self.get_row_index(cursor_key), scroll=False)


class ModelsScreen(SessionAccess, Screen[None]):
    """Choose a variant, context length and KV cache type; use or pull the variant."""

    CSS_PATH = "models.tcss"
    SUB_TITLE = "Choose a model"
    #: Sets the screen's ``-narrow`` / ``-wide`` class, which models.tcss lays out by.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (NARROW_WIDTH, "-wide"),
    ]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left_square_bracket", "context(-1)", "Shorter ctx", key_display="["),
        Binding("right_square_bracket", "context(1)", "Longer ctx", key_display="]"),
        Binding("k", "next_kv", "KV type"),
        Binding("escape", "back", "Back to chat"),
    ]

    def __init__(self) -> None:
        super().__init__(name="models")
        self._ctx = 0
        self._kv = "f16"
        self._report: FitReport | None = None
        self._auto_key: str | None = None  # where we put the cursor ourselves
        self._picked: str | None = None  # where the user moved it
        self._narrow: bool | None = None  # the table's layout, once shown

    @property
    def report(self) -> FitReport:
        """The fit at the selected context and KV cache type."""
        assert self._report is not None
        return self._report

    @property
    def context(self) -> int:
        """The selected context length in tokens."""
        return self._ctx

    @property
    def kv_type(self) -> str:
        """The selected KV cache type."""
        return self._kv

    def compose(self) -> ComposeResult:
        current = self.session.fit_report.settings
        self._ctx = nearest_context(current.num_ctx or CONTEXT_CHOICES[0])
        self._kv = current.kv_type
        yield Header()
        yield OllamaBanner()
        yield EngineBanner()
        yield HistoryBanner()
        yield HardwareCard(id="hardware")
        with Horizontal(id="choices"):
            yield Label("Context", classes="choice-label")
            with RadioSet(id="ctx"):
                for ctx in CONTEXT_CHOICES:
                    yield RadioButton(format_ctx(ctx), value=ctx == self._ctx, name=str(ctx))
            yield Label("KV cache", classes="choice-label")
            with RadioSet(id="kv"):
                for kv in KV_TYPES:
                    yield RadioButton(kv, value=kv == self._kv, name=kv)
        # What Enter does, right above the table: never below the fold.
        yield Static(id="action")
        yield FitTable(id="fit")
        yield Static(id="legend")
        yield Static(id="reason")
        yield Static(id="details")
        yield Footer()

    def on_mount(self) -> None:
        session = self.session
        self.query_one(HardwareCard).show(session.hardware, session.fit_report.budgets)
        chosen = session.chosen_fit
        if session.gguf is not None:
            self._picked = GGUF_KEY  # the file given on the command line
        elif chosen is not None:
            self._picked = chosen.variant.key
        self.watch(self.app, "installed", self._installed_changed, init=False)
        self.watch(self.app, "launch_status", self._launch_changed, init=False)
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)
        self.replan()
        self.query_one(FitTable).focus()

    @property
    def narrow(self) -> bool:
        """Whether the terminal is narrower than :data:`NARROW_WIDTH` columns."""
        return self.app.size.width < NARROW_WIDTH

    def on_resize(self) -> None:
        # The breakpoint classes restyle the selectors; the table's columns follow here.
        if self._report is not None and self._narrow != self.narrow:
            self.replan()

    def on_screen_resume(self) -> None:
        # Each time the screen shows: is the engine (still) there, and what does it have now?
        self.host.check_engine()

    # ------------------------------------------------------------------ fit

    def replan(self) -> None:
        """Re-run the fit for the selected context and KV type and show it."""
        self._report = self.session.plan_fit(self._ctx, self._kv)
        report = self._report
        pick = report.recommended or report.fallback
        cursor = self._picked or (pick.variant.key if pick else None)
        self._auto_key = cursor
        self._narrow = self.narrow
        self.query_one(FitTable).show(
            report, self.host.installed, cursor, narrow=self._narrow, files=self._file_states()
        )
        self._show_legend()
        self._show_reason()
        self._show_details(cursor)

    def _file_states(self) -> dict[str, str]:
        """The "Installed" column of the GGUF row: served now, or a file to serve."""
        session = self.session
        if session.file_variant() is None:
            return {}
        serving = session.served is not None and (
            session.gguf is None or session.launched is not None
        )
        return {GGUF_KEY: "serving" if serving else "file"}

    def _installed_changed(self, installed: dict[str, InstalledModel] | None) -> None:
        self.replan()

    def _launch_changed(self, status: str | None) -> None:
        if self._report is not None:
            self.replan()

    def _theme_changed(self, theme: Theme) -> None:
        if self._report is not None:
            self.replan()

    def _show_legend(self) -> None:
        on_gpu = bool(self.report.budgets)
        self.query_one("#legend", Static).update(
            Content.from_markup(
                "[$primary]█[/] weights  [$accent]█[/] KV cache  [$secondary]█[/] $compute  "
                "[$foreground 25%]░[/] free  ▒ $past  [$accent b]★[/] recommended",
                compute="compute + margin" if on_gpu else "compute",
                past="past the VRAM budget (spills to system RAM)"
                if on_gpu
                else "past the available RAM",
            )
        )

    def _show_reason(self) -> None:
        report = self.report
        session = self.session
        lines = [Content.from_markup("[$accent b]★[/] $reason", reason=report.reason)]
        if report.hint:
            lines.append(Content.from_markup("[b]Tip:[/b] $hint", hint=report.hint))
        for warning in report.warnings:
            lines.append(Content.from_markup("[$warning b]![/] $warning", warning=warning))
        server_kv = (session.fit_env.get("OLLAMA_KV_CACHE_TYPE") or "f16").strip().lower()
        if self._kv != server_kv and session.kind == "ollama":
            lines.append(
                Content.from_markup(
                    "[$warning b]![/] Ollama uses the KV cache type it was started with ($server): "
                    "restart it with "
                    "[b]OLLAMA_KV_CACHE_TYPE=$kv OLLAMA_FLASH_ATTENTION=1 ollama serve[/b] "
                    "for this plan.",
                    server=f"{server_kv}, {session.fit_env_source}"
                    if "OLLAMA_KV_CACHE_TYPE" in session.fit_env
                    else "f16 by default",
                    kv=self._kv,
                )
            )
        self.query_one("#reason", Static).update(Content("\n").join(lines))

    def _show_details(self, key: str | None) -> None:
        details = self.query_one("#details", Static)
        self._show_action(key)
        if key is None:
            details.update("")
            return
        row = self.report.row(key)
        bd = row.breakdown
        on_gpu = bool(self.report.budgets)
        lines = [
            Content.from_markup(
                "[b]$label[/b] at $ctx context, $kv KV cache: weights $weights + KV cache $kvb "
                "+ compute $compute$margin = [b]$need[/b]",
                label=row.variant.label,
                ctx=format_ctx(bd.ctx),
                kv=bd.kv_type,
                weights=format_bytes(bd.weights),
                kvb=format_bytes(bd.kv),
                compute=format_bytes(bd.compute + bd.output),
                margin=f" + margin {format_bytes(bd.margin)}" if on_gpu else "",
                need=format_bytes(sum(bar_parts(row, on_gpu=on_gpu))),
            )
        ]
        if on_gpu:
            fits = [f"{kv} {format_ctx(ctx) if ctx else 'none'}" for kv, ctx in row.max_ctx.items()]
            lines.append(Content(f"Longest context fully on the GPU: {' · '.join(fits)}"))
        for note in row.notes:
            lines.append(Content.from_markup("[$text-muted]$note[/]", note=note))
        details.update(Content("\n").join(lines))

    def _show_action(self, key: str | None) -> None:
        """Say, above the table, what Enter does on the selected row (pull: how much)."""
        action = self.query_one("#action", Static)
        action.set_class(False, "-pull")
        status = self.host.launch_status
        if status is not None:
            action.update(Content.from_markup("[$accent b]⧗[/] $status", status=status))
            return
        if key is None:
            action.update("")
            return
        row = self.report.row(key)
        session = self.session
        installed = self.host.installed
        served = session.served
        if row.verdict == "none":
            text = Content.from_markup(
                "[$error b]$label does not fit here[/]: Enter only explains why.",
                label=row.variant.label,
            )
        elif key == GGUF_KEY:
            text = self._file_action(row.variant.tag.removeprefix("gguf:"))
        elif served is not None:
            text = Content.from_markup(
                "[b]$label[/b]: $engine serves one model ([b]$model[/b]); pulling and "
                "switching models need Ollama (--host URL of an Ollama server).",
                label=row.variant.label,
                engine=session.engine_name,
                model=served.model,
            )
        elif installed is None:
            text = Content.from_markup(
                "[b]$label[/b]: installed or not is unknown until Ollama answers; "
                "Enter cannot pull it yet.",
                label=row.variant.label,
            )
        elif row.variant.tag in installed:
            text = Content.from_markup(
                "[$success b]✓ $label is installed[/]: Enter opens the chat with it.",
                label=row.variant.label,
            )
        else:
            action.set_class(True, "-pull")
            text = Content.from_markup(
                "[$warning b]$label is not installed[/]: Enter downloads [b]$tag[/b] "
                "(about $size).",
                label=row.variant.label,
                tag=row.variant.tag,
                size=format_decimal_bytes(row.variant.blob_bytes),
            )
        action.update(text)

    def _file_action(self, name: str) -> Content:
        """What Enter does on the GGUF row."""
        session = self.session
        if session.served is not None and (session.gguf is None or session.launched is not None):
            return Content.from_markup(
                "[$success b]✓ $engine is serving $name[/]: Enter opens the chat with it.",
                engine=session.engine_name,
                name=name,
            )
        if session.gguf is None:
            return Content.from_markup("[b]$name[/b]: the file the engine serves.", name=name)
        return Content.from_markup(
            "[$accent b]$name[/]: Enter starts llama-server on it with this plan "
            "($ctx context, $kv KV cache) and opens the chat.",
            name=name,
            ctx=format_ctx(self._ctx),
            kv=self._kv,
        )

    # ------------------------------------------------------------------ events

    @on(RadioSet.Changed, "#ctx")
    def _context_chosen(self, event: RadioSet.Changed) -> None:
        self._ctx = int(event.pressed.name or CONTEXT_CHOICES[0])
        self.replan()

    @on(RadioSet.Changed, "#kv")
    def _kv_chosen(self, event: RadioSet.Changed) -> None:
        self._kv = event.pressed.name or "f16"
        self.replan()

    @on(DataTable.RowHighlighted, "#fit")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != event.data_table.cursor_row:
            return  # stale: the table was refilled since
        key = str(event.row_key.value)
        if key != self._auto_key:
            self._picked = key
        self._show_details(key)

    @on(DataTable.RowSelected, "#fit")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.use_variant(str(event.row_key.value))

    # ------------------------------------------------------------------ actions

    def use_variant(self, key: str) -> None:
        """Use the variant ``key`` at the selected context: open the chat, or pull it
        first; on the ``--gguf`` row, start llama-server on the file."""
        app, host, session = self.app, self.host, self.session
        row = self.report.row(key)
        tag = row.variant.tag
        served = session.served
        if row.verdict == "none":
            app.notify(
                f"{row.variant.label} does not fit on this machine at "
                f"{format_ctx(self._ctx)} context "
                f"with a {self._kv} KV cache. Pick a smaller variant or a shorter context.",
                title="Does not fit",
                severity="error",
                markup=False,
            )
            return
        if key == GGUF_KEY:
            if session.gguf is not None and (served is None or session.launched is None):
                host.serve_gguf(self._ctx, self._kv)
            elif served is not None:
                host.open_chat(served.model, served.n_ctx or self._ctx)
            return
        if served is not None:
            app.notify(
                f"{session.describe_engine()} serves one model, {served.model}: it cannot "
                f"pull or switch to {tag}. That needs Ollama: start gemmatui with --host "
                "URL of an Ollama server.",
                title=f"{session.engine_name} serves one model",
                severity="warning",
                markup=False,
            )
            return
        if host.installed is None:
            app.notify(
                f"{session.engine_name} is not running at {session.host}, so {tag} can be "
                "neither checked nor pulled. Start it with `ollama serve`, press r, then "
                "choose again.",
                title=f"{session.engine_name} is not running",
                severity="warning",
                markup=False,
            )
            return
        if tag in host.installed:
            host.use_model(tag, self._ctx, self._kv)
            return
        app.push_screen(
            PullScreen(tag, size_bytes=row.variant.blob_bytes),
            partial(self._pulled, tag, self._ctx, self._kv),
        )

    def _pulled(self, tag: str, ctx: int, kv: str, pulled: bool | None) -> None:
        host = self.host
        host.check_engine()
        if pulled:
            host.use_model(tag, ctx, kv)

    def action_context(self, step: int) -> None:
        """Select the next shorter (``-1``) or longer (``1``) context."""
        index = CONTEXT_CHOICES.index(self._ctx) + step
        if 0 <= index < len(CONTEXT_CHOICES):
            self._press("#ctx", str(CONTEXT_CHOICES[index]))

    def action_next_kv(self) -> None:
        """Select the next KV cache type (f16, q8_0, q4_0, then f16 again)."""
        index = (KV_TYPES.index(self._kv) + 1) % len(KV_TYPES)  # type: ignore[arg-type]
        self._press("#kv", KV_TYPES[index])

    def _press(self, radio_set: str, name: str) -> None:
        for button in self.query_one(radio_set, RadioSet).query(RadioButton):
            if button.name == name:
                button.value = True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return self.is_active and self.app.screen_stack.index(self) > 1
        return True

    def action_back(self) -> None:
        """Return to the chat underneath."""
        self.dismiss(None)
