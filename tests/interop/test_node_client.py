"""Interop: a client not written in Python (Node's amqplib and ajv) against a real worker.

It publishes triggers with ``reply_to``, receives the replies, follows the event
stream, and validates triggers, replies and every event it reads against the
shipped schemas with ajv in strict mode (``interop.mjs`` says how). Node and npm
must be installed: without them this fails, it is never skipped.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import running_worker

HERE = Path(__file__).parent
SCHEMAS = HERE.parent.parent / "contracts" / "schemas"
SCRIPT = HERE / "interop.mjs"


@pytest.fixture(scope="session")
def node() -> str:
    """Node, with the lock file's packages installed (``npm ci``) when they are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "the interop test needs Node.js 18+ and npm on PATH (apt-get install nodejs npm)",
            pytrace=False,
        )
    if not (HERE / "node_modules" / "ajv").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {HERE} failed:\n{done.stderr[-2000:]}", pytrace=False)
    return node


async def run_node(node: str, settings: Settings, *options: str) -> dict[str, Any]:
    """Run interop.mjs against this test's namespace; its one JSON summary line."""
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        "--url",
        settings.amqp_url,
        "--namespace",
        settings.namespace,
        "--schemas",
        str(SCHEMAS),
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, (
        f"node exited {process.returncode}:\n{out.decode()}\n{err.decode()}"
    )
    summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return summary


async def test_a_node_client_gets_replies_and_reads_a_valid_log(
    node: str, settings: Settings
) -> None:
    """Given a worker, when Node publishes 20 triggers with reply_to (the last one for a task
    that always fails), then each gets one reply with its correlation id, and every trigger,
    reply and event it read is valid against the shipped schemas under ajv's strict mode."""
    async with running_worker(settings, tasks.ALL):
        summary = await run_node(
            node, settings, "--count", "20", "--target", "t.ok", "--failing", "t.always_fails"
        )
    assert (20, True, {"succeeded": 19, "failed": 1}) == (
        summary["replies"],
        summary["correlated"],
        summary["statuses"],
    )
    assert {"execution_requested.v2", "reply_requested.v1", "reply_sent.v1"} <= set(
        summary["types_seen"]
    )
    assert 0 == summary["problem_count"], summary["problems"]
