"""Children and workflows: waiting through retries, reusing results, no starved slots."""

from __future__ import annotations

import asyncio

import pytest

from ricochet.contracts import AttemptStarted, ChildReused, ExecutionRequested
from ricochet.engine import Status
from ricochet.errors import RemoteError
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import log_events, running_worker


async def test_a_workflow_waits_through_its_childs_retries(
    settings: Settings, client: Client
) -> None:
    """The child fails twice (retries=(2, 0.3, 0.6)) then succeeds: the workflow gets it."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("w.calls_flaky", [4])
        assert 41 == await handle.result(timeout=30)
    events = await log_events(settings)
    children = [e for e in events if isinstance(e, ExecutionRequested) and e.parent_id]
    assert [(handle.id, "t.child_flaky", "child")] == [
        (e.parent_id, e.target, e.source) for e in children
    ]
    child = children[0].execution_id
    assert 3 == sum(isinstance(e, AttemptStarted) and e.execution_id == child for e in events)


async def test_a_childs_final_error_reaches_the_workflow(
    settings: Settings, client: Client
) -> None:
    """A child that always fails: the workflow fails with the child's type and message."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("w.calls_broken")
        with pytest.raises(RemoteError) as raised:
            await handle.result(timeout=30)
    assert "tests.integration.tasks.Boom" == raised.value.remote_type
    assert "the child is broken for good" == raised.value.remote_message


async def test_a_retried_workflow_reuses_children_that_succeeded(
    settings: Settings, client: Client
) -> None:
    """retries=1, fails after two children: the retry reuses both results, runs neither."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("w.fails_after_children")
        assert 10 == await handle.result(timeout=30)
    events = await log_events(settings)
    children = {e.execution_id for e in events if isinstance(e, ExecutionRequested) and e.parent_id}
    assert 2 == len(children)
    runs = [e for e in events if isinstance(e, AttemptStarted) and e.execution_id in children]
    assert 2 == len(runs)
    reused = [e for e in events if isinstance(e, ChildReused)]
    assert [(2, 0), (2, 1)] == [(e.attempt, e.position) for e in reused]
    assert children == {e.child_id for e in reused}


async def test_many_parents_waiting_do_not_starve_their_children(
    settings: Settings, client: Client
) -> None:
    """20 parents (sync and async) wait on children retried in 3 s, with concurrency 4."""
    narrow = settings.model_copy(update={"concurrency": 4})
    async with running_worker(narrow, tasks.ALL):
        handles = [
            await client.submit("w.waits_sync" if i % 2 else "w.waits_async", [i])
            for i in range(20)
        ]
        states = await asyncio.gather(*(h.wait(timeout=60) for h in handles))
    assert all(Status.SUCCEEDED == s.status for s in states)
    assert list(range(20)) == [s.result for s in states]


async def test_a_submitted_workflow_is_retried_by_its_policy(settings: Settings) -> None:
    """Workflows started by a person (ricochet submit) retry like any other execution."""
    from tests.integration.test_cli import ricochet

    async with running_worker(settings, tasks.ALL):
        code, out, _ = await ricochet(settings, "submit", "w.always_fails", "--wait")
    assert 1 == code
    events = await log_events(settings, out.splitlines()[0])
    assert 3 == sum(isinstance(e, AttemptStarted) for e in events)
