"""Where folded executions come from: the broker, the vhost and the namespace.

Two deployments that share defaults (vhost ``/``, namespace ``ricochet``) look
alike; a projector's store or API answering for the wrong one would show
another environment's executions as if they were these. So the store records
what it folds and refuses another, ``/health`` says it, and ``status`` and
``executions`` check it before believing a projector. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ricochet.workers.addresses import BrokerAddress
from ricochet.workers.read.text import printable
from ricochet.workers.settings import Settings


@dataclass(frozen=True, slots=True)
class Provenance:
    """A broker (its addresses as URLs without password or vhost), a vhost, a namespace."""

    broker: str
    vhost: str
    namespace: str

    @property
    def nodes(self) -> frozenset[tuple[str, int]]:
        """(host, port) of every address in ``broker``: what "the same broker" compares."""
        found = set()
        for url in self.broker.split(","):
            parts = urlsplit(url.strip())
            if parts.hostname:
                found.add((parts.hostname.lower(), parts.port or 0))
        return frozenset(found)

    def describe(self) -> str:
        """One line naming all three, safe to print whatever the vhost holds."""
        return printable(f"broker {self.broker}, vhost {self.vhost}, namespace {self.namespace}")

    def as_dict(self) -> dict[str, str]:
        return {"broker": self.broker, "vhost": self.vhost, "namespace": self.namespace}


def _without_password(address: BrokerAddress) -> str:
    user = urlsplit(address.url).username
    return f"{address.scheme}://{user + '@' if user else ''}{address.node}"


def provenance_of(settings: Settings) -> Provenance:
    """What a process with these settings reads: every address, in the order given."""
    addresses = settings.amqp_addresses
    return Provenance(
        broker=",".join(_without_password(address) for address in addresses),
        vhost=addresses[0].vhost,
        namespace=settings.namespace,
    )


def store_mismatch(recorded: Provenance, current: Provenance) -> list[str]:
    """What differs between a store's record and this projector: nothing, or the parts.

    The broker counts as the same when the two share a node: a cluster's address
    list may be reordered or grow without making its log another one.
    """
    differs = []
    if not recorded.nodes & current.nodes:
        differs.append("broker")
    if recorded.vhost != current.vhost:
        differs.append("vhost")
    if recorded.namespace != current.namespace:
        differs.append("namespace")
    return differs


def projector_refusal(health: object, wanted: Provenance) -> str | None:
    """Why a projector's ``/health`` is not one to answer for ``wanted``; None if it is.

    Only the vhost and namespace are compared: a projector may reach the same
    broker by another name (a container's host name, a load balancer) than the
    person asking, but another vhost or namespace is always another Ricochet.
    """
    if not isinstance(health, Mapping):
        return "its /health is not a Ricochet projector's"
    vhost, namespace = health.get("vhost"), health.get("namespace")
    if not isinstance(vhost, str) or not isinstance(namespace, str):
        return "it does not say which vhost and namespace it folds (an older projector?)"
    if (vhost, namespace) == (wanted.vhost, wanted.namespace):
        return None
    return printable(
        f"it folds vhost {vhost}, namespace {namespace};"
        f" this command reads vhost {wanted.vhost}, namespace {wanted.namespace}"
    )
