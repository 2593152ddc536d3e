"""Replaying the log for people: where to start and stop, what to keep, where from.

Positions are what an on-call engineer has at hand: ``first``, a stream offset,
an ISO time, or an interval back from now (``10m``, ``2h``, ``1D``). The broker
starts a time-based read at a chunk boundary, so times are also checked here,
event by event. A log exported with ``--out`` reads back with ``--file``, with
no broker at all.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from ricochet.contracts import (
    DEFAULT_LIMITS,
    MIN_TIME,
    Event,
    ExecutionRequested,
    check_time,
    decode_event,
    encode,
)
from ricochet.errors import BadLogLine, BadPosition, NotReadable
from ricochet.workers.log.reader import Entry, Offset, unreadable_reason

Position = int | datetime | str
INTERVAL = re.compile(r"([0-9]+)([smhD])")
"""ASCII digits only: ``str.isdigit`` and ``\\d`` also take ``²`` and other scripts' digits."""
OFFSET = re.compile(r"[0-9]{1,19}")
MAX_OFFSET = 2**63 - 1
"""A stream offset is a signed 64-bit number on the wire."""
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "D": "days"}


def parse_position(text: str, now: datetime) -> Position:
    """``first``/``last``/``next``, an offset, an ISO time (UTC if naive), or ``10m`` ago.

    Anything else, or a number too large for its kind (an offset past 64 bits,
    an interval reaching back before year 1), is a ``BadPosition`` that says
    why: never an ``OverflowError`` or a ``ValueError`` from deeper down.
    """
    if text in ("first", "last", "next"):
        return text
    if OFFSET.fullmatch(text) and int(text) <= MAX_OFFSET:
        return int(text)
    if text.isascii() and text.isdigit():
        raise BadPosition(f"offset {_shown(text)} is past the largest stream offset ({MAX_OFFSET})")
    if match := INTERVAL.fullmatch(text):
        amount, unit = match.groups()
        try:
            if len(amount) > 18:  # int() refuses 4,300 digits and more: say why first
                raise OverflowError
            return _in_range(now - timedelta(**{UNITS[unit]: int(amount)}), text)
        except OverflowError:
            raise BadPosition(f"{_shown(text)} reaches back before year 1") from None
    return parse_time(text)


def _in_range(moment: datetime, text: str) -> datetime:
    """A time the log can hold (``contracts.limits``): the broker takes a stream position
    as an unsigned Unix time, so one before 1970 cannot even be asked for."""
    try:
        return check_time(moment, _shown(text))
    except NotReadable as err:
        raise BadPosition(str(err)) from None


def _shown(text: str, most: int = 40) -> str:
    """The text as typed, quoted and escaped, cut short: an error need not echo 5,000 digits."""
    return repr(text if len(text) <= most else f"{text[:most]}…")


