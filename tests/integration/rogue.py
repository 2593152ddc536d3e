"""A misconfigured RabbitMQ user for the trusted-events tests: allowed to write to the
namespace's events exchange (and the default exchange, so to the checkpoints stream),
nothing else. Created with a random name for one test and deleted whatever happens."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import pytest

from ricochet.contracts import ExecutionSucceeded, encode_batch
from ricochet.contracts.events import event_id
from ricochet.workers.amqp.topology import Names
from ricochet.workers.settings import Settings
from tests.broker import ctl_command, rabbitmqctl


@dataclass(frozen=True, slots=True)
class Rogue:
    """A user who may write where it should not, and publishes what it likes."""

    name: str
    url: str
    names: Names

    async def publish(
        self, body: bytes, *, checkpoint: bool = False, user_id: str | None = None
    ) -> None:
        """``body`` on the event log (or the checkpoints stream), confirmed; ``user_id``
        as given, none by default (then the broker fills in nothing)."""
        connection = await aio_pika.connect(self.url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            if checkpoint:
                exchange, key = channel.default_exchange, self.names.checkpoints
            else:
                exchange = await channel.get_exchange(self.names.events, ensure=False)
                key = ""
            message = aio_pika.Message(
                body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                user_id=user_id,
            )
            await exchange.publish(message, routing_key=key, mandatory=True)
        finally:
            await connection.close()

    async def forge_success(self, execution_id: str, result: str, user_id: str | None) -> None:
        """An ``execution_succeeded`` for a running execution, as in issue 13."""
        forged = ExecutionSucceeded(
            event_id=event_id(execution_id, 1, "execution_succeeded"),
            execution_id=execution_id,
            attempt=1,
            at=datetime.now(UTC),
            result=result,
        )
        await self.publish(encode_batch([forged]), user_id=user_id)


def _url_as(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password)}@{host}"))


@pytest.fixture
def rogue(settings: Settings) -> Iterator[Rogue]:
    if shutil.which(ctl_command()[0]) is None:
        pytest.fail("the trusted-events tests create a RabbitMQ user: rabbitmqctl is needed")
    name, password = f"ricochet-rogue-{secrets.token_hex(5)}", secrets.token_hex(16)
    vhost, names = settings.amqp_addresses[0].vhost, Names(settings.namespace)
    ns = names.namespace.replace(".", r"\.")
    rabbitmqctl("add_user", name, password)
    try:
        rabbitmqctl(
            "set_permissions", "-p", vhost, name, "^$", rf"^({ns}\.events|amq\.default)$", "^$"
        )
        yield Rogue(name, _url_as(settings.amqp_url, name, password), names)
    finally:
        rabbitmqctl("delete_user", name)
