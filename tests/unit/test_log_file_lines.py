"""``replay --file`` and ``status --file`` on an export with bad lines (issue 13, item 5).

Measured on main before: a bad line stopped nothing, but an empty line passed in
silence, a 17 MiB line was read whole into memory, every fault read as a parser
message, and the exit code was 0, so a script could not tell a damaged export from a
whole one. Now each bad line is named on stderr (``FILE: line N: why``) as it is met,
reading goes on, the exit code is 4, and ``--strict`` stops at the first with one
``error:`` line. No broker: ``--file`` reads offline.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ricochet.errors import BadLogLine
from ricochet.workers.cli.main import main
from ricochet.workers.log.replay import BAD_LINES, MAX_LINE_BYTES, json_line, read_file
from tests.unit.builders import EXECUTION, FAIL_THEN_SUCCEED

GOOD = [json_line(event) for event in FAIL_THEN_SUCCEED]
OFFLINE = {"RICOCHET_AMQP_URL": "amqp://nobody:nothing@127.0.0.1:1/"}

BAD = {
    "not JSON": "this is not json",
    "not an event": "[1, 2]",
    "unknown event type 'nope.v9'": '{"type": "nope.v9", "event_id": "x"}',
    "too deep": "[" * 300 + "]" * 300,
    "not a valid event": '{"type": "attempt_started.v2"}',
    "empty line": "   ",
}


def export(tmp_path: Path, bad_last: str) -> tuple[Path, dict[int, str]]:
    """Good lines with each kind of bad line between them, and ``bad_last`` last:
    the file and, by line number, the kind each bad line must be reported as."""
    lines: list[str] = []
    expected: dict[int, str] = {}
    goods = iter(GOOD)
    for kind, line in BAD.items():
        lines += [next(goods), line]
        expected[len(lines)] = kind
    lines += list(goods)
    lines.append(bad_last)
    expected[len(lines)] = "not an event"
    path = tmp_path / "incident.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, expected


def test_every_bad_line_is_named_with_why_and_the_good_ones_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, expected = export(tmp_path, bad_last='"a string, not an event"')

    entries = list(read_file(path))

    assert list(FAIL_THEN_SUCCEED) == [e for entry in entries for e in entry.events]
    said = capsys.readouterr().err.splitlines()
    assert len(expected) == len(said)
    for (number, kind), line in zip(expected.items(), said, strict=True):
        assert line.startswith(f"{path}: line {number}: {kind}"), line
    bad = [entry.unreadable for entry in entries if entry.unreadable is not None]
    assert [f"line {n}: " for n in expected] == [reason[: reason.index(": ") + 2] for reason in bad]


def test_a_line_over_the_largest_event_is_passed_over_not_read(tmp_path: Path) -> None:
    """Bounded memory: it is named as too big, and the line after it is still read."""
    path = tmp_path / "big.jsonl"
    with path.open("w") as out:
        out.write(GOOD[0] + "\n")
        out.write('{"pad": "' + "x" * (MAX_LINE_BYTES + 10) + '"}\n')
        out.write(GOOD[1] + "\n")

    entries = list(read_file(path))

    assert [(FAIL_THEN_SUCCEED[0],), (), (FAIL_THEN_SUCCEED[1],)] == [e.events for e in entries]
    assert [None, "line 2: too big", None] == [
        e.unreadable and e.unreadable[: len("line 2: too big")] for e in entries
    ]


def test_strict_stops_at_the_first_bad_line(tmp_path: Path) -> None:
    path, _ = export(tmp_path, bad_last="[]")
    with pytest.raises(BadLogLine, match=r"incident.jsonl: line 2: not JSON"):
        list(read_file(path, strict=True))


def test_replay_reads_on_past_bad_lines_and_exits_4(tmp_path: Path) -> None:
    path, expected = export(tmp_path, bad_last="{}")

    done = CliRunner().invoke(main, ["replay", "--json", "--file", str(path)], env=OFFLINE)

    assert BAD_LINES == done.exit_code, done.output
    assert GOOD == done.stdout.splitlines()
    assert f"{path}: line {max(expected)}: not an event" in done.stderr
    assert done.stderr.rstrip().endswith(
        f"warning: {len(expected)} line(s) could not be read and were skipped (see above)"
    )
    assert "Traceback" not in done.stderr


def test_replay_strict_stops_with_one_error_line(tmp_path: Path) -> None:
    path, _ = export(tmp_path, bad_last="{}")

    done = CliRunner().invoke(
        main, ["replay", "--json", "--strict", "--file", str(path)], env=OFFLINE
    )

    assert BAD_LINES == done.exit_code
    assert GOOD[:1] == done.stdout.splitlines()  # what came before it was shown
    error = f"error: {path}: line 2: not JSON: Invalid JSON: expected ident at line 1 column 2"
    assert [error + " (--strict stops here)"] == done.stderr.splitlines()


def test_status_with_a_bad_last_line_shows_the_rest_and_exits_4(tmp_path: Path) -> None:
    """Exit 4 wins over the status's own code: the lost line may have held the end."""
    path, expected = export(tmp_path, bad_last="not json at the end")

    done = CliRunner().invoke(main, ["status", EXECUTION, "--file", str(path)], env=OFFLINE)

    assert BAD_LINES == done.exit_code, done.output
    assert "succeeded" in done.stdout
    assert f"{path}: line {max(expected)}: not JSON" in done.stderr
    strict = CliRunner().invoke(
        main, ["status", EXECUTION, "--file", str(path), "--strict"], env=OFFLINE
    )
    assert (BAD_LINES, "") == (strict.exit_code, strict.stdout)
    assert 1 == len(strict.stderr.splitlines())


def test_a_whole_export_still_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "whole.jsonl"
    path.write_text("\n".join(GOOD) + "\n")

    done = CliRunner().invoke(main, ["replay", "--json", "--file", str(path)], env=OFFLINE)

    assert (0, GOOD, "") == (done.exit_code, done.stdout.splitlines(), done.stderr)


def test_strict_without_a_file_is_a_usage_error() -> None:
    done = CliRunner().invoke(main, ["replay", "--strict"], env=OFFLINE)
    assert 2 == done.exit_code
    assert "--strict applies to --file only" in done.stderr
