"""Recording events: confirmed, and grouped with other callers' into shared stream messages.

The events that describe a step (``AttemptFailed`` + ``RetryScheduled``, say) go
in one message, so they are confirmed together and never half-recorded; see
``ricochet.workers.log.group_commit`` for how callers share messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from aio_pika.abc import AbstractChannel, AbstractExchange

from ricochet.contracts import DEFAULT_LIMITS, Event, Limits
from ricochet.workers.amqp.topology import Names
from ricochet.workers.amqp.trust import writer_of
from ricochet.workers.log.group_commit import GroupCommitter


class EventRecorder:
    """Publishes events to the log's exchange and returns once the broker confirmed them."""

    def __init__(
        self, exchange: AbstractExchange, limits: Limits = DEFAULT_LIMITS, writer: str | None = None
    ) -> None:
        self.committer = GroupCommitter(exchange, max_bytes=limits.max_message_bytes, writer=writer)

    @classmethod
    async def open(
        cls, channel: AbstractChannel, names: Names, limits: Limits = DEFAULT_LIMITS
    ) -> EventRecorder:
        """A recorder on ``channel``, whose messages name its connection's user as their
        writer (``user_id``), so readers that trust only some writers believe them."""
        exchange = await channel.get_exchange(names.events, ensure=False)
        return cls(exchange, limits, writer_of(channel))

    async def record(self, events: Sequence[Event]) -> None:
        """Record facts that must not be lost: retries through broker trouble until confirmed.

        Events that cannot be written, or are too large for one message, raise
        ``LimitExceeded`` at once (nothing of them is sent; see ``workers.log.group_commit``).
        """
        await self.committer.commit(events)

    async def record_once(self, events: Sequence[Event], claim: str) -> None:
        """One try: for a claim (``AttemptStarted``) that must not be made twice.

        ``claim`` is unique to this call and travels in the message's claims
        header, so after a lost confirm the log can tell whether this publish
        (and not another worker's) got through.
        """
        await self.committer.commit(events, claim)
