"""Seeing one's own writes on the log, because a confirm alone did not prove them there.

RabbitMQ 3.10 can confirm a stream write and then lose it when the stream's
leader node stops (rabbitmq-server#9457, open): the publisher heard "confirmed",
no replica has the message. A lost start leaves its attempt unrun; a lost
outcome makes a live attempt look lost. So a process that follows the log
(a worker's claim book) watches for the messages it published itself, and a
caller whose message was lost publishes its events again: the fold ignores a
copy of an event it has (events carry fixed ids), and a start claims under the
same claim, so a copy can never win against another worker's start.

A message counts as lost by proof, not by a clock, so a follower that lags
under load never causes copies: messages from one publisher reach a stream in
the order they were published, so once the follower has seen a message this
process sent *after* an earlier one was confirmed, and not that earlier one, the
earlier one is not on the log and never will be. When nothing was sent since
(an idle process), there is no later message to prove it: after ``quiet_s`` the
caller publishes again, and the copy is itself the proof for the original.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum


class Verdict(Enum):
    """What became of a confirmed message, as far as the log shows."""

    SEEN = "seen"
    """The follower read it: it is on the log."""
    LOST = "lost"
    """A message sent after its confirm is on the log and it is not: publish again."""
    QUIET = "quiet"
    """Unseen for a while and nothing sent since that could prove it: publish again."""
    UNKNOWN = "unknown"
    """Unseen until the caller's patience ran out (no follower, or one that stopped)."""


@dataclass(slots=True, eq=False)
class Sighting:
    """One message this process published, from its send until the log shows it."""

    message_id: str
    sent_after: int
    """How many messages had been confirmed when this one was sent."""
    confirmed_at: int = 0
    """Its place among confirms (1-based); 0 until confirmed."""
    confirmed_s: float = 0.0
    """When its confirm came (monotonic seconds)."""
    verdict: asyncio.Future[Verdict] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def settle(self, verdict: Verdict) -> None:
        if not self.verdict.done():
            self.verdict.set_result(verdict)


MAX_AWAITING = 100_000
"""Confirmed messages watched at once at most: beyond, the oldest is given up
(``UNKNOWN``), so a follower that stopped for good cannot grow memory for ever."""


class Witness:
    """The messages this process sent, until its log follower shows each or proves it lost.

    A publisher calls ``sent`` before each publish and ``confirmed`` or ``unsent``
    after it; the follower calls ``seen`` for every message it reads. Until
    ``active`` (the follower is reading), nothing is watched and ``sent`` returns None.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.active = False
        self._monotonic = monotonic
        self._sent: dict[str, Sighting] = {}
        self._awaiting: OrderedDict[str, Sighting] = OrderedDict()
        """Confirmed and not yet seen, in the order of their confirms."""
        self._confirms = 0
        self._confirms_at_last_send = 0
        self._unseen_since: float | None = None
        self.lost = 0
        """Messages proved lost so far (for logs and tests)."""

    def sent(self, message_id: str) -> Sighting | None:
        """``message_id`` is about to be published; watch it if the follower reads."""
        self._confirms_at_last_send = self._confirms
        if not self.active:
            return None
        sighting = Sighting(message_id, self._confirms)
        self._sent[message_id] = sighting
        return sighting

    def unsent(self, sighting: Sighting | None) -> None:
        """Its publish failed: the publisher sends the events again in another message."""
        if sighting is not None:
            self._sent.pop(sighting.message_id, None)
            sighting.settle(Verdict.UNKNOWN)

    def confirmed(self, sighting: Sighting | None) -> None:
        self._confirms += 1
        if sighting is None:
            return
        sighting.confirmed_at = self._confirms
        sighting.confirmed_s = self._monotonic()
        if self._unseen_since is None:
            self._unseen_since = sighting.confirmed_s
        if not sighting.verdict.done():
            self._awaiting[sighting.message_id] = sighting
            if len(self._awaiting) > MAX_AWAITING:
                self._give_up(self._awaiting.popitem(last=False)[1])

    def seen(self, message_id: str | None) -> None:
        """The follower read ``message_id`` (anyone's: most are not ours)."""
        sighting = self._sent.pop(message_id, None) if message_id is not None else None
        if sighting is None:
            return
        self._awaiting.pop(sighting.message_id, None)
        sighting.settle(Verdict.SEEN)
        self._unseen_since = None
        while self._awaiting:
            oldest = next(iter(self._awaiting.values()))
            if oldest.confirmed_at > sighting.sent_after:
                break
            del self._awaiting[oldest.message_id]
            self._sent.pop(oldest.message_id, None)
            self.lost += 1
            oldest.settle(Verdict.LOST)
        if self._awaiting:
            self._unseen_since = next(iter(self._awaiting.values())).confirmed_s

    def unseen_for(self) -> float:
        """How long a message of ours confirmed since the last one seen has gone unseen,
        copies included (0 if none): long, and the log this process reads is behind
        the one it writes to."""
        if self._unseen_since is None:
            return 0.0
        return self._monotonic() - self._unseen_since

    def stop(self) -> None:
        """The follower stopped: nothing more will be seen."""
        self.active = False
        self._unseen_since = None
        for sighting in list(self._sent.values()):
            self._give_up(sighting)

    async def verdict(self, sighting: Sighting, quiet_s: float, patience_s: float) -> Verdict:
        """Wait for ``sighting``'s verdict: ``SEEN`` or ``LOST`` as soon as the log
        shows it; ``QUIET`` after ``quiet_s`` if nothing was sent since its confirm;
        ``UNKNOWN`` once ``patience_s`` has passed."""
        deadline = self._monotonic() + patience_s
        while True:
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                return Verdict.UNKNOWN
            try:
                return await asyncio.wait_for(
                    asyncio.shield(sighting.verdict), min(quiet_s, remaining)
                )
            except TimeoutError:
                if self._quiet_since(sighting):
                    self._give_up(sighting, Verdict.QUIET)
                    return Verdict.QUIET

    def _quiet_since(self, sighting: Sighting) -> bool:
        """Confirmed, and nothing sent after: no later message can show it lost."""
        return 0 < sighting.confirmed_at and self._confirms_at_last_send < sighting.confirmed_at

    def _give_up(self, sighting: Sighting, verdict: Verdict = Verdict.UNKNOWN) -> None:
        self._sent.pop(sighting.message_id, None)
        self._awaiting.pop(sighting.message_id, None)
        sighting.settle(verdict)
