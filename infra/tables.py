"""Tables for people, drawn by rich: the demo's and `dealledger history`'s.

On a terminal a table fits the terminal's width (cells wrap). Written to a pipe or a
file it keeps its natural width instead of rich's 80-column default, so redirected
output reads like the screen and no cell is cut. Cells are plain text, never rich
markup: a value such as "[near_duplicate]" is shown as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterable, Sequence

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

# A cell given as several strings spans that many lines.
Cell = str | Sequence[str]


def print_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    title: str | None = None,
    right: Collection[str] = (),
    unbroken: Collection[str] = (),
) -> None:
    """Prints a borderless table to standard output: the title on a line of its own,
    the headings, a rule, the rows. The columns named in `right` are right-aligned;
    those in `unbroken` never wrap (the others give way on a narrow terminal)."""
    drawn = Table(
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    for heading in headers:
        # On a narrow terminal a long word folds onto the next line rather than lose
        # its end to an ellipsis: an id or a reason code must stay whole.
        drawn.add_column(heading, justify="right" if heading in right else "left", overflow="fold")
    for row in rows:
        drawn.add_row(*(Text(cell if isinstance(cell, str) else "\n".join(cell)) for cell in row))
    _print(*([Text(title, style="bold")] if title is not None else []), drawn)


def _print(*renderables: RenderableType) -> None:
    console = Console(highlight=False, markup=False, emoji=False)
    if console.is_terminal:
        console.print(*renderables, sep="\n")
        return
    measure = Console(width=1_000_000)
    natural = max(measure.measure(renderable).maximum for renderable in renderables)
    console = Console(highlight=False, markup=False, emoji=False, width=max(natural, 1))
    with console.capture() as captured:
        console.print(*renderables, sep="\n")
    # rich pads every cell to its column's width; a file need not keep the padding.
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
