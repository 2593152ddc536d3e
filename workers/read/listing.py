"""``ricochet executions`` as a table with a header row, laid out by rich.

The rows come from a projector's API or a fresh fold (``api.summary``); every
cell is user data or came over the network, so each goes through
``text.printable`` and into rich as plain ``Text`` (never markup). The status
is shown by its value: a status added later needs no change here.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ricochet.workers.read.text import printable

HEADER = ("execution", "status", "attempts", "target", "requested (UTC)")
NATURAL_WIDTH = 10_000
"""Rows are laid out as wide as their cells, never cut: an execution id cut short to fit
a terminal would be useless (kubectl's tables do the same; the terminal wraps)."""


def _moment(value: object) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` in UTC; ``-`` when unknown."""
    if value is None:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return printable(str(value))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def table_rows(summaries: Iterable[Mapping[str, object]]) -> list[tuple[str, ...]]:
    """One row of printable cells per execution summary, in the order of ``HEADER``."""
    return [
        (
            printable(str(row.get("execution_id"))),
            printable(str(row.get("status"))),
            printable(str(row.get("attempts"))),
            printable(str(row.get("target") or "?")),
            _moment(row.get("requested_at")),
        )
        for row in summaries
    ]


def render_table(rows: Iterable[tuple[str, ...]], color: bool) -> str:
    """The rows under a header row, columns aligned, no trailing spaces."""
    table = Table(box=None, pad_edge=False, header_style="bold" if color else "")
    for name in HEADER:
        table.add_column(name, no_wrap=True, justify="right" if name == "attempts" else "left")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    sink = io.StringIO()
    console = Console(
        file=sink,
        width=NATURAL_WIDTH,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
    )
    console.print(table)
    return "\n".join(line.rstrip() for line in sink.getvalue().splitlines())
