"""``ricochet status`` for people: JSON results, the user's frames, rerun links both ways;
``ricochet schemas --out`` writes where it is told and nowhere else."""

from __future__ import annotations

from pathlib import Path

import orjson

from ricochet.contracts.schemas import json_schemas
from ricochet.workers.cli.log_tools import SCHEMA_DIR
from ricochet.workers.client.client import Client
from ricochet.workers.log.history import fold_log
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import running_worker
from tests.integration.test_cli import ricochet

RUNNER = "ricochet/workers/runtime/runner.py"


async def test_status_prints_the_result_as_json(settings: Settings, client: Client) -> None:
    """The same JSON ``submit --wait`` prints, not Python's repr."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.ok", kwargs={"x": 21})
        await handle.wait(timeout=20)

    code, timeline, _ = await ricochet(settings, "status", handle.id, "--api", "")

    assert (0, '  result: {"doubled":42}') == (code, timeline.rstrip().splitlines()[-1])


async def test_status_shows_the_users_frames_and_all_of_them_when_asked(
    settings: Settings, client: Client
) -> None:
    """Given a task that raised, status shows its frame and counts Ricochet's away;
    --all-frames shows the traceback as the worker recorded it."""
    async with running_worker(settings, tasks.ALL):
        handle = await client.submit("t.fails_once_no_retry")
        await handle.wait(timeout=20)

    code, shown, _ = await ricochet(settings, "status", handle.id, "--api", "")
    _, whole, _ = await ricochet(settings, "status", handle.id, "--api", "", "--all-frames")

    assert 1 == code
    assert "tests/integration/tasks.py" in shown
    assert 'raise Boom("no second chance")' in shown
    assert "frames of Ricochet and asyncio hidden" in shown
    assert RUNNER not in shown
    assert "concurrent/futures" not in shown
    assert RUNNER in whole
    assert "concurrent/futures/thread.py" in whole
    assert "hidden" not in whole


async def test_status_shows_rerun_links_both_ways(settings: Settings, client: Client) -> None:
    """The rerun says what it re-runs; the original says what re-ran it."""
    async with running_worker(settings, tasks.ALL):
        first = await client.submit("t.ok", [1])
        await first.wait(timeout=20)
        original = (await fold_log(settings, first.id)).projection.get(first.id)
        assert original is not None
        again = await client.rerun(original)
        await again.wait(timeout=20)

    _, of_original, _ = await ricochet(settings, "status", first.id, "--api", "")
    _, of_rerun, _ = await ricochet(settings, "status", again.id, "--api", "")

    assert f"  rerun as {again.id}" in of_original.splitlines()
    assert f"  rerun of {first.id}" in of_rerun.splitlines()


async def test_schemas_out_writes_there_and_leaves_the_package_alone(
    settings: Settings, tmp_path: Path
) -> None:
    """``--out DIR`` writes every schema into DIR; without it nothing is written (exit 2);
    the copies inside the installed package are never touched."""
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in SCHEMA_DIR.rglob("*.json")}
    out = tmp_path / "schemas"

    code, written, _ = await ricochet(settings, "schemas", "--out", str(out))
    refused, _, err = await ricochet(settings, "schemas")
    checked, _, _ = await ricochet(settings, "schemas", "--check")

    on_disk = {str(p.relative_to(out)): orjson.loads(p.read_bytes()) for p in out.rglob("*.json")}
    assert (0, json_schemas()) == (code, on_disk)
    assert len(json_schemas()) == written.count("written: ")
    assert (2, True) == (refused, "--out DIR" in err)
    assert 0 == checked
    assert before == {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in SCHEMA_DIR.rglob("*.json")}
