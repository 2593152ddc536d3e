"""``until_topology``: long-running processes wait for a missing topology within their
start-up wait, then give up with ``TopologyMissing`` (one line naming the fix)."""

from __future__ import annotations

import pytest

from ricochet.errors import TopologyMissing
from ricochet.workers.amqp.declaring import until_topology


def missing() -> TopologyMissing:
    return TopologyMissing("queue", "shop.events", "prod")


def test_the_error_names_the_object_the_vhost_and_the_fix() -> None:
    assert str(missing()) == (
        "queue 'shop.events' does not exist in vhost 'prod': run `ricochet topology` first"
    )
    assert isinstance(missing(), LookupError)


async def test_it_tries_again_until_the_topology_is_there() -> None:
    tries = []

    async def attempt() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise missing()
        return "running"

    assert await until_topology(attempt, wait_s=30, role="worker") == "running"
    assert len(tries) == 3


async def test_with_no_wait_it_gives_up_at_once() -> None:
    tries = []

    async def attempt() -> None:
        tries.append(1)
        raise missing()

    with pytest.raises(TopologyMissing, match="run `ricochet topology` first"):
        await until_topology(attempt, wait_s=0, role="projector")
    assert len(tries) == 1
