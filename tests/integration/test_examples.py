"""The README's examples run as written: the shop's tasks, the Python client, and a
trigger published with plain aio-pika (the files under ricochet/workers/examples/
that the README shows word for word: see tests/unit/test_readme.py)."""

from __future__ import annotations

import asyncio
import os
import sys

from ricochet import Client
from ricochet.workers.client.dispatch import execution_id_for
from ricochet.workers.examples import shop
from ricochet.workers.settings import Settings
from tests.integration.harness import running_worker


async def run_example(module: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_client_example_prints_both_results(settings: Settings) -> None:
    """``shop_client``: the charge succeeds on its second attempt, the receipt at once."""
    env = {"RICOCHET_AMQP_URL": settings.amqp_url, "RICOCHET_NAMESPACE": settings.namespace}
    async with running_worker(settings, [shop.charge, shop.send_receipt]):
        code, out, err = await run_example("ricochet.workers.examples.shop_client", env)

    assert 0 == code, err[-2000:]
    assert [
        "{'order': 'o-1', 'charged': 1200}",
        "receipt for o-1 sent to ada@example.com",
    ] == out.splitlines()


async def test_the_trigger_example_starts_the_keyed_execution(
    settings: Settings, client: Client
) -> None:
    """``shop_trigger`` publishes with no Ricochet import; the key names the execution."""
    env = {"AMQP_URL": settings.amqp_url, "NAMESPACE": settings.namespace}
    handle = client.follow(execution_id_for("order-o-2"))
    async with running_worker(settings, [shop.charge]):
        code, out, err = await run_example("ricochet.workers.examples.shop_trigger", env)
        assert 0 == code, err[-2000:]
        result = await handle.result(timeout=60)

    assert "trigger published for order o-2\n" == out
    assert {"order": "o-2", "charged": 900} == result
