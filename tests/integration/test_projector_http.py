"""The projector's HTTP server (issue 13, item 4), as a real ``ricochet projector``
process serves it: loopback by default, a bearer token on every route but
``/health``, and no query that answers 500 or breaks the OpenAPI document.

schemathesis drives the OpenAPI run: it reads the live projector's document (with the
token: the document is guarded too), generates valid and invalid requests for every
operation, and checks each answer (no 5xx, status, content type, headers and body as
documented, invalid input refused, and the token not ignored).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
def test_no_request_answers_500_or_breaks_the_document(
    case: schemathesis.Case[Any], live: Live
) -> None:
    """Every operation, with generated valid and invalid parameters and the token: no
    5xx, every answer as its OpenAPI entry says, and a request without the token (or
    with a wrong one) refused."""
    case.call_and_validate(base_url=live.base, headers=AUTH, timeout=10)


def _routes(live: Live) -> list[str]:
    """Every path of the document, with a real execution id where it takes one."""
    some = live.execution_ids[0]
    return [path.replace("{execution_id}", some) for path in OPENAPI["paths"]]


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        await response.read()
        return response.status, dict(response.headers)


WRONG = [
    None,
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": TOKEN},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer éé"},
    {"Cookie": f"ricochet_ui_session={TOKEN}"},
]


async def test_every_route_but_health_refuses_a_request_without_the_token(live: Live) -> None:
    """Given the token set, each route of the document (the pages, their static files,
    /metrics and the document itself included) answers 401 with ``WWW-Authenticate:
    Bearer`` to no token, a wrong one, another scheme or a forged cookie; with the
    token it answers; /health answers to anyone."""
    guarded = [path for path in _routes(live) if path != "/health"]
    assert len(guarded) >= 9

    for path in guarded:
        for headers in WRONG:
            status, answered = await _get(f"{live.base}{path}", headers)
            assert (401, True) == (
                status,
                answered.get("WWW-Authenticate", "").startswith("Bearer"),
            ), (path, headers)
        assert (await _get(f"{live.base}{path}", AUTH))[0] in (200, 204), path
        lower = {"Authorization": f"bearer {TOKEN}"}  # the scheme is case-insensitive
        assert (await _get(f"{live.base}{path}", lower))[0] in (200, 204), path
    assert 200 == (await _get(f"{live.base}/health"))[0]


async def test_the_queries_that_answered_500_answer_400(live: Live) -> None:
    """The inputs issue 13 found (an interval past year 1, a superscript digit) and
    their kin: a 400 that says what is wrong."""
    for query in (
        "since=99999999999D",
        "since=999999999D",
        "since=9999999999999999999999999999999999s",
        "since=0001-01-01T00:00:00%2B05:00",
        "limit=%C2%B2",
        "limit=%D9%A3",
        "limit=" + "9" * 5000,
        "status=%00",
        "since=%ED%A0%80",
    ):
        async with (
            aiohttp.ClientSession(headers=AUTH) as session,
            session.get(f"{live.base}/executions?{query}") as response,
        ):
            assert 400 == response.status, query
            assert "error" in await response.json()
    for query in ("page=%C2%B2", "until=10000-01-01", "page=21"):
        assert 400 == (await _get(f"{live.base}/ui?{query}", AUTH))[0], query


async def test_it_listens_on_loopback_only_by_default(live: Live) -> None:
    """``--http :0`` (no host) binds 127.0.0.1 only: the kernel's table of listening
    sockets shows no other address for its port."""
    port = int(live.base.rsplit(":", 1)[1])
    listening = _listening_addresses(port)

    assert ["127.0.0.1"] == listening


def _listening_addresses(port: int) -> list[str]:
    """The local addresses of the sockets listening on ``port`` (IPv4 and IPv6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(_address(address))
    return found


def _address(hexadecimal: str) -> str:
    raw = bytes.fromhex(hexadecimal)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))


async def test_the_live_document_is_the_one_tested_and_the_token_is_never_logged(
    live: Live,
) -> None:
    served = (await _get(f"{live.base}/openapi.json", AUTH))[0]
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.get(f"{live.base}/openapi.json") as response,
    ):
        document = await response.json()

    assert (200, OPENAPI) == (served, document)
    assert TOKEN not in live.projector.text()
    assert '"token":true' in live.projector.text().replace(" ", "")


async def _ricochet(settings: Settings, *args: str, **env: str) -> tuple[int, str, str]:
    """``ricochet ARGS`` in a subprocess: exit code, stdout, stderr."""
    environment = {
        **os.environ,
        "RICOCHET_AMQP_URL": settings.amqp_url,
        "RICOCHET_NAMESPACE": settings.namespace,
        **env,
    }
    if "RICOCHET_PROJECTOR_TOKEN" not in env:
        environment.pop("RICOCHET_PROJECTOR_TOKEN", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ricochet",
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_status_and_executions_send_the_token_to_the_projector(
    live: Live, http_settings: Settings, tmp_path: Path
) -> None:
    """With the token (here from a file) they read the projector; without it they say
    it asks for one and fold the log instead, with the same answer."""
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    done = live.execution_ids[0]

    code, out, err = await _ricochet(
        http_settings, "executions", "--api", live.base, "--projector-token-file", str(secret)
    )
    assert (0, True) == (code, f"from projector {live.base}" in err), err
    assert done in out

    code, out, err = await _ricochet(
        http_settings, "status", done, "--api", live.base, RICOCHET_PROJECTOR_TOKEN=TOKEN
    )
    assert (0, True) == (code, f"from projector {live.base}" in err), err

    code, out, err = await _ricochet(http_settings, "executions", "--api", live.base)
    assert (0, True) == (code, "it asks for a token" in err), err
    assert done in out
