"""Replay as an on-call engineer uses it: filters, windows, export, offline reading."""

from __future__ import annotations

from pathlib import Path

import orjson

from ricochet.workers.client.client import Client
from ricochet.workers.log.history import read_entries
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import running_worker
from tests.integration.test_cli import ricochet


def ids(lines: str) -> list[str]:
    return [orjson.loads(line)["event_id"] for line in lines.strip().splitlines()]


async def test_filters_windows_export_and_offline_reading(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """--type, --target, --from OFFSET, --from TIME, --out, then --file with no broker."""
    async with running_worker(settings, tasks.ALL):
        ok = await client.submit("t.ok", [1])
        flaky = await client.submit("t.twice_then_ok")
        await ok.wait(timeout=20)
        await flaky.wait(timeout=20)
    entries = await read_entries(settings)
    events = [e for entry in entries for e in entry.events]

    _, failed, _ = await ricochet(settings, "replay", "--json", "--type", "attempt_failed")
    assert [e.event_id for e in events if e.type == "attempt_failed.v1"] == ids(failed)

    _, only_ok, _ = await ricochet(settings, "replay", "--json", "--target", "t.ok")
    assert [e.event_id for e in events if e.execution_id == ok.id] == ids(only_ok)

    middle = entries[len(entries) // 2]
    _, from_offset, _ = await ricochet(settings, "replay", "--json", "--from", str(middle.offset))
    later = [e.event_id for entry in entries if entry.offset >= middle.offset for e in entry.events]
    assert later == ids(from_offset)

    moment = middle.events[0].at.isoformat()
    _, from_time, _ = await ricochet(settings, "replay", "--json", "--from", moment)
    assert [e.event_id for e in events if e.at >= middle.events[0].at] == ids(from_time)

    export = tmp_path / "log.jsonl"
    code, _, _ = await ricochet(settings, "replay", "--out", str(export))
    assert 0 == code
    offline = settings.model_copy(update={"amqp_url": "amqp://nobody:nothing@127.0.0.1:1/"})
    code, replayed, _ = await ricochet(offline, "replay", "--json", "--file", str(export))
    assert 0 == code
    assert [e.event_id for e in events] == ids(replayed)
    code, timeline, _ = await ricochet(offline, "status", flaky.id, "--file", str(export))
    assert 0 == code
    assert "succeeded  (3 attempts)" in timeline


async def test_bad_positions_get_a_clear_error(settings: Settings) -> None:
    code, _, err = await ricochet(settings, "replay", "--from", "yesterday")
    assert 2 == code
    assert "is not first, an offset, an ISO time or an interval like 10m" in err


async def test_executions_lists_by_folding_the_log_when_no_projector_answers(
    settings: Settings, client: Client
) -> None:
    """ricochet executions --status failed, with no projector: the log is folded instead."""
    async with running_worker(settings, tasks.ALL):
        ok = await client.submit("t.ok", [1])
        bad = await client.submit("t.fails_once_no_retry")
        await ok.wait(timeout=20)
        await bad.wait(timeout=20)
    code, out, _ = await ricochet(settings, "executions", "--status", "failed", "--api", "")
    assert 0 == code
    header, *rows = out.strip().splitlines()
    assert "execution" == header.split()[0]
    assert [bad.id] == [line.split()[0] for line in rows]
    code, _, err = await ricochet(settings, "executions", "--status", "lost", "--api", "")
    assert 2 == code
    assert "status must be one of" in err
