"""The whole log as a list of events, for commands and tests that read it once."""

from __future__ import annotations

from contracts import Event
from workers.broker import connect, publishing_channel
from workers.log_reader import read_log
from workers.settings import Settings
from workers.topology import declare_core


async def read_events(settings: Settings, role: str = "reader") -> list[Event]:
    """Every event on the stream now, in log order (declares the topology if missing)."""
    connection = await connect(settings, role)
    try:
        channel = await publishing_channel(connection)
        names = await declare_core(channel, settings)
        entries = await read_log(connection, names)
    finally:
        await connection.close()
    return [event for entry in entries for event in entry.events]
