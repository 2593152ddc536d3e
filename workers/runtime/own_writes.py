"""Until the log shows what this worker recorded: its starts and outcomes.

A confirm is not proof that the log has a message (RabbitMQ 3.10 can confirm a
stream write and lose it when the stream's leader node stops; see
``workers.log.witness``). So a worker waits to see its start on the log before
running the body, and its outcome after: what the log lost is published again
(a start under the same claim, so it can only win if no other claim came first),
and the attempt stays in the heartbeats' list until its outcome is seen, so the
supervisor never takes it for lost meanwhile.

A retry is published as soon as the events that schedule it are confirmed, not
once they are seen: waiting added about 10 ms to the lateness of a burst of
retries (``tests.bench.bench_core``), and the case it would order better is
rare twice over (the log loses the schedule, and the retry falls due before the
copy is on the log; then the copy comes after the next attempt's start, and the
fold keeps it out as a straggler: that attempt shows no outcome).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from ricochet.contracts import Event
from ricochet.engine.vigil import AttemptKey
from ricochet.workers.log.recorder import EventRecorder
from ricochet.workers.log.witness import Sighting, Verdict, Witness
from ricochet.workers.logs import get_logger
from ricochet.workers.runtime.heartbeat import RunningAttempts

log = get_logger(__name__)

QUIET_REPUBLISH_S = 5.0
"""A start or outcome unseen on the log this long, when nothing this worker sent since
could show whether it is there, is published again (``workers.log.witness``)."""
OUTCOME_PATIENCE_S = 300.0
"""How long a worker waits to see an outcome on the log, vouching for its attempt."""
MAX_REPUBLISHES = 5
"""Copies of one start or outcome at most, however often the log loses them."""


def attempt_of(execution_id: str, attempt: int) -> dict[str, object]:
    """The fields that say which attempt a log line is about."""
    return {"execution_id": execution_id, "attempt": attempt}


@dataclass(slots=True)
class OwnWrites:
    """Follows up what this worker recorded until the log shows it; see the module docstring."""

    recorder: EventRecorder
    witness: Witness
    running: RunningAttempts
    finishing: set[asyncio.Task[None]] = field(default_factory=set)
    """Outcomes recorded and not yet seen (their attempts still vouched for)."""

    async def until_seen(
        self,
        about: Mapping[str, object],
        events: tuple[Event, ...],
        sighting: Sighting | None,
        patience_s: float,
        claim: str | None = None,
    ) -> None:
        """Wait until the log shows ``events`` (``sighting``'s message), publishing them
        again while it proves them lost; give up after ``patience_s`` per copy."""
        for copies in range(MAX_REPUBLISHES + 1):
            if sighting is None:
                return
            verdict = await self.witness.verdict(sighting, QUIET_REPUBLISH_S, patience_s)
            said = {**about, "events": [event.type for event in events], "verdict": verdict.value}
            if verdict in (Verdict.SEEN, Verdict.UNKNOWN) or copies == MAX_REPUBLISHES:
                if verdict is not Verdict.SEEN:
                    log.error("events.unseen", **said)
                return
            log.warning("events.republished", **said)
            if claim is None:
                sighting = await self.recorder.record(events)
            else:
                sighting = await self.recorder.record_claim_again(events, claim)

    async def then(
        self, key: AttemptKey, outcome: tuple[Event, ...], sighting: Sighting | None
    ) -> None:
        """After an outcome is confirmed: vouch for the attempt until the log shows the
        outcome (published again if the log lost it). In the background, so the
        attempt's slot is free for the next one meanwhile."""
        if sighting is None:  # no witness: the confirm is all there is to go by
            return
        self.running.add(key)  # counted: still held after the attempt's own hold ends
        task = asyncio.create_task(self._vouch_until_seen(key, outcome, sighting))
        self.finishing.add(task)
        task.add_done_callback(self.finishing.discard)

    async def _vouch_until_seen(
        self, key: AttemptKey, outcome: tuple[Event, ...], sighting: Sighting
    ) -> None:
        try:
            await self.until_seen(attempt_of(*key), outcome, sighting, OUTCOME_PATIENCE_S)
        finally:
            self.running.discard(key)

    async def drain(self, timeout_s: float) -> None:
        """On stop: outcomes not yet seen get ``timeout_s`` to be seen; their retries are
        published either way."""
        if self.finishing:
            await asyncio.wait(set(self.finishing), timeout=timeout_s)
        for task in set(self.finishing):
            task.cancel()
        if self.finishing:
            await asyncio.wait(set(self.finishing), timeout=timeout_s)
