"""A one-line gauge: a bar coloured by how full it is, and a label after it."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

FILL = "█"
EMPTY = "░"


class Meter(Widget):
    """``████████░░░░ 18.2 / 24.0 GiB``: ``value`` of ``total``, coloured by level.

    Below ``warn_at`` (a fraction of ``total``) the bar is ``$success``, from
    ``warn_at`` ``$warning``, from ``error_at`` ``$error``. With no total the bar is
    empty and only the label shows.

    :meth:`show` repaints the gauge only when what it draws changes: the filled cells
    at its width, the colour or the label. The panels hand it a reading every second or
    two, mostly one that draws the same (a few MiB more in use is no whole cell).

    Args:
        warn_at: Fraction from which the bar turns to the warning colour.
        error_at: Fraction from which the bar turns to the error colour.
    """

    COMPONENT_CLASSES = {"meter--ok", "meter--warning", "meter--error", "meter--empty"}

    DEFAULT_CSS = """
    Meter {
        height: 1;
        width: 1fr;
        &> .meter--ok { color: $success; }
        &> .meter--warning { color: $warning; }
        &> .meter--error { color: $error; }
        &> .meter--empty { color: $foreground 15%; }
    }
    """

    def __init__(
        self,
        *,
        warn_at: float = 0.8,
        error_at: float = 0.95,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.warn_at = warn_at
        self.error_at = error_at
        self.value: float = 0.0
        self.total: float | None = None
        self.label = ""

    @property
    def fraction(self) -> float | None:
        """``value / total`` clipped to 0..1, or ``None`` without a total."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.value / self.total))

    @property
    def level(self) -> str | None:
        """``"ok"``, ``"warning"`` or ``"error"``; ``None`` without a total."""
        fraction = self.fraction
        if fraction is None:
            return None
        if fraction >= self.error_at:
            return "error"
        return "warning" if fraction >= self.warn_at else "ok"

    def show(self, value: float, total: float | None, label: str) -> None:
        """Set value, total and label together; repaint only if the drawing changes."""
        before = self._drawn()
        self.value, self.total, self.label = value, total, label
        if self._drawn() != before or not self.size.width:  # not laid out: cannot tell
            self.refresh()

    def _drawn(self) -> tuple[int, str | None, str]:
        """What :meth:`render` draws at the current width: filled cells, level, label."""
        return self._bar()[1], self.level, self.label

    def _bar(self) -> tuple[int, int, str]:
        """The bar's width, its filled cells and the label after it (with its space)."""
        label = f" {self.label}" if self.label else ""
        width = max(0, self.size.width - cell_len(label))
        return width, round((self.fraction or 0.0) * width), label

    def render(self) -> Text:
        width, filled, label = self._bar()
        return Text.assemble(
            (FILL * filled, self.get_component_rich_style(f"meter--{self.level or 'ok'}")),
            (EMPTY * (width - filled), self.get_component_rich_style("meter--empty")),
            label,
        )
