"""The names and shapes of everything Ricochet uses on RabbitMQ, as typed data.

``declare_*`` functions apply them idempotently; every component declares what
it needs at start (SPEC section 4). Layout:

- ``<ns>.events`` (fanout) -> ``<ns>.events`` stream: the event log, bounded by age and size.
- ``<ns>.work`` (direct, routing key = target) -> ``<ns>.work.<queue>`` quorum queues.
- ``<ns>.delayq`` (headers) -> ``<ns>.delayq.<ms>ms`` quorum queues: one per delay
  value, so no retry waits behind a longer one; expired messages dead-letter (at
  least once) back to ``<ns>.work`` with their original routing key (the target).
- ``<ns>.dead`` (fanout) -> ``<ns>.dead`` quorum queue: what cannot be processed,
  bounded (drop-head).
- ``<ns>.triggers`` (topic, routing key = target) -> ``<ns>.triggers`` quorum queue.
- ``<ns>.heartbeats`` (quorum): heartbeats; single active consumer, so exactly one
  worker process supervises at a time and another takes over when it goes.
- ``<ns>.checkpoints``: a stream of the active supervisor's checkpoints, so the next
  one takes over from the latest instead of replaying the whole log.
- ``<ns>.dead.watch``: a second queue on ``<ns>.dead`` that the supervisor reads to
  mark executions failed when the broker dead-letters their work (delivery limit).

Nothing lives on one node only: every queue is a quorum queue or a stream, replicated
on ``settings.quorum_group_size`` / ``settings.stream_group_size`` nodes (None: the
broker's default, every node). A queue's type and arguments are fixed when it is
declared, so a changed type comes with a new name (README, "Replication").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aio_pika.exceptions import ChannelPreconditionFailed

from ricochet.workers.amqp.mismatch import mismatch
from ricochet.workers.settings import Settings

DELAY_HEADER = "ricochet-delay-ms"
"""Header the delay exchange routes on: which delay queue a retry waits in."""


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    name: str
    kind: aio_pika.ExchangeType


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    bind_to: str | None = None
    binding_key: str | None = None
    binding_arguments: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Names:
    """Every name, prefixed by the namespace so environments can share a broker."""

    namespace: str

    @property
    def events(self) -> str:
        return f"{self.namespace}.events"

    @property
    def work(self) -> str:
        return f"{self.namespace}.work"

    @property
    def delay(self) -> str:
        """Not ``<ns>.delay``: that headers exchange routes to the old classic delay queues,
        and binding quorum ones to it too would deliver every retry twice."""
        return f"{self.namespace}.delayq"

    @property
    def dead(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def triggers(self) -> str:
        return f"{self.namespace}.triggers"

    @property
    def supervisor(self) -> str:
        """The heartbeat queue (was the classic ``<ns>.supervisor``; a quorum queue needs a
        new name, since a re-declare with another type fails)."""
        return f"{self.namespace}.heartbeats"

    @property
    def checkpoints(self) -> str:
        return f"{self.namespace}.checkpoints"

    @property
    def dead_watch(self) -> str:
        return f"{self.namespace}.dead.watch"

    def work_queue(self, queue: str) -> str:
        return f"{self.namespace}.work.{queue}"

    def delay_queue(self, delay_ms: int) -> str:
        return f"{self.namespace}.delayq.{delay_ms}ms"


def exchanges(names: Names) -> tuple[ExchangeSpec, ...]:
    return (
        ExchangeSpec(names.events, aio_pika.ExchangeType.FANOUT),
        ExchangeSpec(names.work, aio_pika.ExchangeType.DIRECT),
        ExchangeSpec(names.delay, aio_pika.ExchangeType.HEADERS),
        ExchangeSpec(names.dead, aio_pika.ExchangeType.FANOUT),
        ExchangeSpec(names.triggers, aio_pika.ExchangeType.TOPIC),
    )


def event_log(names: Names, settings: Settings) -> QueueSpec:
    """The stream: durable, retention by age and size; streams refuse TTL and dead-lettering."""
    arguments = {
        "x-queue-type": "stream",
        "x-max-age": settings.stream_max_age,
        **stream_size_bound(settings.stream_max_bytes),
    }
    return QueueSpec(
        names.events,
        {**arguments, **stream_replication(settings.stream_group_size)},
        bind_to=names.events,
        binding_key="",
    )


STREAM_SEGMENTS = 20
MIN_SEGMENT_BYTES = 1024 * 1024
MAX_SEGMENT_BYTES = 500_000_000
"""RabbitMQ's own default segment size."""


