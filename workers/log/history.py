"""The whole log as a list of events, for commands and tests that read it once."""

from __future__ import annotations

from ricochet.contracts import Event
from ricochet.workers.amqp.broker import connect, publishing_channel
from ricochet.workers.amqp.topology import declare_core
from ricochet.workers.log.reader import Entry, Offset, Progress, read_log
from ricochet.workers.settings import Settings


async def read_entries(
    settings: Settings,
    start: Offset = "first",
    role: str = "reader",
    progress: Progress | None = None,
) -> list[Entry]:
    """Every stream message from ``start`` to the tail now (declares the topology if missing)."""
    connection = await connect(settings, role)
    try:
        channel = await publishing_channel(connection)
        names = await declare_core(channel, settings)
        return await read_log(connection, names, start, progress)
    finally:
        await connection.close()


async def read_events(settings: Settings, role: str = "reader") -> list[Event]:
    """Every event on the stream now, in log order."""
    return [event for entry in await read_entries(settings, role=role) for event in entry.events]
