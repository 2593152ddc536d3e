"""Why a connection failed, in words a person can act on.

aio-pika and aiormq report a failed connect as whatever the layer below them
raised: ``AMQPConnectionError(111, ...)`` for a closed port,
``ProbableAuthenticationError`` for a refused login, and for a vhost that does
not exist ``InvalidFrameError: Expected one of ['Connection.OpenOk']``. Whoever
reads the error needs the cause and what to do about it, so each kind is named
here; anything else keeps its type and first line. Pure: no I/O.
"""

from __future__ import annotations

import errno as errnos
import shlex
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence

import aiormq.exceptions

from ricochet.workers.addresses import BrokerAddress

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
NOT_ALLOWED = 530
"""RabbitMQ's reply to ``Connection.Open`` for a vhost that does not exist, or that the
user has no permissions on (aiormq keeps only the frame's repr, not its text)."""
ACCESS_REFUSED = 403
PLAIN_AMQP_PORT = 5672


def in_words(
    error: BaseException | None,
    address: BrokerAddress,
    timeout_s: float | None = None,
    *,
    connecting: bool = True,
) -> str:
    """One line saying why connecting to ``address`` failed (``connecting``), or why a
    connection to it was lost, never with its password."""
    chain = list(_chain(error))
    if connecting and _cut_after_tls_handshake(chain, address):
        return CUT_AFTER_TLS_HANDSHAKE
    for explain in EXPLAINERS:
        words = explain(chain, address)
        if words is not None:
            return words
    if any(isinstance(item, TimeoutError) for item in chain):
        after = f" within {timeout_s:g} s" if timeout_s else ""
        return f"timed out: no AMQP answer{after} (is the host reachable and the port right?)"
    return _as_is(error, address)


def unreachable(failures: Sequence[tuple[BrokerAddress, str]]) -> str:
    """The message of ``BrokerUnreachable``: each address tried, with its cause."""
    if len(failures) == 1:
        address, cause = failures[0]
        return f"cannot connect to {address.where}: {cause}"
    listed = "; ".join(f"{address.where}: {cause}" for address, cause in failures)
    return f"cannot connect to any of {len(failures)} broker addresses: {listed}"


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """The error and what it was raised from (aiormq wraps the socket's ``OSError``)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _login(chain: list[BaseException], address: BrokerAddress) -> str | None:
    if not any(_closed_with(item, ACCESS_REFUSED) for item in chain):
        return None
    words = f'login refused for user "{address.user}" (check the user name and password)'
    if address.user == "guest" and address.host not in LOOPBACK:
        words += "; RabbitMQ lets guest log in only from the broker's own host"
    return words


def _closed_with(error: BaseException, code: int) -> bool:
    if code == ACCESS_REFUSED and isinstance(error, aiormq.exceptions.ProbableAuthenticationError):
        return True
    if isinstance(error, aiormq.exceptions.ConnectionClosed):
        return bool(error.args) and error.args[0] == code
    return False


def _mechanism(chain: list[BaseException], address: BrokerAddress) -> str | None:
    for item in chain:
        if isinstance(item, aiormq.exceptions.AuthenticationError) and item.args:
            return (
                f"the broker offers no login mechanism this client has (it offers"
                f" {item.args[0]}; choose one with ?auth= in the URL)"
            )
    return None


def _vhost(chain: list[BaseException], address: BrokerAddress) -> str | None:
    refused_open = any(
        isinstance(item, aiormq.exceptions.InvalidFrameError)
        and "Connection.OpenOk" in str(item)
        and "Connection.Close" in str(item)
        for item in chain
    )
    if not (refused_open or any(_closed_with(item, NOT_ALLOWED) for item in chain)):
        return None
    vhost, user = shlex.quote(address.vhost), shlex.quote(address.user)
    return (
        f'vhost "{address.vhost}" does not exist, or user "{address.user}" has no'
        f" permissions on it (create it: rabbitmqctl add_vhost {vhost}; grant them:"
        f" rabbitmqctl set_permissions -p {vhost} {user} '.*' '.*' '.*')"
    )


NOT_TLS_HINT = " (is it a TLS port? amqps:// usually means port 5671)"
CERTIFICATE_REFUSED_HINT = (
    " (the broker refused the client certificate: is it signed by a CA the broker trusts?)"
)
HANDSHAKE_HINTS = {
    # the other end does not speak TLS (a plain AMQP port, say)
    **dict.fromkeys(
        ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"), NOT_TLS_HINT
    ),
    # TLS 1.3's alert for no client certificate; TLS 1.2 says only "handshake failure"
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": (
        " (the broker requires a client certificate: set tls_cert_file and tls_key_file)"
    ),
    "SSLV3_ALERT_HANDSHAKE_FAILURE": (
        " (does the broker require a client certificate? set tls_cert_file and tls_key_file)"
    ),
    # the broker's alerts for a client certificate it will not take
    **dict.fromkeys(
        (
            "TLSV1_ALERT_UNKNOWN_CA",
            "SSLV3_ALERT_BAD_CERTIFICATE",
            "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
            "SSLV3_ALERT_CERTIFICATE_EXPIRED",
            "TLSV1_ALERT_ACCESS_DENIED",
        ),
        CERTIFICATE_REFUSED_HINT,
    ),
}
"""What to check, by OpenSSL's reason for a failed handshake."""


