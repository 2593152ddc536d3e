"""TLS end to end (issue 13, item 3), against a RabbitMQ node of this module.

The node (``tests.integration.tls_node``) listens only for TLS and requires a
client certificate signed by its CA; its certificate is for ``localhost`` only.
A worker and a client run work over it with the ``tls_*`` settings; a client that
trusts another CA, sends no client certificate, or connects by a name the
certificate does not list is refused with the usual one line, the cause in words,
from ``Client`` and from the command line alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from ricochet.contracts import AttemptStarted
from ricochet.errors import BrokerUnreachable
from ricochet.workers.amqp.broker import connect
from ricochet.workers.client.client import Client
from ricochet.workers.settings import Settings
from tests.integration import tasks
from tests.integration.cluster import run_ctl
from tests.integration.harness import log_events, run_cli, running_worker
from tests.integration.tls_node import TLS_PORT, TlsNode, tls_node


@pytest.fixture(scope="module")
def node() -> Iterator[TlsNode]:
    """One node for the module: starting it costs seconds, every test here shares it."""
    with tls_node() as started:
        yield started


def tls_settings(node: TlsNode, namespace: str, **given: Any) -> Settings:
    """Settings for the node: by default its CA and the client certificate it requires."""
    certs = node.certs
    values: dict[str, Any] = {
        "amqp_url": node.url(),
        "namespace": namespace,
        "tls_ca_file": str(certs.ca),
        "tls_cert_file": str(certs.client_cert),
        "tls_key_file": str(certs.client_key),
        **given,
    }
    return Settings.model_validate({k: v for k, v in values.items() if v is not None})


def connections(node: TlsNode) -> list[dict[str, Any]]:
    """The node's client connections as RabbitMQ sees them: TLS or not, the client's
    certificate."""
    listed = run_ctl(
        node.name,
        "list_connections",
        "name",
        "ssl",
        "ssl_protocol",
        "peer_cert_subject",
        "client_properties",
        "--formatter",
        "json",
    )
    rows: list[dict[str, Any]] = json.loads(listed)
    return rows


async def ricochet(settings: Settings, *args: str, timeout: float = 60) -> tuple[int, str]:
    """``ricochet ARGS`` with ``settings`` given by their environment variables only."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RICOCHET_")}
    for name in ("amqp_url", "namespace", "tls_ca_file", "tls_cert_file", "tls_key_file"):
        value = getattr(settings, name)
        if value is not None:
            env[f"RICOCHET_{name.upper()}"] = str(value)
    env["RICOCHET_TLS_VERIFY_HOSTNAME"] = str(settings.tls_verify_hostname).lower()
    code, _, err = await run_cli(env, *args, timeout=timeout)
    return code, err


async def test_a_worker_and_a_client_run_a_task_with_retries_over_tls(
    node: TlsNode, namespace: str
) -> None:
    """Given the node's CA and a client certificate in the tls_* settings (and
    ``ricochet topology`` run with them as RICOCHET_TLS_* variables),
    when a worker and a client run a task that fails twice and then succeeds,
    then it ends with its result after three attempts, and every connection the node
    has is TLS 1.2+ and carries the client certificate."""
    settings = tls_settings(node, namespace)
    code, stderr = await ricochet(settings, "topology")
    assert 0 == code, stderr

    async with Client(settings) as client, running_worker(settings, tasks.ALL):
        handle = await client.submit("t.twice_then_ok")
        assert "third time lucky" == await handle.result(timeout=30)
        seen = connections(node)

    events = await log_events(settings, handle.id)
    assert [1, 2, 3] == [e.attempt for e in events if isinstance(e, AttemptStarted)]
    assert len(seen) >= 2, seen  # the client's and the worker's, at least
    for row in seen:
        assert row["ssl"] is True, row
        assert row["ssl_protocol"] in ("tlsv1.2", "tlsv1.3"), row
        assert "CN=ricochet-test-client" in row["peer_cert_subject"], row


