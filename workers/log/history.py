"""The whole log read once: as entries, as events, or folded into executions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ricochet.contracts import Event
from ricochet.engine import Projection, project
from ricochet.workers.amqp.broker import connect
from ricochet.workers.amqp.topology import Names
from ricochet.workers.log.reader import Entry, Offset, Progress, read_log
from ricochet.workers.log.replay import events_and_skips
from ricochet.workers.settings import Settings


async def read_entries(
    settings: Settings,
    start: Offset = "first",
    role: str = "reader",
    progress: Progress | None = None,
) -> list[Entry]:
    """Every stream message from ``start`` to the tail now. Declares nothing, so a user
    with read rights on the log alone can run it (``TopologyMissing`` if there is no log)."""
    connection = await connect(settings, role)
    try:
        return await read_log(connection, Names(settings.namespace), start, progress)
    finally:
        await connection.close()


async def read_events(settings: Settings, role: str = "reader") -> list[Event]:
    """Every event on the stream now, in log order."""
    return [event for entry in await read_entries(settings, role=role) for event in entry.events]


@dataclass(frozen=True, slots=True)
class Folded:
    """The log folded into executions, and what could not be read on the way."""

    projection: Projection
    skipped: list[Entry]
    """Unreadable messages: an execution asked about may have events in them."""
    last_offset: int | None
    """The offset of the last message folded (None: the log was empty)."""


def fold_entries(entries: Iterable[Entry], execution_id: str | None = None) -> Folded:
    """Fold ``entries`` (every execution, or only ``execution_id``'s events)."""
    listed = list(entries)
    events, skipped = events_and_skips(listed)
    if execution_id is not None:
        events = [e for e in events if e.execution_id == execution_id]
    last = listed[-1].offset if listed else None
    return Folded(project(events), skipped, last)


async def fold_log(settings: Settings, execution_id: str | None = None) -> Folded:
    """The whole retained log, folded now: the one way commands read executions from it."""
    return fold_entries(await read_entries(settings), execution_id)
