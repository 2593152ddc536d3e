"""Unreadable messages are skipped with a reason and shown by offset or line (SPEC 7.7)."""

from __future__ import annotations

import json
from pathlib import Path

from ricochet.contracts import AttemptSucceeded, encode_batch
from ricochet.workers.log.reader import Entry, _entry
from ricochet.workers.log.replay import Selection, json_line, read_file, skipped_note
from tests.unit.builders import FAIL_THEN_SUCCEED

OVERFLOWING = (
    b'[{"type":"execution_requested.v2","event_id":"e","execution_id":"x","attempt":0,'
    b'"at":"0001-01-01T00:00:00+01:00","target":"t"}]'
)
OUT_OF_RANGE = (
    "execution_requested.v2.at: Value error, a time 0001-01-01T00:00:00+01:00 is outside"
    " the range Ricochet reads (1970-01-01 to 9998-12-31, UTC)"
)


def test_any_decoding_exception_skips_the_message_and_keeps_its_place() -> None:
    """Given a message whose time overflows in UTC (it raised OverflowError, before the
    shared time range refused it by name), when it is read, then it has no events, its
    offset and claims, and the reason."""
    entry = _entry(41, OVERFLOWING, "m-1", frozenset({"claim"}))
    reason = f"0.{OUT_OF_RANGE}; body: Tuple should have at least 1 item after validation, not 0"
    assert Entry(41, (), "m-1", frozenset({"claim"}), reason, len(OVERFLOWING)) == entry


def test_a_readable_message_has_no_reason() -> None:
    entry = _entry(7, encode_batch(list(FAIL_THEN_SUCCEED[:2])), None, frozenset())
    assert (FAIL_THEN_SUCCEED[:2], None) == (entry.events, entry.unreadable)


def test_an_export_with_a_bad_line_reads_the_rest_and_names_the_line(tmp_path: Path) -> None:
    """Given an exported log whose second line cannot be read,
    when it is replayed, then the other events come out and line 2 is named with why
    (on stderr as it is read: the closing note only counts)."""
    export = tmp_path / "log.jsonl"
    good = [json_line(event) for event in FAIL_THEN_SUCCEED[:2]]
    bad = OVERFLOWING.decode()[1:-1]
    export.write_text("\n".join([good[0], bad, good[1]]) + "\n")
    selection = Selection()
    picked = list(selection.pick(read_file(export)))
    assert list(FAIL_THEN_SUCCEED[:2]) == picked
    assert [f"line 2: not a valid event: {OUT_OF_RANGE}"] == [
        entry.unreadable for entry in selection.skipped
    ]
    expected = "warning: 1 line(s) could not be read and were skipped (see above)"
    assert expected == skipped_note(selection.skipped)


def test_the_note_lists_the_first_ten_and_the_range_of_the_rest() -> None:
    skipped = [Entry(offset, (), unreadable="body: bad") for offset in range(100, 112)]
    note = skipped_note(skipped)
    assert note is not None
    assert note.startswith("warning: 12 message(s) could not be read and were skipped: ")
    assert note.count("(body: bad)") == 10
    assert note.endswith("; and 2 more, from offset 110 to offset 111")
    assert skipped_note([]) is None


def test_skipped_messages_past_until_are_not_counted() -> None:
    entries = [Entry(0, FAIL_THEN_SUCCEED[:1]), Entry(1, (), unreadable="x"), Entry(5, (), None)]
    entries.append(Entry(9, (), unreadable="y"))
    selection = Selection(until=5)
    list(selection.pick(entries))
    assert [1] == [entry.offset for entry in selection.skipped]


def test_json_lines_write_integers_past_64_bits_exactly() -> None:
    """orjson cannot write 2**70; the printer falls back instead of crashing, as a number."""
    base = FAIL_THEN_SUCCEED[-1]
    big = AttemptSucceeded.model_construct(
        event_id="e", execution_id=base.execution_id, attempt=1, at=base.at, result=2**70
    )
    assert 2**70 == json.loads(json_line(big))["result"]


def test_untrusted_messages_are_skipped_and_named_with_why() -> None:
    """Given a message from a writer outside ``event_writers`` among readable ones, when
    the log is picked, then it is skipped like an unreadable one and the note says why."""
    forged = Entry(7, (), untrusted="not_a_writer")
    readable = Entry(8, (FAIL_THEN_SUCCEED[0],))
    selection = Selection()

    assert [FAIL_THEN_SUCCEED[0]] == list(selection.pick([forged, readable]))
    note = skipped_note(selection.skipped)

    expected = (
        "warning: 1 message(s) could not be read or are not from a trusted writer and were"
        " skipped: offset 7 (untrusted writer: not_a_writer)"
    )
    assert expected == note
