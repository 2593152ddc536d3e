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
from ricochet.workers.log.witness import Sighting, Witness


class EventRecorder:
    """Publishes events to the log's exchange and returns once the broker confirmed them."""

    def __init__(
        self,
        exchange: AbstractExchange,
        limits: Limits = DEFAULT_LIMITS,
        writer: str | None = None,
        witness: Witness | None = None,
    ) -> None:
        self.committer = GroupCommitter(
            exchange, max_bytes=limits.max_message_bytes, writer=writer, witness=witness
        )

    @classmethod
    async def open(
        cls,
        channel: AbstractChannel,
        names: Names,
        limits: Limits = DEFAULT_LIMITS,
        witness: Witness | None = None,
    ) -> EventRecorder:
        """A recorder on ``channel``, whose messages name its connection's user as their
        writer (``user_id``), so readers that trust only some writers believe them."""
        exchange = await channel.get_exchange(names.events, ensure=False)
        return cls(exchange, limits, writer_of(channel), witness)

    async def record(self, events: Sequence[Event]) -> Sighting | None:
        """Record facts that must not be lost: retries through broker trouble until confirmed.

        Returns the sighting of their message when a witness watches
        (``workers.log.witness``). Events that cannot be written, or are too large
        for one message, raise ``LimitExceeded`` at once (nothing of them is sent;
        see ``workers.log.group_commit``).
        """
        return await self.committer.commit(events)

    async def record_once(self, events: Sequence[Event], claim: str) -> Sighting | None:
        """One try: for a claim (``AttemptStarted``) that must not be made twice.

        ``claim`` is unique to this call and travels in the message's claims
        header, so after a lost confirm the log can tell whether this publish
        (and not another worker's) got through.
        """
        return await self.committer.commit(events, claim)

    async def record_claim_again(self, events: Sequence[Event], claim: str) -> Sighting | None:
        """The same claim once more, retried until confirmed: for a start the log lost
        after confirming it. Two copies of one claim are one claim (``engine.claims``)."""
        return await self.committer.commit(events, claim, once=False)
