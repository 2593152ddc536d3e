"""Broker addresses: ``RICOCHET_AMQP_URL`` may list several, separated by commas.

Why a list: aio-pika reconnects to the one host it was given, so a process
pointed at a stopped cluster node would stall for the whole outage. With
several addresses every connection tries the next one instead
(``ricochet.workers.amqp.broker.connect``).

The format, checked when ``Settings`` is built:

- the first item is a full URL: ``amqp[s]://user:password@host[:port]/vhost[?query]``;
- every further item is either a full URL or just ``host[:port]``, which takes
  the scheme, credentials, vhost and query of the first item;
- every address names the same vhost (another vhost is another Ricochet) and
  the same user (events carry it as their writer, ``amqp.trust``: a fail-over must
  not change who writes), and no address is given twice;
- TLS files may be given in the query as aiormq reads them (``?cafile=``,
  ``?certfile=``, ``?keyfile=``): they count as the ``tls_*`` settings (``tls_files``).
  aiormq's other TLS parameters are refused: ``?no_verify_ssl=1`` turns every check
  off, and ``?capath=``/``?cadata=`` have a file-based twin (``TLS_QUERY_REFUSED``).

Pure parsing, no I/O. Nothing here puts a password into a message or a repr.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit, urlunsplit

from ricochet.errors import AddressError

SCHEMES = {"amqp": 5672, "amqps": 5671}
"""Accepted schemes and their default ports."""

TLS_QUERY = {"cafile": "tls_ca_file", "certfile": "tls_cert_file", "keyfile": "tls_key_file"}
"""aiormq's TLS file parameters, which worked before the ``tls_*`` settings: the setting
each one stands for."""
TLS_QUERY_REFUSED = {
    "no_verify_ssl": "it would turn off every check of the broker's certificate; give the CA"
    " that signed it as tls_ca_file, or set tls_verify_hostname=false if only the host name"
    " differs",
    "capath": "give the CA certificates as one PEM file in tls_ca_file instead",
    "cadata": "give the CA certificates as one PEM file in tls_ca_file instead",
}
"""aiormq's other TLS parameters, refused with what to do instead: Ricochet builds the TLS
context itself (``ricochet.workers.amqp.tls``), so aiormq would silently ignore them."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """One broker node to connect to; ``url`` (with the password) stays out of the repr."""

    url: str = field(repr=False)
    scheme: str
    host: str
    port: int
    vhost: str

    @property
    def node(self) -> str:
        """``host:port``, the way logs name the node a connection is on."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def label(self) -> str:
        """Node and vhost, never credentials: safe for logs and errors."""
        return f"{self.node} (vhost {self.vhost})"

    @property
    def user(self) -> str:
        """The user name the URL logs in as (aio-pika's default, guest, when it names none)."""
        return unquote(urlsplit(self.url).username or "guest")

    @property
    def shown(self) -> str:
        """The URL as a person can check it against what they typed: scheme, user, host,
        port and vhost, without the password (and without the query, which holds TLS
        file paths and tuning, nothing that says which broker)."""
        parts = urlsplit(self.url)
        user = f"{parts.username}@" if parts.username else ""
        return f"{self.scheme}://{user}{self.node}{parts.path or '/'}"

    @property
    def tls_query(self) -> dict[str, str]:
        """The TLS files this URL's query names, by the setting each stands for."""
        query = parse_qs(urlsplit(self.url).query)
        return {setting: query[key][0] for key, setting in TLS_QUERY.items() if key in query}

    @property
    def where(self) -> str:
        """``shown`` with host, port and vhost spelled out, for one-line errors."""
        return f'{self.shown} (host {self.host}, port {self.port}, vhost "{self.vhost}")'