def stream_size_bound(max_bytes: int) -> dict[str, Any]:
    """``x-max-length-bytes``, in segments of a twentieth of it (1 MiB to 500 MB).

    A stream drops whole segments, never the one being written, and in 3.10 judges
    retention only when a segment fills: with the broker's 500 MB segments a small
    bound would not hold, and a quiet log would keep old events past their age. In
    twentieths, the log stays within about 5 % of the bound. 0: no size bound and
    no segment argument, as streams made before the setting were declared.
    """
    if max_bytes == 0:
        return {}
    segment = min(max(max_bytes // STREAM_SEGMENTS, MIN_SEGMENT_BYTES), MAX_SEGMENT_BYTES)
    return {"x-max-length-bytes": max_bytes, "x-stream-max-segment-size-bytes": segment}


CHECKPOINT_MAX_BYTES = 256 * 1024 * 1024
CHECKPOINT_SEGMENT_BYTES = 16 * 1024 * 1024


def checkpoints(names: Names, settings: Settings | None = None) -> QueueSpec:
    """The supervisor's checkpoints: a stream bounded by size, in small segments (a stream
    drops whole segments only), so the newest ones are always kept and old ones go."""
    return QueueSpec(
        names.checkpoints,
        {
            "x-queue-type": "stream",
            "x-max-length-bytes": CHECKPOINT_MAX_BYTES,
            "x-stream-max-segment-size-bytes": CHECKPOINT_SEGMENT_BYTES,
            **stream_replication(settings.stream_group_size if settings else None),
        },
    )


def dead_letters(names: Names, settings: Settings) -> QueueSpec:
    """What could not be processed, for people to look at: bounded, keeping the newest.

    drop-head, not reject-publish: a full queue refusing new dead letters would stall
    the publishers parking them (a worker, the trigger intake) and hold the broker's
    own dead letters in the work queues. The supervisor has already recorded each one
    from ``<ns>.dead.watch``, so the oldest copies dropped here lose no execution.
    """
    bound = settings.dead_letter_max_bytes
    size = {"x-max-length-bytes": bound, "x-overflow": "drop-head"} if bound else {}
    arguments = {
        "x-queue-type": "quorum",
        **size,
        **quorum_replication(settings.quorum_group_size),
    }
    return QueueSpec(names.dead, arguments, bind_to=names.dead, binding_key="")


def triggers(names: Names, settings: Settings) -> QueueSpec:
    """One intake at a time (single active consumer): idempotency keys are decided in order."""
    arguments = {**_quorum(names, settings), "x-single-active-consumer": True}
    return QueueSpec(names.triggers, arguments, bind_to=names.triggers, binding_key="#")


HEARTBEAT_BACKLOG = 10_000


def supervisor(names: Names) -> QueueSpec:
    """Heartbeats for the one active supervisor; bounded, since they are worthless when old.

    A quorum queue, so workers can start and send heartbeats while any quorum of nodes is
    up. Always on the broker's default group (every node): it is tiny, and the supervisor
    re-declares it from the namespace alone, so it must not depend on settings.
    """
    return QueueSpec(
        names.supervisor,
        {
            "x-queue-type": "quorum",
            "x-single-active-consumer": True,
            "x-message-ttl": 60_000,
            "x-max-length": HEARTBEAT_BACKLOG,
            "x-overflow": "drop-head",
        },
    )


def dead_watch(names: Names) -> QueueSpec:
    """What the broker dead-letters, for the supervisor to record; the dead queue keeps a copy.

    On the broker's default group (every node), like the heartbeat queue, for the same reason.
    """
    return QueueSpec(
        names.dead_watch,
        {"x-queue-type": "quorum", "x-single-active-consumer": True},
        bind_to=names.dead,
        binding_key="",
    )


def work_queue(names: Names, settings: Settings, queue: str) -> QueueSpec:
    """A quorum work queue; bindings per target are made by the worker that serves them."""
    return QueueSpec(names.work_queue(queue), _quorum(names, settings))


def _quorum(names: Names, settings: Settings) -> dict[str, Any]:
    """Quorum with a delivery limit, so a poison message ends in the dead-letter queue.

    At-least-once dead-lettering needs ``reject-publish`` overflow, or it quietly
    falls back to at-most-once (RABBITMQ.md).
    """
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": names.dead,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        **quorum_replication(settings.quorum_group_size),
    }


def quorum_replication(group_size: int | None) -> dict[str, Any]:
    """How many nodes a new quorum queue gets; absent = every node (the broker's default).

    Checked on every re-declare: a deployment keeps the value its queues were created
    with, and changes membership with ``rabbitmq-queues grow/shrink`` instead.
    """
    return {} if group_size is None else {"x-quorum-initial-group-size": group_size}


def stream_replication(group_size: int | None) -> dict[str, Any]:
    """How many nodes a new stream gets; absent = every node. Checked like the above."""
    return {} if group_size is None else {"x-initial-cluster-size": group_size}


def delay_queue(names: Names, delay_ms: int, group_size: int | None = None) -> QueueSpec:
    """A quorum queue with no consumers where retries due ``delay_ms`` after failure wait.

    Dead-lettering out of a classic queue is at-most-once: retries whose TTL ran out
    while a node stopped were lost. Here it is at least once (which needs
    ``reject-publish``; with no length limit nothing is rejected). No delivery limit:
    nothing consumes it. It expires when unused for well over its TTL, so it is surely
    empty by then (a queue removed by ``x-expires`` drops what it holds; a re-declare
    resets the clock, publishing does not).
    """
    return QueueSpec(
        names.delay_queue(delay_ms),
        {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": names.work,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
            "x-expires": delay_expiry_ms(delay_ms),
            **quorum_replication(group_size),
        },
        bind_to=names.delay,
        binding_key="",
        binding_arguments={"x-match": "all", DELAY_HEADER: delay_ms},
    )


DELAY_REDECLARE_S = 300.0
"""Publishers re-declare a delay queue at least this often, which resets its expiry."""


def delay_expiry_ms(delay_ms: int) -> int:
    """Twice the TTL plus twice the re-declare period: no message can outlive its queue."""
    return 2 * delay_ms + int(2 * DELAY_REDECLARE_S * 1000)


async def declare_exchanges(channel: AbstractChannel, names: Names) -> dict[str, AbstractExchange]:
    declared = {}
    for spec in exchanges(names):
        declared[spec.name] = await channel.declare_exchange(spec.name, spec.kind, durable=True)
    return declared


async def declare_queue(channel: AbstractChannel, spec: QueueSpec) -> AbstractQueue:
    """Declare (and bind) ``spec``; one that exists with other arguments raises
    ``TopologyMismatch`` saying what differs and what to do (the channel is closed)."""
    try:
        queue = await channel.declare_queue(spec.name, durable=True, arguments=spec.arguments)
    except ChannelPreconditionFailed as err:
        raise mismatch(spec.name, str(err)) from None
    if spec.bind_to is not None:
        await queue.bind(
            spec.bind_to, routing_key=spec.binding_key, arguments=spec.binding_arguments
        )
    return queue


async def declare_core(channel: AbstractChannel, settings: Settings) -> Names:
    """What every component needs: exchanges, the event log, dead letters, triggers."""
    names = Names(settings.namespace)
    await declare_exchanges(channel, names)
    for spec in core_queues(names, settings):
        await declare_queue(channel, spec)
    return names


def core_queues(names: Names, settings: Settings) -> tuple[QueueSpec, ...]:
    return (
        event_log(names, settings),
        dead_letters(names, settings),
        dead_watch(names),
        triggers(names, settings),
        supervisor(names),
        checkpoints(names, settings),
    )


def describe(names: Names, settings: Settings, queues: tuple[str, ...] = ()) -> list[str]:
    """Human lines for ``ricochet topology``."""
    lines = [f"exchange {spec.name} ({spec.kind.value})" for spec in exchanges(names)]
    specs = [*core_queues(names, settings), *(work_queue(names, settings, q) for q in queues)]
    for spec in specs:
        kind = spec.arguments.get("x-queue-type", "classic")
        bound = f" <- {spec.bind_to} [{spec.binding_key}]" if spec.bind_to else ""
        lines.append(f"queue {spec.name} ({kind}){bound} {spec.arguments}")
    lines.append(
        f"queue {names.delay_queue(0).replace('0ms', '<ms>ms')} (quorum, one per delay value)"
        f" <- {names.delay} [{DELAY_HEADER}=<ms>] -> dead-letters to {names.work}"
    )
    return lines