def parse_time(text: str) -> datetime:
    """An ISO time, UTC when naive, that can be told in UTC (year 1 to 9999 there too)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise BadPosition(
            f"{_shown(text)} is not first, an offset, an ISO time or an interval like 10m"
        ) from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    _in_range(moment, text)
    return moment


CHUNK_MARGIN = timedelta(seconds=60)


def stream_offset(position: Position) -> Offset:
    """What to ask the broker for. For a time, a minute earlier in whole seconds: the broker
    attaches at a chunk boundary, and events are checked against the time here anyway."""
    if isinstance(position, datetime):
        earlier = (position - CHUNK_MARGIN).replace(microsecond=0)
        return "first" if earlier < MIN_TIME else earlier  # nothing is older than 1970
    return position


@dataclass(slots=True)
class Selection:
    """Which events to show, and from where to where."""

    start: Position = "first"
    until: Position | None = None
    execution: str | None = None
    target: str | None = None
    types: tuple[str, ...] = ()
    _targets: dict[str, str] = field(default_factory=dict)
    skipped: list[Entry] = field(default_factory=list)
    """The unreadable messages met on the way, to tell the user about (SPEC 7.7)."""

    def before_start(self, event: Event) -> bool:
        return isinstance(self.start, datetime) and event.at < self.start

    def past_until(self, offset: int | None, event: Event) -> bool:
        if isinstance(self.until, int) and offset is not None:
            return offset > self.until
        return isinstance(self.until, datetime) and event.at > self.until

    def accepts(self, event: Event) -> bool:
        if isinstance(event, ExecutionRequested):
            self._targets[event.execution_id] = event.target
        if self.execution is not None and event.execution_id != self.execution:
            return False
        if self.target is not None and self._targets.get(event.execution_id) != self.target:
            return False
        return not self.types or any(event.type.startswith(t) for t in self.types)

    def pick(self, entries: Iterable[Entry]) -> Iterator[Event]:
        """The selected events of ``entries``, stopping at ``until``."""
        for entry in entries:
            if skip_reason(entry) is not None:
                if isinstance(self.until, int) and entry.offset > self.until >= 0:
                    return
                self.skipped.append(entry)
            for event in entry.events:
                if self.past_until(entry.offset, event):
                    return
                if not self.before_start(event) and self.accepts(event):
                    yield event


MAX_LINE_BYTES = DEFAULT_LIMITS.max_message_bytes
"""An exported line is one event, and no event is larger than a stream message."""

BAD_LINES = 4
"""Exit code of ``replay --file`` and ``status --file`` when a line could not be read."""


def read_file(path: Path, strict: bool = False) -> Iterator[Entry]:
    """An exported log (one JSON event a line) as entries without offsets.

    A line that cannot be read (not JSON, not an event, an unknown type, too deep,
    too big, empty) is skipped like an unreadable stream message, its line number in
    the reason, and said on stderr at once: the rest of the file is still worth
    reading. ``strict`` raises ``BadLogLine`` at the first instead.
    """
    with path.open("rb") as lines:
        for number, line in _lines(lines):
            reason = _line_fault(line)
            if line is not None and reason is None:
                try:
                    yield Entry(-1, (decode_event(line),))
                    continue
                except Exception as err:  # whatever the reason: skip it, and say so
                    reason = _classify(unreadable_reason(err))
            if strict:
                raise BadLogLine(f"{path}: line {number}: {reason} (--strict stops here)")
            print(f"{path}: line {number}: {reason}", file=sys.stderr)
            yield Entry(-1, (), unreadable=f"line {number}: {reason}")


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """Numbered lines, each read to at most ``MAX_LINE_BYTES`` (+1, to see it is over):
    a longer one comes as None and its bytes are passed over, never held."""
    number = 0
    while line := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield number, None
        else:
            yield number, line


def _line_fault(line: bytes | None) -> str | None:
    """What is wrong with ``line`` before it is parsed: too big (None), or empty."""
    if line is None:
        return f"too big: over {MAX_LINE_BYTES:,} bytes, the largest an event can be"
    if not line.strip():
        return "empty line"
    return None


UNKNOWN_TAG = re.compile(r"Input tag '([^']*)' found using 'type'")


def _classify(reason: str) -> str:
    """The parser's words, led by what kind of fault it is."""
    reason = reason.removeprefix("body: ")
    if "recursion limit exceeded" in reason or "nested deeper than the limit" in reason:
        return f"too deep: {reason}"
    if "Invalid JSON" in reason:
        return f"not JSON: {reason}"
    if tag := UNKNOWN_TAG.search(reason):
        return f"unknown event type {tag[1]!r}"
    if "Input should be an object" in reason or "Unable to extract tag" in reason:
        return f"not an event (a JSON object with a type): {reason}"
    return f"not a valid event: {reason}"


SHOWN_SKIPS = 10