def masked(url: str) -> str:
    """``url`` with its password (if any) replaced, for error messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unreadable URL>"
    if not password:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:******@{hostport}"))


def parse_addresses(text: str) -> tuple[BrokerAddress, ...]:
    """Every address in ``text``, in order; raises ``AddressError`` saying which item is wrong."""
    items = [item.strip() for item in text.split(",")]
    if items == [""]:
        raise AddressError("RICOCHET_AMQP_URL is empty: give at least one amqp:// URL")
    first = _full(items[0], 1, len(items))
    addresses = [first]
    template = urlsplit(items[0])
    for position, item in enumerate(items[1:], start=2):
        if "://" in item:
            addresses.append(_full(item, position, len(items)))
        else:
            addresses.append(_short(item, template, position, len(items)))
    _check_together(addresses)
    return tuple(addresses)


def _where(position: int, count: int, item: str) -> str:
    return f"RICOCHET_AMQP_URL address {position} of {count} ({masked(item)!r})"


def _full(item: str, position: int, count: int) -> BrokerAddress:
    """A whole ``amqp[s]://`` URL."""
    where = _where(position, count, item)
    if not item:
        raise AddressError(f"{where} is empty: remove the stray comma")
    parts = urlsplit(item)
    if parts.scheme not in SCHEMES or not item.lower().startswith(f"{parts.scheme}://"):
        first = " (the first must be a full URL)" if position == 1 else ""
        raise AddressError(f"{where} is not an amqp:// or amqps:// URL{first}")
    return _address(item, parts, where)


def _short(item: str, template: SplitResult, position: int, count: int) -> BrokerAddress:
    """``host[:port]``, with everything else taken from the first URL."""
    where = _where(position, count, item)
    if not item:
        raise AddressError(f"{where} is empty: remove the stray comma")
    hostport = urlsplit(f"//{item}")
    if hostport.path or hostport.query or hostport.fragment or "@" in item:
        raise AddressError(f"{where} is neither a full amqp:// URL nor host[:port]")
    userinfo = template.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{item}" if userinfo else item
    url = urlunsplit(template._replace(netloc=netloc))
    return _address(url, urlsplit(url), where)


def _address(url: str, parts: SplitResult, where: str) -> BrokerAddress:
    try:
        port = parts.port
    except ValueError:
        raise AddressError(f"{where} has a port that is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise AddressError(f"{where} names no host")
    if port == 0:
        raise AddressError(f"{where} has port 0")
    _refuse_tls_query(parts, where)
    vhost = unquote(parts.path[1:]) if parts.path not in ("", "/") else "/"
    return BrokerAddress(
        url=url,
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or SCHEMES[parts.scheme],
        vhost=vhost,
    )


def _refuse_tls_query(parts: SplitResult, where: str) -> None:
    query = parse_qs(parts.query)
    for key, instead in TLS_QUERY_REFUSED.items():
        if key in query and not (key == "no_verify_ssl" and query[key] == ["0"]):
            raise AddressError(f"{where} has ?{key}=, which Ricochet does not take: {instead}")


def tls_files(
    addresses: Sequence[BrokerAddress], given: Mapping[str, str | None]
) -> dict[str, str | None]:
    """The TLS files to use: the ``tls_*`` settings ``given``, or else what the URLs'
    queries name. Raises ``AddressError`` when two of them name different files for one
    setting: which one was meant cannot be guessed, and one TLS context serves all."""
    chosen = dict(given)
    named_by: dict[str, str] = {name: f"{name} setting" for name, path in given.items() if path}
    for position, address in enumerate(addresses, start=1):
        for setting, path in address.tls_query.items():
            if chosen.get(setting) in (None, path):
                chosen[setting] = path
                named_by.setdefault(setting, f"address {position}'s query")
                continue
            raise AddressError(
                f"RICOCHET_AMQP_URL address {position} ({address.node}) names another"
                f" {setting} in its query than the {named_by[setting]} does: give it once"
            )
    return chosen


def _check_together(addresses: list[BrokerAddress]) -> None:
    """One vhost and one user for all, and no node twice (a typo, or a list pasted twice)."""
    vhosts = {address.vhost for address in addresses}
    if len(vhosts) > 1:
        raise AddressError(
            f"RICOCHET_AMQP_URL names several vhosts ({', '.join(sorted(map(repr, vhosts)))}):"
            " every address must reach the same vhost"
        )
    users = {address.user for address in addresses}
    if len(users) > 1:
        raise AddressError(
            f"RICOCHET_AMQP_URL logs in as several users ({', '.join(sorted(map(repr, users)))}):"
            " every address must use the same user, the one its events are trusted as written by"
        )
    seen: set[tuple[str, int]] = set()
    for position, address in enumerate(addresses, start=1):
        key = (address.host.lower(), address.port)
        if key in seen:
            raise AddressError(
                f"RICOCHET_AMQP_URL address {position} ({address.node}) is given twice"
            )
        seen.add(key)
