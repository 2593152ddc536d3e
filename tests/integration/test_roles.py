"""Least privilege, for real: each role's RabbitMQ user, made from ``ricochet roles
definitions`` (so the password hashes are proven by logging in), does its job with
exactly its permissions and is refused the rest.

Users are named ``<namespace>-<role>`` after the test's random namespace, live in the
run's vhost, and are deleted when the test ends, whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import aiormq
import orjson
import pytest
from aio_pika.abc import AbstractChannel

from ricochet.contracts import AttemptStarted, ReplyV1, RetryScheduled, decode
from ricochet.errors import TopologyMissing
from ricochet.workers.amqp.permissions import (
    REPLY_QUEUE,
    ROLES,
    password_variable,
    role_permissions,
)
from ricochet.workers.amqp.topology import Names, event_log
from ricochet.workers.client.client import Client
from ricochet.workers.client.dispatch import execution_id_for
from ricochet.workers.log.history import fold_log
from ricochet.workers.read.projector import Projector
from ricochet.workers.runtime.worker import Worker
from ricochet.workers.settings import Settings
from tests import broker
from tests.integration import tasks
from tests.integration.access import (
    apply_options,
    as_user,
    consuming,
    declaring,
    delete_users,
    deleting,
    import_definitions,
    publishing,
    refused,
    ricochet,
)
from tests.integration.harness import cli_env, eventually, log_events, running_worker


@pytest.fixture
def roles(settings: Settings, tmp_path: Path) -> Iterator[dict[str, Settings]]:
    """Each role's settings, logged in as its own user: the users made by importing
    ``ricochet roles definitions`` with rabbitmqctl, and deleted after the test."""
    if not broker.can_admin(settings.amqp_url):
        pytest.fail("these tests create RabbitMQ users: they need a local rabbitmqctl")
    passwords = {role: secrets.token_urlsafe(18) for role in ROLES}
    path = tmp_path / "passwords.env"
    path.write_text("".join(f"{password_variable(r)}={p}\n" for r, p in passwords.items()))
    env = {**os.environ, "RICOCHET_AMQP_URL": settings.amqp_url}
    made = subprocess.run(
        [sys.executable, "-m", "ricochet", "roles", "definitions", "--passwords", str(path)],
        env={**env, "RICOCHET_NAMESPACE": settings.namespace},
        check=True,
        capture_output=True,
        timeout=60,
    )
    users = [user["name"] for user in orjson.loads(made.stdout)["users"]]
    try:
        import_definitions(made.stdout)
        yield {
            role: settings.model_copy(
                update={
                    "amqp_url": as_user(
                        settings.amqp_url, f"{settings.namespace}-{role}", passwords[role]
                    )
                }
            )
            for role in ROLES
        }
    finally:
        delete_users(users)


async def deploy(roles: dict[str, Settings]) -> None:
    """What an admin does once: ``ricochet topology`` as the topology user."""
    code, out, err = await ricochet(roles["topology"], "topology", "--queue", "default")
    assert code == 0, err
    assert f"{roles['topology'].namespace}.events" in out


def test_the_imported_users_have_exactly_the_table(roles: dict[str, Settings]) -> None:
    """``rabbitmqctl`` reports, per user, the three regexes of its role and nothing more."""
    vhost = broker.vhost_of(roles["reader"].amqp_url)
    namespace = roles["reader"].namespace
    listed = subprocess.run(
        broker.ctl_argv("list_permissions", "-p", vhost, "--no-table-headers"),
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    found = {
        user: (configure, write, read)
        for user, configure, write, read in (line.split("\t") for line in listed.splitlines())
        if user.startswith(f"{namespace}-")
    }
    table = role_permissions(namespace)
    assert found == {
        f"{namespace}-{role}": (table[role].configure, table[role].write, table[role].read)
        for role in ROLES
    }


async def test_worker_and_client_run_a_retried_task_and_a_reader_reads_it(
    roles: dict[str, Settings],
) -> None:
    """Topology by its user; a worker user runs a task with two delayed retries (delay
    queues declared on the fly, dead-lettered back by the broker) and a client user's
    trigger; a reader user folds, replays, shows its status and projects it."""
    await deploy(roles)
    async with (
        running_worker(roles["worker"], tasks.ALL),
        Client(roles["client"]) as client,
    ):
        handle = await client.submit("t.backoff")
        assert await handle.result(timeout=30) == "done"
        triggered = await client.submit("t.ok", [3], idempotency_key=uuid.uuid4().hex)
        assert await triggered.result(timeout=30) == {"doubled": 6}

    queues = broker.queues_of_namespace(client.settings.amqp_url, client.settings.namespace)
    names = Names(client.settings.namespace)
    assert {names.delay_queue(500), names.delay_queue(1000)} <= set(queues)  # the worker's own
    events = await log_events(roles["reader"], handle.id)
    assert [e.attempt for e in events if isinstance(e, AttemptStarted)] == [1, 2, 3]
    assert [e.delay_s for e in events if isinstance(e, RetryScheduled)] == [0.5, 1.0]

    reader = roles["reader"]
    state = (await fold_log(reader, handle.id)).projection.get(handle.id)
    assert state is not None
    assert (state.status.value, state.next_attempt) == ("succeeded", 3)
    code, out, err = await ricochet(reader, "replay", "--execution", handle.id)
    assert code == 0, err
    assert out.count("retry_scheduled") == 2
    code, out, err = await ricochet(reader, "status", handle.id)
    assert code == 0, err
    assert "succeeded" in out

    projector = Projector(reader)
    await projector.start()
    try:
        await eventually(lambda: projector.projection.get(triggered.id) is not None)
    finally:
        await projector.stop()


async def test_a_reader_cannot_write_declare_or_consume_anything_else(
    roles: dict[str, Settings],
) -> None:
    await deploy(roles)
    reader, names = roles["reader"], Names(roles["reader"].namespace)
    for exchange in (names.events, names.work, names.triggers, names.delay, names.dead):
        assert await refused(reader, publishing(exchange)), exchange
    assert await refused(reader, declaring(names.events, event_log(names, reader).arguments))
    assert await refused(reader, declaring(f"{names.namespace}.mine"))
    assert await refused(reader, deleting(names.events))
    for queue in (names.triggers, names.work_queue("default"), names.checkpoints, names.dead):
        assert await refused(reader, consuming(queue)), queue
    assert not await refused(reader, consuming(names.events))


async def test_a_trigger_publisher_starts_executions_and_writes_nothing_else(
    roles: dict[str, Settings],
) -> None:
    await deploy(roles)
    publisher, names = roles["trigger-publisher"], Names(roles["worker"].namespace)
    key = uuid.uuid4().hex
    body = orjson.dumps({"target": "t.ok", "args": [5], "idempotency_key": key})
    async with (
        running_worker(roles["worker"], tasks.ALL),
        Client(roles["client"]) as client,
    ):
        handle = client.follow(execution_id_for(key))

        async def send(channel: AbstractChannel) -> None:
            exchange = await channel.get_exchange(names.triggers, ensure=False)
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await exchange.publish(message, routing_key="t.ok", mandatory=True)

        assert not await refused(publisher, send)
        assert await handle.result(timeout=30) == {"doubled": 10}
    for exchange in (names.events, names.work, names.delay, names.dead):
        assert await refused(publisher, publishing(exchange)), exchange
    assert await refused(publisher, consuming(names.events))
    assert await refused(publisher, declaring(f"{names.namespace}.replies"))


async def test_worker_and_client_cannot_touch_what_they_do_not_need(
    roles: dict[str, Settings],
) -> None:
    """Neither can delete or re-declare the event log; the client consumes no work or
    triggers; the worker publishes no triggers and declares no exchange."""
    await deploy(roles)
    worker, client, names = roles["worker"], roles["client"], Names(roles["worker"].namespace)
    for user in (worker, client):
        for queue in (names.events, names.checkpoints, names.triggers, names.dead):
            assert await refused(user, deleting(queue)), queue
        assert await refused(user, declaring(names.events, event_log(names, user).arguments))
    for queue in (names.triggers, names.work_queue("default"), names.supervisor, names.dead):
        assert await refused(client, consuming(queue)), queue
    for exchange in (names.delay, names.dead):
        assert await refused(client, publishing(exchange)), exchange
    assert await refused(worker, publishing(names.triggers))

    async def declare_exchange(channel: AbstractChannel) -> None:
        await channel.declare_exchange(names.events, aio_pika.ExchangeType.FANOUT, durable=True)

    assert await refused(worker, declare_exchange)


async def test_without_a_topology_readers_say_run_topology_and_declare_nothing(
    roles: dict[str, Settings], settings: Settings, tmp_path: Path
) -> None:
    """No ``ricochet topology`` yet: the reader's commands (and guest's, who could declare)
    end with one line naming the fix, no traceback; the worker and the client (who may
    not declare the core) refuse to start; and nothing of the namespace was created."""
    for number, user in enumerate((roles["reader"], settings)):
        store = str(tmp_path / f"projection-{number}.sqlite3")
        for args in (
            ("replay",),
            ("status", "0" * 32),
            ("executions",),
            ("projector", "--store", store),
        ):
            code, out, err = await ricochet(user, *args)
            assert code == 2, (args, out, err)
            assert "run `ricochet topology` first" in err, (args, err)
            assert "Traceback" not in err, (args, err)
            assert f"{user.namespace}.events" in err
    with pytest.raises(TopologyMissing, match="ricochet topology"):
        await fold_log(roles["reader"])
    at_once = {"startup_wait_s": 0.0}
    with pytest.raises(TopologyMissing, match="ricochet topology"):
        await Projector(roles["reader"].model_copy(update=at_once)).start()
    with pytest.raises(TopologyMissing, match="ricochet topology"):
        await Worker(roles["worker"].model_copy(update=at_once), tasks.ALL).start()
    with pytest.raises(TopologyMissing, match="ricochet topology"):
        await Client(roles["client"]).__aenter__()
    assert [] == broker.queues_of_namespace(settings.amqp_url, settings.namespace)


async def test_a_trigger_publisher_with_a_reply_queue_gets_its_reply(
    roles: dict[str, Settings],
) -> None:
    """What README says replies need: configure and read on server-named queues
    (``REPLY_QUEUE``) beside write on the triggers exchange, and nothing more."""
    await deploy(roles)
    publisher, names = roles["trigger-publisher"], Names(roles["worker"].namespace)
    user, vhost = f"{names.namespace}-trigger-publisher", broker.vhost_of(publisher.amqp_url)
    write = role_permissions(names.namespace)["trigger-publisher"].write
    broker.rabbitmqctl(
        "set_permissions", "-p", vhost, user, REPLY_QUEUE.configure, write, REPLY_QUEUE.read
    )
    key = uuid.uuid4().hex
    connection = await aio_pika.connect(publisher.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=10)
        replies = await channel.declare_queue("", exclusive=True)  # amq.gen-…, server-named
        exchange = await channel.get_exchange(names.triggers, ensure=False)
        body = orjson.dumps({"target": "t.ok", "args": [2], "idempotency_key": key})
        message = aio_pika.Message(body, reply_to=replies.name, correlation_id="c-1")
        async with running_worker(roles["worker"], tasks.ALL):
            await exchange.publish(message, routing_key="t.ok", mandatory=True)
            reply = await eventually(lambda: replies.get(no_ack=True, fail=False), timeout=30)
        assert reply.correlation_id == "c-1"
        assert decode(ReplyV1, reply.body).result == {"doubled": 4}
    finally:
        await connection.close()
    assert await refused(publisher, declaring(f"{names.namespace}.replies"))


async def test_a_projector_and_a_worker_wait_for_the_topology(
    roles: dict[str, Settings],
) -> None:
    """Started before ``ricochet topology`` (compose and Kubernetes start everything at
    once), they wait for it within ``startup_wait_s``, then run."""
    waiting = {"startup_wait_s": 60.0}
    projector = Projector(roles["reader"].model_copy(update=waiting))
    worker = Worker(roles["worker"].model_copy(update=waiting), tasks.ALL)
    starting = asyncio.gather(projector.start(), worker.start())
    await asyncio.sleep(1.5)
    assert not starting.done()
    await deploy(roles)
    await asyncio.wait_for(starting, 60)
    try:
        async with Client(roles["client"]) as client:
            handle = await client.submit("t.ok", [1])
            assert await handle.result(timeout=30) == {"doubled": 2}
        await eventually(lambda: projector.projection.get(handle.id) is not None)
    finally:
        await worker.stop(grace_s=5.0)
        await projector.stop()


async def test_roles_apply_updates_a_password_through_rabbitmqctl(
    roles: dict[str, Settings], tmp_path: Path
) -> None:
    """``roles apply`` imports the definitions: the new password logs in, the old one not."""
    reader = roles["reader"]
    path = tmp_path / "new.env"
    path.write_text("RICOCHET_PASSWORD_READER='a new one'\n")
    apply = ("roles", "apply", "--passwords", str(path), *apply_options())
    code, out, err = await ricochet(reader, *apply)
    assert code == 0, err
    assert out.strip() == (
        f"applied: {reader.namespace}-reader on vhost {broker.vhost_of(reader.amqp_url)!r}"
    )
    user = f"{reader.namespace}-reader"
    renewed = as_user(reader.amqp_url, user, "a new one")
    await (await aio_pika.connect(renewed)).close()
    with pytest.raises(aiormq.exceptions.ProbableAuthenticationError):
        await aio_pika.connect(reader.amqp_url)


APPLY_WITHIN_S = 30


async def test_roles_apply_creates_every_role_user_within_seconds(
    settings: Settings, tmp_path: Path
) -> None:
    """README's ``ricochet roles apply --passwords roles.env``, every role in the file:
    within seconds each role's user exists and logs in to the vhost with its password.
    (RabbitMQ 4.0.5's rabbitmqctl waits for ever for definitions on standard input.)"""
    passwords = {role: secrets.token_urlsafe(18) for role in ROLES}
    path = tmp_path / "roles.env"
    path.write_text("".join(f"{password_variable(r)}={p}\n" for r, p in passwords.items()))
    users = {role: f"{settings.namespace}-{role}" for role in ROLES}
    argv = [sys.executable, "-m", "ricochet", "roles", "apply", "--passwords", str(path)]
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            [*argv, *apply_options()],
            env=cli_env(settings),
            capture_output=True,
            timeout=APPLY_WITHIN_S,
        )
        assert done.returncode == 0, done.stderr.decode()
        for role, user in users.items():
            login = as_user(settings.amqp_url, user, passwords[role])
            await (await aio_pika.connect(login)).close()
    finally:
        await asyncio.to_thread(delete_users, list(users.values()))
