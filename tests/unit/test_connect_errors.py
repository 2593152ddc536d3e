"""A failed connect in words (``workers.amqp.causes``) and the start-up backoff: pure rules.

The errors are built the way aiormq raises them (measured with aio-pika 10.2 /
aiormq 7.2 against RabbitMQ 3.10: see ``tests/integration/test_first_hour.py``
for the same causes from a real broker).
"""

from __future__ import annotations

import socket
import ssl

import aiormq.exceptions
import pytest

from ricochet.workers.addresses import parse_addresses
from ricochet.workers.amqp.broker import STARTUP_PAUSES_S, startup_pause
from ricochet.workers.amqp.causes import in_words, unreachable

SECRET = "pa55-w0rd"
ADDRESS = parse_addresses(f"amqp://bob:{SECRET}@rmq.example:5673/shop?heartbeat=5")[0]


def wrapped(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` raised from ``inner``, as aiormq wraps the socket's error."""
    outer.__cause__ = inner
    return outer


def test_the_address_is_shown_without_password_or_query() -> None:
    assert "amqp://bob@rmq.example:5673/shop" == ADDRESS.shown
    assert 'amqp://bob@rmq.example:5673/shop (host rmq.example, port 5673, vhost "shop")' == (
        ADDRESS.where
    )


def test_a_default_port_and_vhost_are_spelled_out() -> None:
    address = parse_addresses("amqp://localhost")[0]

    assert 'amqp://localhost:5672/ (host localhost, port 5672, vhost "/")' == address.where
    assert "guest" == address.user


REFUSED = wrapped(
    aiormq.exceptions.AMQPConnectionError(111, "Connection refused"),
    ConnectionRefusedError(111, "Connection refused"),
)
CASES = {
    "refused": (REFUSED, "connection refused (is RabbitMQ running and listening on port 5673?)"),
    "dns": (
        wrapped(
            aiormq.exceptions.AMQPConnectionError(-2, "Name or service not known"),
            socket.gaierror(-2, "Name or service not known"),
        ),
        'host name "rmq.example" not found (name or service not known)',
    ),
    "timeout": (TimeoutError(), "timed out: no AMQP answer within 15 s"),
    "login": (
        aiormq.exceptions.ProbableAuthenticationError("ACCESS_REFUSED - Login was refused"),
        'login refused for user "bob" (check the user name and password)',
    ),
    "vhost": (
        aiormq.exceptions.InvalidFrameError(
            "Expected one of ['Connection.OpenOk'], got <Connection.Close object at 0x7f>"
        ),
        'vhost "shop" does not exist, or user "bob" has no permissions on it (create it:'
        " rabbitmqctl add_vhost shop; grant them: rabbitmqctl set_permissions -p shop bob",
    ),
    "vhost refused by code": (
        aiormq.exceptions.ConnectionClosed(530, "NOT_ALLOWED - vhost shop not found"),
        'vhost "shop" does not exist',
    ),
    "tls": (
        wrapped(
            aiormq.exceptions.AMQPConnectionError(1, "[SSL: WRONG_VERSION_NUMBER]"),
            ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
        ),
        "TLS handshake failed: ",
    ),
    "certificate": (
        ssl.SSLCertVerificationError(1, "certificate verify failed"),
        "TLS certificate not accepted: ",
    ),
    "no route": (
        wrapped(
            aiormq.exceptions.AMQPConnectionError(113, "No route to host"),
            OSError(113, "No route to host"),
        ),
        "no route to host",
    ),
    "closed by the broker": (
        aiormq.exceptions.ConnectionClosed(320, "CONNECTION_FORCED - broker forced closure"),
        "the broker closed the connection (320 CONNECTION_FORCED - broker forced closure)",
    ),
    "not amqp": (
        aiormq.exceptions.IncompatibleProtocolError("EOF"),
        "the server closed the connection before speaking AMQP",
    ),
    "anything else": (RuntimeError("odd\nsecond line"), "RuntimeError: odd"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_cause_is_named_in_words(case: str) -> None:
    error, expected = CASES[case]

    words = in_words(error, ADDRESS, 15)

    assert words.startswith(expected), words
    assert "\n" not in words
    assert SECRET not in words


def test_an_error_quoting_the_url_does_not_show_its_password() -> None:
    words = in_words(RuntimeError(f"failed on {ADDRESS.url}"), ADDRESS)

    assert f"RuntimeError: failed on {ADDRESS.shown}" == words


def test_guest_from_another_host_is_told_why_it_may_be_refused() -> None:
    remote = parse_addresses("amqp://guest:guest@rmq.example/")[0]
    local = parse_addresses("amqp://guest:guest@localhost/")[0]
    refused = aiormq.exceptions.ProbableAuthenticationError("ACCESS_REFUSED")

    assert "only from the broker's own host" in in_words(refused, remote)
    assert "only from the broker's own host" not in in_words(refused, local)


def test_the_message_names_one_address_or_each_with_its_cause() -> None:
    other = parse_addresses(f"amqp://bob:{SECRET}@rmq.example:5673/shop,rmq-2")[1]

    one = unreachable([(ADDRESS, "connection refused")])
    two = unreachable([(ADDRESS, "connection refused"), (other, "timed out")])

    assert (
        "cannot connect to amqp://bob@rmq.example:5673/shop"
        ' (host rmq.example, port 5673, vhost "shop"): connection refused'
    ) == one
    assert (
        "cannot connect to any of 2 broker addresses:"
        ' amqp://bob@rmq.example:5673/shop (host rmq.example, port 5673, vhost "shop"):'
        " connection refused;"
        ' amqp://bob@rmq-2:5672/shop (host rmq-2, port 5672, vhost "shop"): timed out'
    ) == two
    assert SECRET not in one + two


def test_start_up_pauses_grow_then_stay_at_the_cap() -> None:
    """Capped exponential backoff, without jitter when ``chance`` is 0.5."""
    pauses = [startup_pause(tries) for tries in range(9)]

    assert [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0] == pauses


@pytest.mark.parametrize("tries", range(len(STARTUP_PAUSES_S) + 1))
def test_start_up_pauses_vary_by_a_fifth_at_most(tries: int) -> None:
    middle = startup_pause(tries)

    low, high = startup_pause(tries, 0.0), startup_pause(tries, 0.999999)

    assert pytest.approx(0.8 * middle) == low
    assert pytest.approx(1.2 * middle, rel=1e-5) == high