REFUSALS: dict[str, tuple[dict[str, str | None], tuple[str, ...]]] = {
    "other-ca": (  # a CA that did not sign the broker's certificate
        {"tls_ca_file": "other_ca"},
        (
            "TLS certificate not accepted: self-signed certificate in certificate chain (the"
            " broker's certificate must be signed by a CA in tls_ca_file",
        ),
    ),
    "no-client-certificate": (
        {"tls_cert_file": None, "tls_key_file": None},
        # the broker's alert, or (when the reset overtakes it) the cut after the handshake
        ("TLS handshake failed: ", "client certificate", "tls_cert_file and tls_key_file"),
    ),
    "other-host-name": (  # a name the broker's certificate does not list
        {"amqp_url": "127.0.0.1"},
        (
            "TLS certificate not accepted: the broker's certificate is not valid for"
            ' "127.0.0.1" (IP address mismatch',
        ),
    ),
}
"""Per refusal: what differs from the good settings, and what the error must say."""


def refused_settings(node: TlsNode, namespace: str, case: str) -> Settings:
    changes, _ = REFUSALS[case]
    given: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "amqp_url":
            given[name] = node.url(str(value))
        elif value is not None:
            given[name] = str(getattr(node.certs, value))
        else:
            given[name] = None
    settings = tls_settings(node, namespace)
    return Settings.model_validate({**settings.model_dump(), **given})


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_a_client_is_refused_with_the_cause_in_words(
    node: TlsNode, namespace: str, case: str
) -> None:
    """Given settings that differ from the good ones in one way, when a client opens,
    then it raises ``BrokerUnreachable`` with one line naming the address and why."""
    settings = refused_settings(node, namespace, case)

    with pytest.raises(BrokerUnreachable) as raised:
        async with Client(settings):
            pass

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("cannot connect to amqps://guest@"), message
    assert f"port {TLS_PORT}" in message
    for words in REFUSALS[case][1]:
        assert words in message, message
    assert ":guest@" not in message


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_a_command_is_refused_in_one_line(node: TlsNode, namespace: str, case: str) -> None:
    """The same refusals from ``ricochet replay``, the settings in RICOCHET_TLS_*: one
    stderr line with the cause, exit 2, no traceback."""
    settings = refused_settings(node, namespace, case)

    code, stderr = await ricochet(settings, "replay")

    assert (2, 1) == (code, len(stderr.splitlines())), stderr
    assert stderr.startswith("error: cannot connect to amqps://guest@"), stderr
    for words in REFUSALS[case][1]:
        assert words in stderr, stderr


async def test_the_host_name_check_can_be_turned_off(node: TlsNode, namespace: str) -> None:
    """Given the address 127.0.0.1, which the certificate does not list (refused above),
    when ``tls_verify_hostname`` is false, then the connection is made, over TLS: the
    certificate is still checked against the CA."""
    settings = tls_settings(
        node, namespace, amqp_url=node.url("127.0.0.1"), tls_verify_hostname=False
    )

    connection = await connect(settings, "test")
    try:
        assert connection.connected.is_set()
    finally:
        await connection.close()

    other_ca = tls_settings(
        node,
        namespace,
        amqp_url=node.url("127.0.0.1"),
        tls_verify_hostname=False,
        tls_ca_file=str(node.certs.other_ca),
    )
    with pytest.raises(BrokerUnreachable, match="TLS certificate not accepted: self-signed"):
        await connect(other_ca, "test")


async def test_the_url_query_files_of_before_keep_working(node: TlsNode, namespace: str) -> None:
    """``amqps://...?cafile=&certfile=&keyfile=`` (aiormq's names, which worked before the
    settings) count as the tls_* settings: a command given only the URL runs."""
    certs = node.certs
    query = f"?cafile={certs.ca}&certfile={certs.client_cert}&keyfile={certs.client_key}"
    settings = Settings(amqp_url=node.url() + query, namespace=namespace)

    code, stderr = await ricochet(settings, "topology")
    assert 0 == code, stderr

    async with Client(settings):
        pass
