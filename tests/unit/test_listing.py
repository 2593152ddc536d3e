"""``ricochet executions``: a table with a header row; cells printed safely; any status."""

from __future__ import annotations

from ricochet.workers.read.listing import HEADER, render_table, table_rows
from ricochet.workers.read.text import as_json, printable

ROW = {
    "execution_id": "3f2a9c1e" * 4,
    "target": "billing.tasks:charge",
    "status": "retry_scheduled",
    "attempts": 2,
    "requested_at": "2026-01-01T10:30:00.123456+01:00",
    "ended_at": None,
}


def test_a_summary_becomes_one_row_of_cells_in_header_order() -> None:
    """Times in UTC to the second: the column header says UTC."""
    assert [
        ("3f2a9c1e" * 4, "retry_scheduled", "2", "billing.tasks:charge", "2026-01-01 09:30:00")
    ] == (table_rows([ROW]))


def test_unknown_values_are_shown_as_such() -> None:
    row = {**ROW, "target": None, "requested_at": None}

    assert ("?", "-") == (table_rows([row])[0][3], table_rows([row])[0][4])


def test_a_status_added_later_is_shown_by_its_value() -> None:
    """Another engineer's ``cancelled`` needs no change here."""
    assert "cancelled" == table_rows([{**ROW, "status": "cancelled"}])[0][1]


def test_the_table_has_a_header_row_and_aligned_columns() -> None:
    second = {**ROW, "execution_id": "b" * 32, "status": "failed", "attempts": 11}
    lines = render_table(table_rows([ROW, second]), color=False).splitlines()

    assert list(HEADER) == [cell.strip() for cell in lines[0].split("  ") if cell.strip()]
    assert 3 == len(lines)
    assert lines[1].index("billing.tasks:charge") == lines[2].index("billing.tasks:charge")
    assert [] == [line for line in lines if line != line.rstrip()]


def test_an_empty_listing_is_the_header_alone() -> None:
    assert 1 == len(render_table([], color=False).splitlines())


def test_cells_cannot_steer_the_terminal_or_use_markup() -> None:
    """A target from the network is text: no escape sequence, no rich markup."""
    row = {**ROW, "target": "t:[bold]x[/bold]\x1b[31m\u202e"}

    text = render_table(table_rows([row]), color=False)

    assert "t:[bold]x[/bold]\\x1b[31m\\u202e" in text
    assert "\x1b" not in text


def test_printable_escapes_controls_and_keeps_the_rest() -> None:
    assert "tab\tkept é 日本 \\r\\n\\x9b\\u2028" == printable("tab\tkept é 日本 \r\n\x9b\u2028")


def test_results_are_compact_json_even_past_64_bits() -> None:
    """The same text ``submit --wait`` prints; a huge integer is written exactly."""
    assert '{"sent":true,"n":null}' == as_json({"sent": True, "n": None})
    assert str(2**70) == as_json(2**70)
    assert '["\\u001b[2J"]' == as_json(["\x1b[2J"])
