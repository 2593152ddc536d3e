"""Re-running a failed execution, and reproducing a failure locally."""

from __future__ import annotations

from pathlib import Path

from ricochet.contracts import ExecutionRequested, RerunRequested
from ricochet.engine import Status
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import log_events, running_worker
from tests.integration.test_cli import ricochet


async def test_debug_reproduces_the_recorded_exception(settings: Settings, client: Client) -> None:
    """debug runs the last failed attempt here, with its inputs, and says it reproduced."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.always_fails")
        await handle.wait(timeout=20)
    events_before = await log_events(settings, handle.id)
    code, out, err = await ricochet(settings, "debug", handle.id, "tests.integration.tasks")
    assert 1 == code
    assert "reproduced: tests.integration.tasks.Boom: still broken on attempt 3" in out
    assert "raise Boom" in err
    code, out, _ = await ricochet(
        settings, "debug", handle.id, "tests.integration.tasks", "--attempt", "1"
    )
    assert "reproduced: tests.integration.tasks.Boom: still broken on attempt 1" in out
    assert events_before == await log_events(settings, handle.id), "debug publishes nothing"


async def test_rerun_of_a_fixed_failure_succeeds_and_links_both_ways(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    async with running_worker(settings, tasks.ALL):
        original = await client.submit("t.needs_fix", [str(flag)])
        assert Status.FAILED == (await original.wait(timeout=20)).status
        flag.touch()
        code, out, _ = await ricochet(settings, "rerun", original.id, "--wait")
    assert 0 == code
    rerun_id, result = out.strip().splitlines()
    assert '"fixed"' == result
    requested = [
        e for e in await log_events(settings, rerun_id) if isinstance(e, ExecutionRequested)
    ]
    assert [original.id] == [e.rerun_of for e in requested]
    assert [str(flag)] == list(requested[0].args)
    links = [e for e in await log_events(settings, original.id) if isinstance(e, RerunRequested)]
    assert [rerun_id] == [e.rerun_id for e in links]
