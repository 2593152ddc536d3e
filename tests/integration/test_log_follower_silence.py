"""A follower of the log whose consumer goes silent subscribes again and reads on.

RabbitMQ 3.10 can leave a stream consumer silent for good when its node's replica
restarts (a leader moved elsewhere), without a cancel: the cluster fault test saw
every long-lived reader of a worker stall while fresh ones read on. Here the same
silence is made by cancelling the follower's consumer behind its back.
"""

from __future__ import annotations

import aio_pika
import pytest

from ricochet import Client
from ricochet.workers.amqp.topology import Names
from ricochet.workers.log import reader
from ricochet.workers.log.reader import Entry, LogFollower, stream_channel
from ricochet.workers.settings import Settings
from tests.integration.harness import bind_target, eventually


async def test_a_silent_follower_subscribes_again_and_reads_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "IDLE_RESUBSCRIBE_S", 0.5)
    seen: list[str] = []

    def on_entry(entry: Entry) -> None:
        seen.extend(event.execution_id for event in entry.events)

    async with Client(settings) as client:
        await bind_target(settings, "t.ok")  # no worker: the requests are what is read
        connection = await aio_pika.connect_robust(settings.amqp_url)
        async with connection:
            follower = LogFollower(
                await stream_channel(connection), Names(settings.namespace), on_entry
            )
            await follower.start("first")
            first = await client.submit("t.ok", [1])
            await eventually(lambda: first.id in seen)
            # Given a consumer gone silent (cancelled where the follower cannot tell)
            assert follower._queue is not None
            assert follower._tag is not None
            await follower._queue.cancel(follower._tag)

            # When more is written
            second = await client.submit("t.ok", [2])

            # Then the follower reads it, once, after subscribing again
            await eventually(lambda: second.id in seen, timeout=10)
            await follower.stop()

    assert 1 == seen.count(second.id)
