"""Shared fixtures: one broker per run, a vhost per run, a namespace per test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests import broker


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """The run's broker, in a vhost created for this run and deleted after it."""
    url = os.environ.get("RICOCHET_AMQP_URL")
    container = None
    if not url:
        if asyncio.run(broker.reachable(broker.LOCAL_URL)):
            url = broker.LOCAL_URL
        else:
            try:
                url, container = broker.start_container()
            except broker.NoBroker as err:
                pytest.fail(str(err), pytrace=False)
    elif not asyncio.run(broker.reachable(url)):
        pytest.fail(f"RICOCHET_AMQP_URL={url} is set but nothing answers there", pytrace=False)
    vhost = broker.create_vhost() if broker.can_admin(url) else None
    try:
        yield broker.with_vhost(url, vhost) if vhost else url
    finally:
        if vhost:
            broker.delete_vhost(vhost)
        if container is not None:
            container.__exit__(None, None, None)


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(broker_url: str, namespace: str) -> Iterator[Settings]:
    """A namespace of its own for every test, inside the run's vhost; its queues are
    deleted when the test ends (where the broker can be administered)."""
    yield Settings(amqp_url=broker_url, namespace=namespace, concurrency=8)
    if broker.can_admin(broker_url):
        broker.clean_namespace(broker_url, namespace)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    """An open client in the test's namespace (it declares the core topology)."""
    async with Client(settings) as opened:
        yield opened
