"""The projector's HTTP server (issue 13, item 4), as a real ``ricochet projector``
process serves it: loopback by default, a bearer token on every route but
``/health``, and no query that answers 500 or breaks the OpenAPI document.

schemathesis drives the OpenAPI run: it reads the live projector's document (with the
token: the document is guarded too), generates valid and invalid requests for every
operation, and checks each answer (no 5xx, status, content type, headers and body as
documented, invalid input refused, and the token not ignored).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from ricochet.workers.client.client import Client
from ricochet.workers.read.openapi import OPENAPI
from ricochet.workers.settings import Settings
from tests import broker
from tests.integration import tasks
from tests.integration.harness import bind_target, eventually, running_worker
from tests.integration.projector_process import ProjectorProcess

TOKEN = secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES_PER_OPERATION = 25
"""Kept small so the run stays well under a minute on two busy cores (11 operations)."""


@dataclass
class Live:
    """The projector process, where it serves, and the executions it folded."""

    projector: ProjectorProcess
    execution_ids: list[str]

    @property
    def base(self) -> str:
        return self.projector.base


@pytest.fixture(scope="module")
def http_settings(broker_url: str) -> Iterator[Settings]:
    """A namespace for the whole module: one projector serves every test in it."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    yield Settings(amqp_url=broker_url, namespace=namespace)
    if broker.can_admin(broker_url):
        broker.clean_namespace(broker_url, namespace)


async def _seed(settings: Settings) -> list[str]:
    """Executions of every kind the API shows: succeeded, failed with a traceback,
    retried, and one still pending (no worker takes its target)."""
    async with Client(settings) as client, running_worker(settings, tasks.ALL):
        handles = [
            await client.submit("t.ok", kwargs={"x": 3}),
            await client.submit("t.fails_once_no_retry"),
            await client.submit("t.twice_then_ok"),
        ]
        for handle in handles:
            await handle.wait(timeout=30)
        await bind_target(settings, "t.nobody_runs_this", "nobody")
        pending = await client.submit("t.nobody_runs_this", ["é\u0000\U0001f600"])
    return [*(h.id for h in handles), pending.id]


@pytest.fixture(scope="module")
async def live(
    http_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Live]:
    """``ricochet projector --http :0`` (loopback, any port) with the token in its
    environment, once it has folded the seeded executions."""
    execution_ids = await _seed(http_settings)
    directory = tmp_path_factory.mktemp("projector-http")
    projector = ProjectorProcess(
        http_settings, directory, "--http", ":0", RICOCHET_PROJECTOR_TOKEN=TOKEN
    )
    try:
        await projector.serving()

        async def folded() -> bool:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{projector.base}/health") as response,
            ):
                return int((await response.json())["executions"]) >= len(execution_ids)

        await eventually(folded, timeout=30)
        yield Live(projector, execution_ids)
    finally:
        projector.close()


schema = schemathesis.openapi.from_dict(
    OPENAPI,
    config=schemathesis.Config.from_dict(
        {
            "headers": AUTH,
            "generation": {"max-examples": EXAMPLES_PER_OPERATION, "deterministic": True},
            "phases": {"stateful": {"enabled": False}},
            # A JSON Schema cannot say which strings are ISO times Python reads, nor which
            # intervals stay after year 1: there, a schema-valid ``since``/``until`` may be
            # refused with 400 (never a 5xx: that check stays on everywhere).
            "operations": [
                {
                    "include-path-regex": "^/(executions|ui)$",
                    "checks": {"positive_data_acceptance": {"expected-statuses": ["2XX", 400]}},
                }
            ],
        }
    ),
)
"""The document the code serves (the live one is checked to be the same, below)."""


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_answers_500_or_breaks_the_document(case: schemathesis.Case, live: Live) -> None:
    """Every operation, with generated valid and invalid parameters and the token: no
    5xx, every answer as its OpenAPI entry says, and a request without the token (or
    with a wrong one) refused."""
    case.call_and_validate(base_url=live.base, headers=AUTH, timeout=10)
