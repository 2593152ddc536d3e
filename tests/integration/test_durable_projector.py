"""The projector as a service: a store that survives SIGKILL, --rebuild, one owner, an API."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson

from ricochet.engine import project
from ricochet.workers.client.client import Client
from ricochet.workers.log.history import read_entries
from ricochet.workers.read import api
from ricochet.workers.read.http import projector_app
from ricochet.workers.read.projector import Projector
from ricochet.workers.read.store import STATE, ProjectionStore
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import declare_topology, eventually, running_worker
from tests.integration.processes import REPO
from tests.integration.test_cli import ricochet


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_projector(
    settings: Settings, store: Path, port: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RICOCHET_AMQP_URL": settings.amqp_url,
        "RICOCHET_NAMESPACE": settings.namespace,
    }
    command = [
        sys.executable,
        "-m",
        "ricochet",
        "--log-json",
        "projector",
        "--store",
        str(store),
        "--http",
        f"127.0.0.1:{port}",
    ]
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


async def health(port: int) -> dict[str, int] | None:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/health") as response,
        ):
            body: dict[str, int] = orjson.loads(await response.read())
            return body
    except aiohttp.ClientError:
        return None


def stored_offset(store: Path) -> int:
    if not store.exists():
        return -1
    with sqlite3.connect(store) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'offset'").fetchone()
    return -1 if row is None else int(row[0])


async def test_a_killed_projector_resumes_from_its_stored_offset(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """SIGKILL in the middle of 1,000 executions: the restart re-reads only what follows
    its stored offset, and ends equal to a fresh fold."""
    store, port = tmp_path / "projection.sqlite3", free_port()
    first = start_projector(settings, store, port, tmp_path / "first.log")
    try:
        async with running_worker(settings, tasks.ALL):
            handles = await asyncio.gather(*(client.submit("t.ok", [i]) for i in range(1000)))
            await eventually(lambda: stored_offset(store) > 200, timeout=60, every=0.02)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            kept = stored_offset(store)
            await asyncio.gather(*(h.wait(timeout=120) for h in handles))
        second = start_projector(settings, store, port, tmp_path / "second.log")
        entries = await read_entries(settings)
        tail = entries[-1].offset

        async def caught_up() -> bool:
            answer = await health(port)
            return answer is not None and answer["offset"] == tail

        await eventually(caught_up, timeout=60)
        progress = await health(port)
        second.send_signal(signal.SIGTERM)
        assert 0 == second.wait(30)
    finally:
        for process in (first,):
            if process.poll() is None:
                process.kill()
    assert progress is not None
    assert kept == progress["resumed_from"]
    after = sum(len(entry.events) for entry in entries if entry.offset > kept)
    assert after == progress["events_read"]
    assert progress["events_read"] < sum(len(entry.events) for entry in entries)
    stored, offset = ProjectionStore(store).open().load()
    assert tail == offset
    assert project(e for entry in entries for e in entry.events).executions == stored.executions


async def test_rebuild_reports_a_tampered_store_and_repairs_it(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    store = tmp_path / "projection.sqlite3"
    projector = Projector(settings, store)
    await projector.start()
    async with running_worker(settings, tasks.ALL):
        handles = [await client.submit("t.ok", [i]) for i in range(3)]
        await asyncio.gather(*(h.wait(timeout=30) for h in handles))
    await eventually(lambda: all(projector.projection.get(h.id) for h in handles))
    await asyncio.sleep(0.3)
    await projector.stop()
    tampered, removed = handles[0].id, handles[1].id
    with sqlite3.connect(store) as db:
        db.execute(
            "UPDATE executions SET state = replace(state, 'succeeded', 'failed') WHERE id = ?",
            (tampered,),
        )
        db.execute("DELETE FROM executions WHERE id = ?", (removed,))

    code, out, _ = await ricochet(settings, "projector", "--rebuild", "--store", str(store))
    assert 1 == code
    assert f"differs: {tampered} (status" in out
    assert f"missing from the store: {removed}" in out
    code, out, _ = await ricochet(settings, "projector", "--rebuild", "--store", str(store))
    assert (0, "0 difference(s)") == (code, out.strip().splitlines()[-1][:15])


async def test_a_second_projector_on_the_same_store_says_why_and_exits(
    settings: Settings, tmp_path: Path
) -> None:
    store = tmp_path / "projection.sqlite3"
    await declare_topology(settings)
    owner = Projector(settings, store)
    await owner.start()
    try:
        code, _, err = await ricochet(settings, "projector", "--store", str(store), "--http", "")
    finally:
        await owner.stop()
    assert 3 == code
    assert f"{store} is in use by projector {os.getpid()}" in err


async def test_the_api_agrees_with_a_fresh_fold(
    settings: Settings, client: Client, tmp_path: Path
) -> None:
    """List and detail match a refold; bad parameters get a 400 with a message."""
    projector = Projector(settings)
    await projector.start()
    port = free_port()
    runner = await api.serve(projector_app(projector), "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with running_worker(settings, tasks.ALL):
            names = ["t.ok", "t.always_fails", "t.twice_then_ok"] * 2
            handles = [await client.submit(n) for n in names]
            await asyncio.gather(*(h.wait(timeout=30) for h in handles))
        await eventually(
            lambda: all(
                (s := projector.projection.get(h.id)) is not None and s.is_terminal for h in handles
            )
        )
        fresh = project(e for entry in await read_entries(settings) for e in entry.events)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/executions", params={"status": "failed"}) as r:
                listed = orjson.loads(await r.read())["executions"]
            failed = {i for i, s in fresh.executions.items() if s.status.value == "failed"}
            assert failed == {row["execution_id"] for row in listed}
            for handle in handles:
                async with session.get(f"{base}/executions/{handle.id}") as r:
                    assert fresh.executions[handle.id] == STATE.validate_json(await r.read())
            for bad in (
                {"status": "bogus"},
                {"limit": "0"},
                {"since": "yesterday"},
                {"colour": "red"},
            ):
                async with session.get(f"{base}/executions", params=bad) as r:
                    assert 400 == r.status
                    assert orjson.loads(await r.read())["error"]
            async with session.get(f"{base}/openapi.json") as r:
                assert "/executions/{execution_id}" in orjson.loads(await r.read())["paths"]
    finally:
        await runner.cleanup()
        await projector.stop()
