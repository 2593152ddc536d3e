"""Nodes of a real 3-node cluster stopped under load, and brought back (issue 15 item 7b).

A cluster of our own beside the default broker (``tests/integration/cluster.py``),
stopped at the end whatever happens. Two worker processes, a projector and the
client are given all three addresses, the first node first, so all are on it.
Under issue 15's load (``tests/integration/faults.py``), three times, each with a
fresh batch: the node everyone is on is stopped, everything must end with it down, and
it is brought back; then the node leading the log (where RabbitMQ 3.10.8 loses writes
it confirmed, which workers must notice and publish again, ``workers.log.witness``);
then the node now leading the work queue. Counted for each: nothing stuck
or lost, no attempt run twice, delayed retries run; and the projector, connected
through all three faults, equals a fresh fold of the log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import fault_runs, faults
from tests.integration.cluster import LocalCluster, local_cluster

LOAD = faults.Load(once=2000, retried=500)
BOUND_S = 420
"""The whole test, cluster start included: a few minutes at most."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster() as started:
        yield started


@pytest.mark.timeout(BOUND_S + 60)
async def test_stopping_nodes_under_load(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    """Given two workers, a projector and a client on node 1 of 3 and 2,500 executions
    draining, when node 1 stops (and comes back), then the log's leader stops (and comes
    back), then the work queue's leader, each under a fresh batch: every execution ends,
    succeeded, with the node down, no attempt runs twice, every delayed retry runs, and
    the projector equals a fresh fold."""
    began = time.monotonic()
    rows, notes = await fault_runs.cluster(cluster, namespace, tmp_path, LOAD)
    print(f"\n{'; '.join(notes)}\n{faults.render(rows)}")
    for counts in rows:
        assert counts.stuck == 0, "\n".join((counts.fault, *counts.failures))
        assert counts.failed == 0, "\n".join((counts.fault, *counts.failures))
        assert counts.ended == LOAD.executions, counts.fault
        assert counts.double_runs == 0, counts.fault
        assert counts.over_limit == 0, counts.fault
        assert counts.retries_run == LOAD.retried, counts.fault
        assert counts.projector_matches, counts.fault
    assert time.monotonic() - began < BOUND_S, "keep the cluster run bounded"
