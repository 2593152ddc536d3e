"""The projector: follows the event log and keeps every execution's state current."""

from __future__ import annotations

from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from engine import Projection
from workers.broker import connect, publishing_channel
from workers.log_reader import Entry, LogFollower, Offset, stream_channel
from workers.logs import get_logger
from workers.settings import Settings
from workers.topology import Names, declare_core

log = get_logger(__name__)


class Projector:
    """A live fold of the whole log (SPEC section 3); restarted, it replays to the same state."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = Names(settings.namespace)
        self.projection = Projection()
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._follower: LogFollower | None = None

    @property
    def offset(self) -> int | None:
        """The last stream offset folded in."""
        return None if self._follower is None else self._follower.last_offset

    async def start(self, offset: Offset = "first") -> None:
        self._connection = await connect(self.settings, "projector")
        setup = await publishing_channel(self._connection)
        await declare_core(setup, self.settings)
        await setup.close()
        self._channel = await stream_channel(self._connection)
        self._follower = LogFollower(self._channel, self.names, self._on_entry)
        await self._follower.start(offset)
        log.info("projector.started", offset=str(offset))

    def _on_entry(self, entry: Entry) -> None:
        for event in entry.events:
            state = self.projection.apply(event)
            if state.is_terminal and event.type.startswith("execution_"):
                log.info(
                    "execution.ended",
                    execution_id=state.execution_id,
                    status=state.status.value,
                    attempts=len(state.attempts),
                )

    async def stop(self) -> None:
        if self._follower is not None:
            await self._follower.stop()
        if self._connection is not None:
            await self._connection.close()
