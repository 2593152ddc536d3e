"""The one TLS context every Ricochet connection to an ``amqps://`` address uses.

Why build it here rather than leave it to aiormq: aiormq makes a context from the
URL's query (``?cafile=``...) with ``ssl.create_default_context``, which is sound,
but cannot require TLS 1.2, and ``?no_verify_ssl=1`` turns every check off. Given
an ``ssl_context`` (``aio_pika.RobustConnection(ssl_context=...)``, kept by aiormq
as ``Connection(context=...)`` and used for every reconnect), aiormq ignores the
query's TLS parameters: so the context is built from the ``tls_*`` settings and the
query's files together (``Settings.tls``), and the rest of the query's TLS
parameters are refused (``ricochet.workers.addresses``).

What the context demands: TLS 1.2 or later; the broker's certificate signed by a CA
in ``tls_ca_file`` (only those: the system's CAs are then left out) or, unset, in the
system's store; its host name checked unless
``tls_verify_hostname`` is false; a client certificate sent when one is configured.

A file that cannot be used (missing, not PEM, a key that does not fit, a key with a
passphrase) ends the start with one line, as ``BrokerUnreachable`` (no retry: a
file does not fix itself), and so do ``tls_*`` settings given with no ``amqps://``
address (the connection would go unencrypted while the settings say otherwise).
"""

from __future__ import annotations

import ssl
from functools import lru_cache

from ricochet.errors import BrokerUnreachable
from ricochet.workers.amqp.causes import unreachable
from ricochet.workers.settings import Settings


def client_context(settings: Settings) -> ssl.SSLContext | None:
    """The context for ``settings``' ``amqps://`` addresses; ``None`` when there is none.

    Built once per process and set of files (they are read at start; a rotated
    certificate is read by the next start)."""
    addresses = settings.amqp_addresses
    files = settings.tls
    try:
        if not any(address.scheme == "amqps" for address in addresses):
            _refuse_unused(files, settings.tls_verify_hostname)
            return None
        return _context(
            files["tls_ca_file"],
            files["tls_cert_file"],
            files["tls_key_file"],
            settings.tls_verify_hostname,
        )
    except ValueError as err:  # raised below, saying which setting and why
        cause = str(err)
        raise BrokerUnreachable(unreachable([(addresses[0], cause)]), (cause,)) from None


def _refuse_unused(files: dict[str, str | None], verify_hostname: bool) -> None:
    named = [name for name, path in files.items() if path]
    if not verify_hostname:
        named.append("tls_verify_hostname")
    if named:
        raise ValueError(
            f"{', '.join(named)} set, but no address is amqps://: refusing to connect without"
            " TLS (use amqps:// and the broker's TLS port, usually 5671)"
        )


@lru_cache(maxsize=8)
def _context(
    ca_file: str | None, cert_file: str | None, key_file: str | None, verify_hostname: bool
) -> ssl.SSLContext:
    context = _trusting(ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = verify_hostname
    if key_file is not None and cert_file is None:
        raise ValueError("tls_key_file set without tls_cert_file: give the certificate too")
    if cert_file is not None:
        _load_client(context, cert_file, key_file)
    return context


def _trusting(ca_file: str | None) -> ssl.SSLContext:
    """A client context trusting only the CAs in ``ca_file`` when given (the system's are
    then left out: a private CA's broker must not be impersonated by any public CA's
    certificate), else the system's."""
    try:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except (OSError, ssl.SSLError) as err:
        raise ValueError(f"tls_ca_file {ca_file!r} cannot be used: {_why(err)}") from None


def _load_client(context: ssl.SSLContext, cert_file: str, key_file: str | None) -> None:
    """The client certificate and its key. A key with a passphrase is refused, never
    asked for: OpenSSL would otherwise prompt on the terminal, and a worker would hang."""

    def no_passphrase() -> str:
        raise ValueError(
            f"tls_key_file {key_file or cert_file!r} is encrypted: give the key without a"
            " passphrase (kept readable by this process only)"
        )

    try:
        context.load_cert_chain(cert_file, key_file, password=no_passphrase)
    except ValueError:
        raise
    except (OSError, ssl.SSLError) as err:
        which = "tls_cert_file" if key_file is None else "tls_cert_file and tls_key_file"
        paths = cert_file if key_file is None else f"{cert_file} and {key_file}"
        raise ValueError(f"{which} ({paths}) cannot be used: {_why(err)}") from None


def _why(error: OSError | ssl.SSLError) -> str:
    """``No such file or directory``, ``key values mismatch``, ``PEM lib``... in a line."""
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason).lower().replace("_", " ")
    text = error.strerror or str(error) or type(error).__name__
    return text[:1].lower() + text[1:]
