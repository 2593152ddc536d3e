"""Was this attempt already started? Asked of the log for redelivered work messages.

A work message is acked right after its ``AttemptStarted`` is confirmed. If the
connection drops in between, the broker redelivers a message whose attempt is
already owned (its worker runs it, or the supervisor will declare it lost).
Running it again would break at-most-once, so a redelivered message runs only
if the log has no claim on its attempt: no ``AttemptStarted``, and no cancel that
pre-empted it (``execution_cancelled``, ``cancel_requested``: see ``engine.claims``).
Redeliveries are rare (reconnects, crashes, shutdowns), so this reads the log from
the message's publish time, incrementally, and remembers what it saw.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aio_pika.abc import AbstractRobustConnection

from ricochet.contracts import event_id
from ricochet.engine.claims import is_claim, scan_floor
from ricochet.workers.amqp.topology import Names
from ricochet.workers.log.reader import Entry, Offset, scan_log

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class StartedLookup:
    """Answers 'is there a claim (a start, a cancel) of this attempt on the log?'."""

    def __init__(self, connection: AbstractRobustConnection, names: Names) -> None:
        self._connection = connection
        self._names = names
        self._lock = asyncio.Lock()
        self._started: set[str] = set()
        self._published: set[str] = set()
        self._scanned_from: datetime | None = None
        self._scanned_to: datetime | None = None
        self._next_offset: int | None = None

    async def was_started(
        self,
        execution_id: str,
        attempt: int,
        published_at: datetime | None,
        known_after: datetime | None = None,
    ) -> bool:
        """Did anyone record this attempt's start, or cancel the execution before it?

        ``known_after``: starts after this time are known elsewhere (the claim book),
        so a scan that already reached past it need not read the log again: after a
        restart with a backlog, one scan answers for every old message.
        """
        wanted = event_id(execution_id, attempt, "started")
        async with self._lock:
            if not self._covers(published_at, known_after):
                await self._scan(published_at)
            return wanted in self._started

    def _covers(self, published_at: datetime | None, known_after: datetime | None) -> bool:
        floor = scan_floor(published_at) or EPOCH
        return (
            known_after is not None
            and self._scanned_from is not None
            and self._scanned_to is not None
            and floor >= self._scanned_from
            and self._scanned_to >= known_after
        )

    async def was_recorded(self, claim: str, published_at: datetime | None) -> bool:
        """Did the stream message carrying ``claim`` (one worker's start) reach the log?"""
        async with self._lock:
            await self._scan(published_at)
            return claim in self._published

    async def _scan(self, published_at: datetime | None) -> None:
        """Read what is new since the last scan, or rescan from earlier if asked about older."""
        floor = scan_floor(published_at) or EPOCH
        start: Offset
        if self._scanned_from is not None and floor >= self._scanned_from and self._next_offset:
            start = self._next_offset
        else:
            start = "first" if floor == EPOCH else floor.replace(microsecond=0)
            self._scanned_from = floor
            self._next_offset = None
            self._started.clear()
            self._published.clear()
        scanning_to = datetime.now(UTC)
        await scan_log(self._connection, self._names, start, self._note, raw=True)
        self._scanned_to = scanning_to

    def _note(self, entry: Entry) -> None:
        """Keep a message's claims and the attempts they claim (as their start's id),
        nothing else: read as parsed JSON, since a claim found by mistake can only stop a
        body from running, never run one."""
        self._next_offset = entry.offset + 1
        self._published.update(entry.claims)
        if entry.message_id is not None:  # before group commit, the claim was the id
            self._published.add(entry.message_id)
        for raw in entry.raw:
            if isinstance(raw, dict) and is_claim(raw):
                execution_id, attempt = raw.get("execution_id"), raw.get("attempt")
                if isinstance(execution_id, str) and type(attempt) is int:
                    self._started.add(event_id(execution_id, attempt, "started"))