def skipped_note(skipped: list[Entry]) -> str | None:
    """What to tell the user about unreadable messages: how many, where, and why.

    Stream messages are placed by offset (``replay --from OFFSET`` reaches
    them); the first few are listed with their reason, and the range of the
    rest. Exported lines were each named, by number, when read: only counted.
    """
    if not skipped:
        return None
    if all(entry.offset < 0 for entry in skipped):  # read_file named each as it went
        return f"warning: {len(skipped)} line(s) could not be read and were skipped (see above)"
    places = [f"{_place(e)} ({_why(e)})" for e in skipped[:SHOWN_SKIPS]]
    rest = skipped[SHOWN_SKIPS:]
    if rest:
        places.append(f"and {len(rest)} more, from {_place(rest[0])} to {_place(rest[-1])}")
    what = "could not be read"
    if any(entry.untrusted is not None for entry in skipped):
        what += " or are not from a trusted writer"
    return f"warning: {len(skipped)} message(s) {what} and were skipped: " + "; ".join(places)


def warn_skipped(skipped: list[Entry]) -> None:
    """Tell the user (on stderr, so piped output stays clean) what could not be read."""
    note = skipped_note(skipped)
    if note is not None:
        print(note, file=sys.stderr)


def events_and_skips(entries: Iterable[Entry]) -> tuple[list[Event], list[Entry]]:
    """The readable events of ``entries`` in order, and the entries that could not be read."""
    events: list[Event] = []
    skipped: list[Entry] = []
    for entry in entries:
        events += entry.events
        if skip_reason(entry) is not None:
            skipped.append(entry)
    return events, skipped


def skip_reason(entry: Entry) -> str | None:
    """Why ``entry`` holds no events for a reader: unreadable, or from a writer outside
    ``event_writers`` (``amqp.trust``); None for an entry read and believed."""
    if entry.unreadable is not None:
        return entry.unreadable
    if entry.untrusted is not None:
        return f"untrusted writer: {entry.untrusted}"
    return None


def _place(entry: Entry) -> str:
    """``offset N`` on the stream; ``line N`` in an exported file (kept in the reason)."""
    if entry.offset >= 0:
        return f"offset {entry.offset}"
    return (entry.unreadable or "").partition(": ")[0]


def _why(entry: Entry) -> str:
    reason = skip_reason(entry) or ""
    return reason if entry.offset >= 0 else reason.partition(": ")[2]


class ProgressBar:
    """A one-line bar on stderr for long reads (only used when stderr is a terminal)."""

    WIDTH = 30

    def __init__(self) -> None:
        self._first: int | None = None
        self._shown = -1

    def update(self, offset: int, tail: int) -> None:
        first = self._first = offset if self._first is None else self._first
        done = min(max(offset - first, 0) / max(tail - first, 1), 1.0)
        percent = int(done * 100)
        if percent == self._shown:
            return
        self._shown = percent
        filled = int(done * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        sys.stderr.write(f"\r  reading the log [{bar}] {percent:3d}%  offset {offset:,}/{tail:,}")
        sys.stderr.flush()

    def close(self) -> None:
        if self._shown >= 0:
            sys.stderr.write("\n")


def human_line(event: Event) -> str:
    """One line per event: time, type, execution, attempt, and what matters for the type."""
    detail: dict[str, Any] = event.model_dump(
        mode="json", exclude={"event_id", "execution_id", "attempt", "at", "worker", "type"}
    )
    if detail.get("error"):
        detail["error"] = f"{detail['error']['type']}: {detail['error']['message']}"
    extras = " ".join(f"{k}={v}" for k, v in detail.items() if v not in (None, "", [], {}))
    who = f" on {event.worker}" if event.worker else ""
    return (
        f"{event.at.isoformat(timespec='milliseconds')} {event.type:<24} "
        f"{event.execution_id} #{event.attempt}{who} {extras}"
    ).rstrip()


def json_line(event: Event) -> str:
    """The event as one JSON line, as the log holds it (``--file`` reads it back).

    orjson writes integers of up to 64 bits only, but pydantic reads larger ones
    (up to 4,300 digits), so an event the log accepted may hold one. Such an
    event is written by pydantic instead, its big integers as exact JSON
    numbers (not strings: the line then reads back into the same event). The
    only visible difference is that pydantic writes UTC times with ``Z``.
    """
    try:
        return encode(event).decode()
    except TypeError:
        return event.model_dump_json()
