"""A log follower's silence watchdog ends once its channel is closed on purpose."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ricochet.workers.amqp.topology import Names
from ricochet.workers.log import reader
from ricochet.workers.log.reader import LogFollower


async def test_the_watchdog_of_a_channel_closed_for_good_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nobody stopped the follower (``replay --follow`` closing its connection, a test
    leaving early): its watchdog must not outlive the channel and subscribe for ever."""
    monkeypatch.setattr(reader, "IDLE_RESUBSCRIBE_S", 0.01)
    channel = SimpleNamespace(_close_called=False, _connection=SimpleNamespace(close_called=False))
    follower = LogFollower(cast(Any, channel), Names("t"), lambda entry: None)
    watchdog = asyncio.create_task(follower._resubscribe_when_silent())
    await asyncio.sleep(0.05)
    assert not watchdog.done(), "an open channel keeps its watchdog"

    channel._connection.close_called = True
    await asyncio.wait_for(watchdog, 1.0)
