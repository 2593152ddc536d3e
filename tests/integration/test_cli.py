"""The ``ricochet`` command line, run as a user would run it."""

from __future__ import annotations

import asyncio
import os
import sys

import orjson

from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.harness import cli_env, run_cli, running_worker


async def ricochet(settings: Settings, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run the CLI in a subprocess against the test's broker and namespace."""
    return await run_cli(cli_env(settings), *args, timeout=timeout)


async def test_submit_wait_prints_the_result(settings: Settings) -> None:
    """``submit --wait`` prints the id, then the JSON result, and exits 0."""
    async with running_worker(settings, tasks.ALL):
        code, out, _ = await ricochet(settings, "submit", "t.ok", "--kwargs", '{"x": 5}', "--wait")
    assert code == 0
    execution_id, result = out.strip().splitlines()
    assert len(execution_id) == 32
    assert orjson.loads(result) == {"doubled": 10}


async def test_submit_wait_of_a_failing_task_exits_non_zero(settings: Settings) -> None:
    """Exhausted retries: exit 1, and the final error is printed."""
    async with running_worker(settings, tasks.ALL):
        code, _, err = await ricochet(settings, "submit", "t.always_fails", "--wait")
    assert code == 1
    assert "tests.integration.tasks.Boom: still broken on attempt 3" in err


async def test_status_and_replay_show_the_attempts(settings: Settings) -> None:
    """``status`` draws each attempt with the wait before it; ``replay`` lists every event."""
    async with running_worker(settings, tasks.ALL):
        code, out, _ = await ricochet(settings, "submit", "t.backoff", "--wait")
    assert code == 0
    execution_id = out.splitlines()[0]

    code, timeline, _ = await ricochet(settings, "status", execution_id)
    assert code == 0
    assert "succeeded  (3 attempts)" in timeline
    assert "waited 500 ms" in timeline
    assert "waited 1.00 s" in timeline
    assert "Boom: not yet" in timeline

    code, human, _ = await ricochet(settings, "replay", "--execution", execution_id)
    assert code == 0
    assert len(human.strip().splitlines()) == 10
    code, lines, _ = await ricochet(settings, "replay", "--execution", execution_id, "--json")
    types = [orjson.loads(line)["type"] for line in lines.strip().splitlines()]
    assert types[0] == "execution_requested.v2"
    assert types[-1] == "execution_succeeded.v1"


async def test_topology_declares_and_prints(settings: Settings) -> None:
    """``topology`` declares the exchanges and queues, and names them."""
    code, out, _ = await ricochet(settings, "topology", "--queue", "default")
    assert code == 0
    assert f"queue {settings.namespace}.events (stream)" in out
    assert f"queue {settings.namespace}.work.default (quorum)" in out


async def test_connection_options_work_after_the_command(settings: Settings) -> None:
    """``ricochet submit T --amqp-url U --namespace N`` reaches the same broker and
    namespace as the options before the command (the environment names another)."""
    env = {**os.environ, "RICOCHET_AMQP_URL": "amqp://nobody:wrong@127.0.0.1:1/"}
    env["RICOCHET_NAMESPACE"] = "not-this-one"
    async with running_worker(settings, tasks.ALL):
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "ricochet", "--log-json", "submit", "t.ok"),
            *("--kwargs", '{"x": 2}', "--wait"),
            *("--amqp-url", settings.amqp_url, "--namespace", settings.namespace),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert 0 == process.returncode, err.decode()[-2000:]
    assert {"doubled": 4} == orjson.loads(out.decode().splitlines()[-1])