def _tls(chain: list[BaseException], address: BrokerAddress) -> str | None:
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return _server_certificate(item, address)
        if isinstance(item, ssl.SSLError):
            return _handshake(item, address)
    return None


CUT_AFTER_TLS_HANDSHAKE = (
    "TLS handshake failed: the server closed the connection before AMQP began (a broker"
    " that requires a client certificate does so under TLS 1.3 when none is sent or it"
    " refuses the one sent: check tls_cert_file and tls_key_file)"
)


def _cut_after_tls_handshake(chain: list[BaseException], address: BrokerAddress) -> bool:
    """An ``amqps://`` connection that the server ends, reset or closed, before its first
    AMQP frame, with no TLS alert in hand. Under TLS 1.3 the client's side of the
    handshake is over before the server has checked the client certificate, so the
    refusal's alert arrives after it, or is lost when the reset overtakes it (measured:
    a third of the tries against RabbitMQ 3.10 with ``fail_if_no_peer_cert``)."""
    if address.scheme != "amqps" or any(isinstance(item, ssl.SSLError) for item in chain):
        return False
    return any(
        isinstance(item, aiormq.exceptions.IncompatibleProtocolError)
        or (
            isinstance(item, aiormq.exceptions.AMQPConnectionError)
            and bool(item.args)
            and str(item.args[0]).startswith("Server connection")
        )
        for item in chain
    )


def _server_certificate(error: ssl.SSLCertVerificationError, address: BrokerAddress) -> str:
    """The broker's certificate, refused by this side: not valid for the host name, or not
    signed by a CA this side trusts (or expired...)."""
    why = str(getattr(error, "verify_message", None) or error.strerror or error).rstrip(".")
    if "mismatch" in why:
        return (
            f"TLS certificate not accepted: the broker's certificate is not valid for"
            f' "{address.host}" ({why}); connect by a name the certificate lists, or set'
            " tls_verify_hostname=false"
        )
    return (
        f"TLS certificate not accepted: {why} (the broker's certificate must be signed by a"
        " CA in tls_ca_file, or in the system's store when it is unset)"
    )


def _handshake(error: ssl.SSLError, address: BrokerAddress) -> str:
    """A handshake that failed for another reason, often the broker's refusal of us."""
    reason = str(getattr(error, "reason", None) or "")
    words = reason.lower().replace("_", " ") or str(error.strerror or error)
    plain_port = NOT_TLS_HINT if address.port == PLAIN_AMQP_PORT else ""
    return f"TLS handshake failed: {words}{HANDSHAKE_HINTS.get(reason, plain_port)}"


def _dns(chain: list[BaseException], address: BrokerAddress) -> str | None:
    for item in chain:
        if isinstance(item, socket.gaierror):
            return f'host name "{address.host}" not found ({_lower(item.strerror)})'
    return None


def _refused(chain: list[BaseException], address: BrokerAddress) -> str | None:
    for item in chain:
        if isinstance(item, ConnectionRefusedError) or _errno(item) == errnos.ECONNREFUSED:
            return f"connection refused (is RabbitMQ running and listening on port {address.port}?)"
    return None


def _not_amqp(chain: list[BaseException], address: BrokerAddress) -> str | None:
    for item in chain:
        if isinstance(item, aiormq.exceptions.IncompatibleProtocolError):
            return (
                "the server closed the connection before speaking AMQP (is this RabbitMQ's"
                " AMQP port? a TLS port needs amqps://)"
            )
    return None


def _broker_closed(chain: list[BaseException], address: BrokerAddress) -> str | None:
    """The broker said why it closed the connection (a shutdown, a forced close...)."""
    for item in chain:
        if isinstance(item, aiormq.exceptions.ConnectionClosed) and len(item.args) == 2:
            code, text = item.args
            return f"the broker closed the connection ({code} {text})"
    return None


def _socket(chain: list[BaseException], address: BrokerAddress) -> str | None:
    """Any other socket error (no route to host, network unreachable, reset...)."""
    for item in chain:
        if isinstance(item, aiormq.exceptions.AMQPError | TimeoutError):
            continue  # aiormq's errors carry the socket's words as it raised them: below
        if isinstance(item, OSError) and item.strerror:
            return _lower(item.strerror)
    return None


EXPLAINERS: tuple[Callable[[list[BaseException], BrokerAddress], str | None], ...] = (
    _login,
    _mechanism,
    _vhost,
    _tls,
    _dns,
    _refused,
    _not_amqp,
    _broker_closed,
    _socket,
)
"""Tried in order; the first that recognises the error words it. The broker's answers
come first: they wrap nothing, while a socket error may be wrapped in several layers."""


def _errno(error: BaseException) -> int | None:
    if isinstance(error, OSError) and isinstance(error.errno, int):
        return error.errno
    if isinstance(error, aiormq.exceptions.AMQPConnectionError) and error.args:
        first = error.args[0]
        return first if isinstance(first, int) else None
    return None


def _lower(text: str | None) -> str:
    """``No route to host`` as part of a sentence; ``ACCESS_REFUSED`` stays as it is."""
    text = text or "unknown error"
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _as_is(error: BaseException | None, address: BrokerAddress) -> str:
    """What nothing above recognised: its type and the first line of its message."""
    if error is None:
        return "the connection closed"
    message = str(error).replace(address.url, address.shown).strip()
    first = message.splitlines()[0] if message else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
