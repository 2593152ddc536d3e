"""Probing what a RabbitMQ user may do: each probe runs one operation on a connection of
its own and says whether the broker refused it (``ACCESS_REFUSED``)."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from ricochet.workers.settings import Settings
from tests.broker import ctl_argv, ctl_command, ctl_file, ctl_root
from tests.integration.harness import cli_env, run_cli

Action = Callable[[AbstractChannel], Awaitable[object]]


def as_user(url: str, user: str, password: str) -> str:
    """``url`` (the run's vhost) with another user's credentials."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port or 5672}"
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password, safe='')}@{host}"))


def import_definitions(body: bytes) -> None:
    """Load definitions JSON as an admin would, from a file: 4.0.5 hangs reading them
    from standard input."""
    with ctl_file(body) as path:
        subprocess.run(
            ctl_argv("import_definitions", path), check=True, capture_output=True, timeout=120
        )


def apply_options() -> list[str]:
    """``ricochet roles apply``'s options for this run's rabbitmqctl (with ``deploy/test.sh
    --broker 4``, the one in the 4.x node's chroot)."""
    return ["--rabbitmqctl", shlex.join(ctl_command()), "--rabbitmqctl-root", str(ctl_root())]


def delete_users(users: list[str]) -> None:
    """Delete them, trying again for a while: a node restarted by another test's fault
    run answers rabbitmqctl again within seconds, and users must not outlive the test."""
    for user in users:
        for _ in range(10):
            done = subprocess.run(ctl_argv("delete_user", user), timeout=60)
            if done.returncode in (0, 67):  # 67: no such user (never made, or gone)
                break
            time.sleep(3)


async def ricochet(settings: Settings, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """The CLI in a subprocess, as ``settings``' user."""
    env = cli_env(settings, RICOCHET_STARTUP_WAIT_S="0")
    return await run_cli(env, *args, timeout=timeout)


async def refused(settings: Settings, action: Action) -> bool:
    """Does the broker refuse ``action`` for this user (ACCESS_REFUSED), or let it through?"""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        try:
            await asyncio.wait_for(action(channel), 15)
        except aiormq.exceptions.ChannelAccessRefused:
            return True
        return False
    finally:
        await connection.close()


def publishing(exchange: str) -> Action:
    async def act(channel: AbstractChannel) -> None:
        target = await channel.get_exchange(exchange, ensure=False)
        await target.publish(aio_pika.Message(b"[]"), routing_key="t.ok")

    return act


def consuming(queue: str) -> Action:
    async def ignore(message: AbstractIncomingMessage) -> None:
        """Never acked: the probe's connection closes at once."""

    async def act(channel: AbstractChannel) -> None:
        await channel.set_qos(prefetch_count=10)  # streams refuse consumers without one
        found = await channel.declare_queue(queue, passive=True)
        await found.consume(ignore)

    return act


def declaring(queue: str, arguments: dict[str, Any] | None = None) -> Action:
    async def act(channel: AbstractChannel) -> None:
        await channel.declare_queue(queue, durable=True, arguments=arguments)

    return act


def deleting(queue: str) -> Action:
    async def act(channel: AbstractChannel) -> None:
        await channel.queue_delete(queue)

    return act
