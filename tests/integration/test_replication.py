"""Nothing of Ricochet's lives on one node only (SPEC 9; issue 15 item 5).

On the single test broker: every queue a worker, a client and a delayed retry make is a
quorum queue or a stream (a classic queue lives on one node, and with that node down
nothing that declares it can start), and the replication settings reach the broker.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from ricochet.workers.amqp.topology import Names
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.broker import ctl_argv
from tests.integration import tasks
from tests.integration.harness import running_worker
from tests.integration.processes import vhost_of


def queues_of(settings: Settings) -> dict[str, dict[str, Any]]:
    """The namespace's queues on the broker: name -> {"type": ..., "arguments": {...}}."""
    columns = ("name", "type", "arguments")
    listed = subprocess.run(
        ctl_argv("list_queues", "-p", vhost_of(settings), *columns, "--formatter", "json"),
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    prefix = f"{settings.namespace}."
    return {
        row["name"]: {"type": row["type"], "arguments": {k: v for k, _, v in row["arguments"]}}
        for row in json.loads(listed.stdout)
        if row["name"].startswith(prefix)
    }


async def run_one_delayed_retry(settings: Settings) -> None:
    """A worker (with its supervisor) and a client, and retries through delay queues."""
    async with running_worker(settings, tasks.ALL), Client(settings) as client:
        handle = await client.submit("t.backoff")  # retries after 0.5 s and 1 s
        assert await handle.result(timeout=30) == "done"


async def test_every_queue_ricochet_declares_is_a_quorum_queue_or_a_stream(
    settings: Settings,
) -> None:
    await run_one_delayed_retry(settings)
    names = Names(settings.namespace)
    queues = queues_of(settings)
    expected = {
        names.events,
        names.checkpoints,
        names.work_queue("default"),
        names.delay_queue(500),
        names.delay_queue(1000),
        names.dead,
        names.dead_watch,
        names.triggers,
        names.supervisor,
    }
    assert expected <= set(queues), sorted(queues)
    kinds = {name: queue["type"] for name, queue in queues.items()}
    assert set(kinds.values()) <= {"quorum", "stream"}, kinds
    assert {n for n, kind in kinds.items() if kind == "stream"} == {names.events, names.checkpoints}


async def test_replication_settings_reach_the_broker(settings: Settings) -> None:
    """Group sizes set: a worker still starts (the supervisor's own re-declares agree with
    the core's), and each queue that takes them was created with them."""
    sized = settings.model_copy(update={"quorum_group_size": 1, "stream_group_size": 1})
    await run_one_delayed_retry(sized)
    names = Names(settings.namespace)
    queues = queues_of(settings)
    for name in (names.events, names.checkpoints):
        assert queues[name]["arguments"]["x-initial-cluster-size"] == 1, name
    delays = [name for name in queues if name.startswith(f"{settings.namespace}.delayq.")]
    assert delays, "the retry went through a delay queue"
    for name in (names.work_queue("default"), names.dead, names.triggers, *delays):
        assert queues[name]["arguments"]["x-quorum-initial-group-size"] == 1, name
    for name in (names.supervisor, names.dead_watch):  # always every node (topology.py)
        assert "x-quorum-initial-group-size" not in queues[name]["arguments"], name
