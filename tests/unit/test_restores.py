"""A channel error raised by a reconnect's restore is passing for whoever waited on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractExchange

from ricochet.errors import RestoreFailed
from ricochet.workers.amqp.broker import TRANSIENT, publish
from ricochet.workers.amqp.restores import as_passing, raised_by_restore

AIO_PIKA = "/site-packages/aio_pika/robust_connection.py"
PRECONDITION = "PRECONDITION_FAILED - queue 't.events' does not have a replica on the local node"


def raiser(name: str, filename: str) -> Callable[[], None]:
    """A function called ``name`` as if defined in ``filename`` that raises a channel
    error, as aio-pika's restore does when a consumer cannot be restored."""
    source = f"def {name}():\n    raise error\n"
    space: dict[str, Any] = {"error": aiormq.exceptions.ChannelPreconditionFailed(PRECONDITION)}
    exec(compile(source, filename, "exec"), space)
    function: Callable[[], None] = space[name]
    return function


def caught(function: Callable[[], None]) -> aiormq.exceptions.AMQPChannelError:
    with pytest.raises(aiormq.exceptions.AMQPChannelError) as info:
        function()
    return info.value


def test_an_error_from_aio_pikas_restore_is_a_passing_one() -> None:
    err = caught(raiser("restore", "/site-packages/aio_pika/robust_queue.py"))
    assert raised_by_restore(err)
    passing = as_passing(err)
    assert isinstance(passing, RestoreFailed)
    assert isinstance(passing, TRANSIENT), "retried like a lost connection"
    assert "does not have a replica" in str(passing)


@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("basic_publish", "/site-packages/aiormq/channel.py"),
        ("restore", "/my/app/restore.py"),
    ],
)
def test_any_other_channel_error_stays_what_it_is(name: str, filename: str) -> None:
    err = caught(raiser(name, filename))
    assert not raised_by_restore(err)
    assert as_passing(err) is err


class RestoringExchange:
    """An exchange whose publish waits on a reconnect whose restore fails."""

    def __init__(self, fail: Callable[[], None]) -> None:
        self._fail = fail

    async def publish(self, *args: object, **kwargs: object) -> None:
        self._fail()


async def test_a_publish_that_met_a_failed_restore_raises_a_passing_error() -> None:
    exchange = cast(AbstractExchange, RestoringExchange(raiser("_on_connected", AIO_PIKA)))
    with pytest.raises(RestoreFailed) as info:
        await publish(exchange, aio_pika.Message(b"[]"), routing_key="")
    assert isinstance(info.value.__cause__, aiormq.exceptions.ChannelPreconditionFailed)
