"""deploy/compose.yaml, run for real without Docker: each service's command and environment
exactly as compose would give them, against the test broker.

Only what names this host changes: the broker's host becomes the run's vhost on
localhost, the namespace (and with it the ``<ns>-<role>`` user names) a random one,
and host paths and ports free ones. The users come from the ``roles`` service's own
command, loaded as the ``rabbitmq`` service's ``load_definitions`` would; then
``topology`` declares, the worker and the projector start, and the client's command
from the file's header runs the demo task. So a wrong user in a URL, a writer set
that leaves out a writer, a token the projector does not ask for, or a command the
CLI refuses fails here, not in someone's first deploy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from ricochet.workers.amqp.permissions import ROLES, password_variable
from ricochet.workers.settings import Settings
from tests import broker
from tests.integration.access import delete_users, import_definitions
from tests.integration.harness import REPO, eventually, run_cli
from tests.unit.deploy_files import COMPOSE_FILE, compose

SUBSTITUTION = re.compile(r"\$\{(RICOCHET_[A-Z_]+):\?[^}]*\}")
"""``${VAR:?message}``: compose's required variables (the file has no other kind)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Here:
    """What turns a compose value into this host's: broker, namespace, secrets."""

    def __init__(self, settings: Settings, secrets_env: dict[str, str]) -> None:
        self.namespace = settings.namespace
        self.vhost = broker.vhost_of(settings.amqp_url)
        parts = urlsplit(settings.amqp_url)
        self.broker = f"{parts.hostname}:{parts.port or 5672}"
        """The run's broker (3.10 on localhost:5672, or deploy/test.sh's 4.x node)."""
        self.secrets = secrets_env

    def value(self, text: str) -> str:
        """Users renamed first, then the run's vhost put in (its name starts ``ricochet-``
        too, and must stay as it is)."""
        text = SUBSTITUTION.sub(lambda found: self.secrets[found.group(1)], text)
        text = re.sub(r"\bricochet-(?=[a-z-]+\b)", f"{self.namespace}-", text)
        vhost = quote(self.vhost, safe="")
        text = text.replace("@rabbitmq:5672/", f"@{self.broker}/{vhost}")
        return text.replace("//rabbitmq:5672/", f"//{self.broker}/{vhost}")

    def env(self, service: dict[str, Any]) -> dict[str, str]:
        """The service's environment, on this host; nothing of the test's own RICOCHET_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RICOCHET_")}
        given = {k: self.value(str(v)) for k, v in service.get("environment", {}).items()}
        return {**env, **given, "RICOCHET_NAMESPACE": self.namespace}


@pytest.fixture
def here(settings: Settings, tmp_path: Path) -> Iterator[Here]:
    """The users of every role, made by the ``roles`` service's command and loaded; deleted
    after the test whatever happens."""
    if not broker.can_admin(settings.amqp_url):
        pytest.fail("this test creates RabbitMQ users: it needs a local rabbitmqctl")
    passwords = {password_variable(role): secrets.token_hex(16) for role in ROLES}
    local = Here(settings, {**passwords, "RICOCHET_PROJECTOR_TOKEN": secrets.token_hex(24)})
    service = compose()["services"]["roles"]
    shell = service["command"][0]
    args = shlex.split(shell.split(">", 1)[0])
    assert args[:3] == ["ricochet", "roles", "definitions"], shell
    passwords_file = tmp_path / "passwords"
    passwords_file.write_text("".join(f"{k}={v}\n" for k, v in passwords.items()))
    args = [str(passwords_file) if a == "/run/secrets/passwords" else a for a in args]
    made = subprocess.run(
        [sys.executable, "-m", "ricochet", *args[1:]],
        env=local.env(service),
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )
    definitions = json.loads(made.stdout)
    assert [{"name": local.vhost}] == definitions["vhosts"], "the run's own vhost, no other"
    users = [user["name"] for user in definitions["users"]]
    assert sorted(users) == sorted(f"{settings.namespace}-{role}" for role in ROLES)
    try:
        import_definitions(made.stdout)
        yield local
    finally:
        delete_users(users)


@contextlib.asynccontextmanager
async def running(env: dict[str, str], args: list[str], log: Path) -> AsyncIterator[None]:
    """``ricochet ARGS`` in the background for the block, stopped after it."""
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ricochet", *args, env=env, cwd=REPO, stderr=sink, stdout=sink
        )
        try:
            yield
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


def with_option(args: list[str], option: str, value: str) -> list[str]:
    """``args`` with ``option``'s value replaced (it must be there: the file sets it)."""
    at = args.index(option)
    return [*args[: at + 1], value, *args[at + 2 :]]


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, b""
    except OSError:
        return 0, b""


def client_command() -> list[str]:
    """The client command the file's header tells a user to run."""
    header = COMPOSE_FILE.read_text(encoding="utf-8")
    found = re.search(r"run --rm client (.+)$", header, re.MULTILINE)
    assert found is not None, "the header shows how to run the client"
    return shlex.split(found.group(1))


@pytest.mark.timeout(240)
async def test_the_compose_services_run_as_their_users(here: Here, tmp_path: Path) -> None:
    services = compose()["services"]
    token = here.secrets["RICOCHET_PROJECTOR_TOKEN"]

    topology = services["topology"]
    code, out, err = await run_cli(here.env(topology), *topology["command"], timeout=90)
    assert code == 0, err[-2000:]
    assert f"{here.namespace}.events" in out

    metrics_port = free_port()
    worker_args = with_option(
        list(services["worker"]["command"]), "--metrics-port", str(metrics_port)
    )
    http_port = free_port()
    projector_args = with_option(
        list(services["projector"]["command"]), "--store", str(tmp_path / "projection.sqlite3")
    )
    projector_args = with_option(projector_args, "--http", f"127.0.0.1:{http_port}")
    worker_env, projector_env = here.env(services["worker"]), here.env(services["projector"])

    async with (
        running(worker_env, worker_args, tmp_path / "worker.log"),
        running(projector_env, projector_args, tmp_path / "projector.log"),
    ):
        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        await eventually(lambda: http_get(metrics)[0] == 200, timeout=60)
        code, out, err = await run_cli(here.env(services["client"]), *client_command(), timeout=120)
        assert code == 0, err[-3000:]
        assert '"charged": true' in out or '"charged":true' in out, out

        base = f"http://127.0.0.1:{http_port}"
        assert 200 == (await asyncio.to_thread(http_get, f"{base}/health"))[0]
        assert 401 == (await asyncio.to_thread(http_get, f"{base}/executions"))[0]

        def listed() -> bool:
            status, body = http_get(f"{base}/executions?status=succeeded", token)
            return status == 200 and b"demo.flaky" in body

        await eventually(lambda: asyncio.to_thread(listed), timeout=60, every=0.5)

    worker_log = (tmp_path / "worker.log").read_text(errors="replace")
    projector_log = (tmp_path / "projector.log").read_text(errors="replace")
    assert "event.untrusted" not in worker_log + projector_log, "the writer set lists every writer"
