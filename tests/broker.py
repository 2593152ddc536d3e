"""Finding a broker for the tests, and isolating each test run on it.

Order (DEVELOPERS brief): ``RICOCHET_AMQP_URL``, else a broker on localhost,
else testcontainers (for machines with Docker). With none, the run fails
with a message saying so: broker tests are never skipped.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import time
import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aio_pika

from ricochet.workers.cli.roles import definitions_file

LOCAL_URL = "amqp://guest:guest@localhost:5672/"


class NoBroker(RuntimeError):
    """No RabbitMQ could be reached or started: the run must fail, loudly."""


async def reachable(url: str, timeout: float = 5.0) -> bool:
    try:
        connection = await asyncio.wait_for(aio_pika.connect(url), timeout)
    except (OSError, TimeoutError, aio_pika.exceptions.AMQPError):
        return False
    await connection.close()
    return True


def start_container() -> tuple[str, AbstractContextManager[object]]:
    """A throw-away RabbitMQ from testcontainers; raises NoBroker without Docker."""
    try:
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.10-management")
        container.start()
    except Exception as err:
        raise NoBroker(
            "no RabbitMQ: RICOCHET_AMQP_URL is unset, nothing answers on localhost:5672, and"
            f" testcontainers could not start one ({type(err).__name__}: {err}). Start RabbitMQ"
            " (`rabbitmq-server -detached`) or point RICOCHET_AMQP_URL at one."
        ) from err
    host = container.get_container_host_ip()
    port = container.get_exposed_port(5672)
    return f"amqp://guest:guest@{host}:{port}/", container


def with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def is_local(url: str) -> bool:
    return urlsplit(url).hostname in {"localhost", "127.0.0.1", "::1"}


CTL_TRIES = 3
CTL_VARIABLE = "RICOCHET_RABBITMQCTL"
"""How to run ``rabbitmqctl`` for the run's broker, as one shell-quoted command:
``deploy/test.sh --broker 4`` points it at the 4.x node in its chroot. Unset: ``rabbitmqctl``."""
CTL_ROOT_VARIABLE = "RICOCHET_RABBITMQCTL_ROOT"
"""Where that ``rabbitmqctl``'s file system starts on this machine (its chroot); unset: ``/``."""


def ctl_command() -> list[str]:
    return shlex.split(os.environ.get(CTL_VARIABLE) or "rabbitmqctl")


def ctl_argv(*args: str) -> list[str]:
    """``rabbitmqctl -q args`` as this run's broker takes it."""
    return [*ctl_command(), "-q", *args]


def ctl_root() -> Path:
    return Path(os.environ.get(CTL_ROOT_VARIABLE) or "/")


def ctl_file(body: bytes) -> AbstractContextManager[str]:
    """``body`` in a private file that this run's rabbitmqctl can read, named as it sees it
    (as ``ricochet roles apply`` does it: 4.0.5 hangs reading standard input)."""
    return definitions_file(body, ctl_root())


def rabbitmqctl(*args: str) -> None:
    """Run a ``rabbitmqctl`` command; a failed one is tried again (the CLI's own Erlang
    node can fail to start while other CLIs or a node start run beside it), and the
    last failure is raised with what the CLI printed."""
    for tries in range(1, CTL_TRIES + 1):
        done = subprocess.run(ctl_argv(*args), capture_output=True, timeout=60)
        if done.returncode == 0:
            return
        if tries < CTL_TRIES:
            time.sleep(tries)
    said = (done.stderr or done.stdout).decode(errors="replace").strip()
    raise RuntimeError(f"rabbitmqctl {' '.join(args)} exited {done.returncode}: {said}")


def can_admin(url: str) -> bool:
    """Local broker and rabbitmqctl at hand: then each run gets a vhost of its own."""
    return is_local(url) and shutil.which(ctl_command()[0]) is not None


def create_vhost() -> str:
    vhost = f"ricochet-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    return vhost


def delete_vhost(vhost: str) -> None:
    """Deleted, whatever an earlier try of the command left behind."""
    try:
        rabbitmqctl("delete_vhost", vhost)
    except RuntimeError:
        listed = subprocess.run(ctl_argv("list_vhosts", "name"), capture_output=True, timeout=60)
        if vhost in listed.stdout.decode().split():
            raise


def vhost_of(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/")) or "/"


def queues_of_namespace(url: str, namespace: str) -> list[str]:
    """Every queue of ``namespace`` in ``url``'s vhost (rabbitmqctl: AMQP cannot list)."""
    return queues_of_namespaces(url, [namespace])


def queues_of_namespaces(url: str, namespaces: list[str]) -> list[str]:
    """Every queue of these namespaces in ``url``'s vhost, from one rabbitmqctl call."""
    done = subprocess.run(
        ctl_argv("list_queues", "-p", vhost_of(url), "name", "--no-table-headers"),
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    prefixes = tuple(f"{namespace}." for namespace in namespaces)
    return [name for name in done.stdout.split() if name.startswith(prefixes)]


async def delete_queues(url: str, names: list[str]) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)
    finally:
        await connection.close()


CLEAN_EVERY = 8
"""Finished namespaces cleaned per rabbitmqctl call: each call starts an Erlang VM (about
a second of CPU, more in the 4.x chroot), and once per test made a pass minutes longer."""
_finished: dict[str, list[str]] = {}


def clean_namespace(url: str, namespace: str) -> None:
    """Delete a finished test's queues, with those of the tests before it: a run's
    hundreds of quorum queues and streams otherwise hold the broker's file handles
    until the run's vhost goes, and a broker out of handles (1,024 by default) stops
    accepting connections. A few finished namespaces' queues may wait for the next
    call; the run's vhost takes whatever is left."""
    waiting = _finished.setdefault(url, [])
    waiting.append(namespace)
    if len(waiting) < CLEAN_EVERY:
        return
    names = queues_of_namespaces(url, waiting)
    waiting.clear()
    if names:
        asyncio.run(delete_queues(url, names))
