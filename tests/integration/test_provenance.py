"""Knowing where the data came from: a projector's store and API are tied to one broker,
vhost and namespace, and ``status``/``executions`` say where their answer came from."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest

from ricochet.workers.client.client import Client
from ricochet.workers.read import api
from ricochet.workers.read.projector import Projector
from ricochet.workers.settings import Settings
from tests import broker
from tests.integration import tasks
from tests.integration.harness import declare_topology, eventually, running_worker
from tests.integration.test_cli import ricochet
from tests.integration.test_durable_projector import free_port


@pytest.fixture
def other_vhost(settings: Settings) -> Iterator[Settings]:
    """The test's namespace in a second vhost made for this test, deleted whatever happens."""
    vhost = broker.create_vhost()
    try:
        yield settings.model_copy(update={"amqp_url": broker.with_vhost(settings.amqp_url, vhost)})
    finally:
        broker.delete_vhost(vhost)


@asynccontextmanager
async def serving_projector(settings: Settings, store: Path | None = None) -> AsyncIterator[str]:
    """A projector with its API on a free port, for these settings; yields the API's URL."""
    await declare_topology(settings)
    projector = Projector(settings, store)
    await projector.start()
    port = free_port()
    runner = await api.serve(
        api.app(projector.provenance, lambda: projector.projection, projector.progress),
        "127.0.0.1",
        port,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await projector.stop()


async def get_json(url: str) -> object:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return orjson.loads(await response.read())


async def test_a_store_made_for_one_vhost_refuses_another(
    settings: Settings, other_vhost: Settings, tmp_path: Path
) -> None:
    """Given a store a projector folded vhost A into, when a projector (or a rebuild) for
    vhost B is pointed at it, then it exits 3 with one line naming both vhosts."""
    store = tmp_path / "projection.sqlite3"
    async with serving_projector(settings, store):
        pass
    vhost_a, vhost_b = broker.vhost_of(settings.amqp_url), broker.vhost_of(other_vhost.amqp_url)

    code, _, err = await ricochet(other_vhost, "projector", "--store", str(store), "--http", "")
    rebuilt, _, rebuild_err = await ricochet(
        other_vhost, "projector", "--rebuild", "--store", str(store)
    )

    (line,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert 3 == code
    assert f"{store} was made for another vhost" in line
    assert f"vhost {vhost_a}, namespace {settings.namespace}" in line
    assert f"vhost {vhost_b}, namespace {settings.namespace}" in line
    assert (3, True) == (rebuilt, "was made for another vhost" in rebuild_err)


async def test_health_names_broker_vhost_and_namespace_without_the_password(
    settings: Settings,
) -> None:
    async with serving_projector(settings) as url:
        health = await get_json(f"{url}/health")

    parts = urlsplit(settings.amqp_url)
    assert isinstance(health, dict)
    assert f"amqp://{parts.username}@{parts.hostname}:{parts.port or 5672}" == health["broker"]
    assert broker.vhost_of(settings.amqp_url) == health["vhost"]
    assert settings.namespace == health["namespace"]
    assert f":{parts.password}@" not in orjson.dumps(health).decode()


async def test_status_and_executions_say_they_answer_from_the_projector(
    settings: Settings, client: Client
) -> None:
    """A projector of this vhost and namespace answers, and the commands say which."""
    async with running_worker(settings, tasks.ALL):
        done = await client.submit("t.ok", [3])
        await done.wait(timeout=20)
    async with serving_projector(settings) as url:
        async with aiohttp.ClientSession() as session:
            await eventually(lambda: _found(session, f"{url}/executions/{done.id}"), timeout=20)
        code, timeline, err = await ricochet(settings, "status", done.id, "--api", url)
        listed, table, list_err = await ricochet(settings, "executions", "--api", url)

    origin = f"from projector {url} (vhost {broker.vhost_of(settings.amqp_url)}, namespace "
    assert (0, True) == (code, f"{origin}{settings.namespace})" in err)
    assert '  result: {"doubled":6}' in timeline
    assert (0, True) == (listed, f"{origin}{settings.namespace})" in list_err)
    header, row = table.strip().splitlines()
    assert ["execution", "status", "attempts", "target"] == header.split()[:4]
    assert [done.id, "succeeded", "1", "t.ok"] == row.split()[:4]


async def _found(session: aiohttp.ClientSession, url: str) -> bool:
    async with session.get(url) as response:
        return response.status == 200


async def test_a_projector_of_another_namespace_is_passed_by_saying_why(
    settings: Settings, client: Client
) -> None:
    """Given a projector folding another namespace on the same vhost, ``status`` and
    ``executions`` read the log instead, and say why and how much they read."""
    async with running_worker(settings, tasks.ALL):
        done = await client.submit("t.ok", [4])
        await done.wait(timeout=20)
    elsewhere = settings.model_copy(update={"namespace": f"t{uuid.uuid4().hex[:10]}"})
    vhost = broker.vhost_of(settings.amqp_url)
    try:
        async with serving_projector(elsewhere) as url:
            code, timeline, err = await ricochet(settings, "status", done.id, "--api", url)
            listed, table, list_err = await ricochet(settings, "executions", "--api", url)
    finally:
        await broker.delete_queues(
            settings.amqp_url, broker.queues_of_namespace(settings.amqp_url, elsewhere.namespace)
        )

    why = (
        f"projector {url} not used: it folds vhost {vhost}, namespace {elsewhere.namespace};"
        f" this command reads vhost {vhost}, namespace {settings.namespace}"
    )
    assert (0, [why]) == (code, [line for line in err.splitlines() if "not used" in line])
    assert "from the log (" in err
    assert "messages folded)" in err
    assert "succeeded  (1 attempt)" in timeline
    assert (0, True, True) == (listed, why in list_err, done.id in table)


async def test_a_projector_of_another_vhost_is_passed_by(
    settings: Settings, other_vhost: Settings, client: Client
) -> None:
    """The same namespace in another vhost is another Ricochet: not asked for answers."""
    async with running_worker(settings, tasks.ALL):
        done = await client.submit("t.ok", [5])
        await done.wait(timeout=20)
    async with serving_projector(other_vhost) as url:
        code, timeline, err = await ricochet(settings, "status", done.id, "--api", url)

    other = broker.vhost_of(other_vhost.amqp_url)
    assert 0 == code
    assert f"not used: it folds vhost {other}, namespace {settings.namespace};" in err
    assert "from the log (" in err
    assert "succeeded  (1 attempt)" in timeline
