"""On a 3-node cluster, a node down takes nothing of Ricochet's with it (issue 15 item 5).

A cluster of our own is started beside the default broker (``tests/integration/
cluster.py``) and stopped at the end whatever happens. With a classic heartbeat
queue, the node holding it down made ``queue.declare`` fail (``home node ... is
down``), so no worker, ``submit`` or ``replay`` could start.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.runtime.worker import Worker
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.cluster import LocalCluster, local_cluster
from tests.integration.harness import eventually


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster() as started:
        yield started


async def test_workers_start_and_submit_works_with_the_heartbeat_leader_down(
    cluster: LocalCluster,
) -> None:
    """The node leading ``<ns>.heartbeats`` stopped: a new worker starts (it declares the
    whole topology and joins the heartbeat queue), and a submitted execution runs."""
    began = time.monotonic()
    namespace = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings(amqp_url=cluster.url(0), namespace=namespace)
    async with Client(settings):
        pass  # the core topology, on all three nodes
    await eventually(lambda: cluster.replicated(namespace), timeout=60, every=0.5)
    leader = cluster.leader_of(Names(namespace).supervisor)
    cluster.stop_app(leader)
    # The elections the stop caused are over (a second or two): what is tested here is
    # that nothing needed lived on the stopped node. Connected to a node that is up
    # (fail-over among addresses is tested in test_failover_cluster.py).
    await eventually(lambda: cluster.settled(namespace), timeout=60, every=0.5)
    survivor = next(i for i in range(len(cluster.nodes)) if i != leader)
    settings = settings.model_copy(update={"amqp_url": cluster.url(survivor)})
    worker = Worker(settings, tasks.ALL)
    try:  # stopped even if it fails half-way through start: no connection left behind
        await worker.start()
        async with Client(settings) as client:
            handle = await client.submit("t.ok", [21])
            assert await handle.result(timeout=60) == {"doubled": 42}
    finally:
        await worker.stop(grace_s=5.0)
    assert time.monotonic() - began < 120, "keep the cluster test bounded"
