"""Provenance: which broker, vhost and namespace a store or a projector folds, and when
two of them are the same deployment."""

from __future__ import annotations

from ricochet.workers.read.provenance import (
    Provenance,
    projector_refusal,
    provenance_of,
    store_mismatch,
)
from ricochet.workers.settings import Settings

HERE = Provenance("amqp://guest@localhost:5672", "shop", "ricochet")


def test_settings_give_the_broker_without_its_password() -> None:
    """The URL keeps scheme, user, host and port; the password and the vhost path go."""
    settings = Settings(amqp_url="amqp://app:s3cret@rabbit.example:5673/shop", namespace="ns")

    actual = provenance_of(settings)

    assert Provenance("amqp://app@rabbit.example:5673", "shop", "ns") == actual
    assert "s3cret" not in actual.describe()


def test_several_addresses_are_all_recorded_in_order() -> None:
    """host[:port] items borrow the first URL's user and vhost (addresses module)."""
    settings = Settings(amqp_url="amqps://app:pw@node-a/%2F, node-b:5672")

    actual = provenance_of(settings)

    assert "amqps://app@node-a:5671,amqps://app@node-b:5672" == actual.broker
    assert "/" == actual.vhost
    assert frozenset({("node-a", 5671), ("node-b", 5672)}) == actual.nodes


def test_the_same_deployment_matches() -> None:
    assert [] == store_mismatch(HERE, HERE)


def test_another_vhost_or_namespace_is_named() -> None:
    """Each part that differs is named, so the error can say which."""
    other = Provenance(HERE.broker, "staging", "other")

    assert ["vhost", "namespace"] == store_mismatch(HERE, other)


def test_a_cluster_listed_otherwise_is_the_same_broker() -> None:
    """Sharing one node is enough: a cluster's address list may be reordered or grow."""
    recorded = Provenance("amqp://guest@a:5672,amqp://guest@b:5672", "shop", "ricochet")
    current = Provenance("amqp://guest@c:5672,amqp://guest@B:5672", "shop", "ricochet")

    assert [] == store_mismatch(recorded, current)


def test_another_broker_with_the_same_names_is_refused() -> None:
    """Two environments on their defaults (vhost /, namespace ricochet) stay apart."""
    staging = Provenance("amqp://guest@staging:5672", "shop", "ricochet")

    assert ["broker"] == store_mismatch(HERE, staging)


def test_a_projector_of_this_vhost_and_namespace_is_used() -> None:
    """The broker is not compared: the projector may reach it by another host name."""
    health = {"broker": "amqp://guest@rabbitmq:5672", "vhost": "shop", "namespace": "ricochet"}

    assert projector_refusal(health, HERE) is None


def test_a_projector_of_another_vhost_is_refused_saying_both() -> None:
    health = {"broker": HERE.broker, "vhost": "staging", "namespace": "ricochet"}

    reason = projector_refusal(health, HERE)

    assert (
        "it folds vhost staging, namespace ricochet; this command reads vhost shop,"
        " namespace ricochet"
    ) == reason


def test_a_projector_that_does_not_say_is_refused() -> None:
    """An older projector's /health names only the namespace; anything else is no projector."""
    assert "does not say" in str(projector_refusal({"namespace": "ricochet"}, HERE))
    assert "not a Ricochet projector" in str(projector_refusal([1, 2], HERE))


def test_what_a_projector_says_is_printed_safely() -> None:
    """A vhost from the network cannot put a control sequence on the terminal."""
    health = {"vhost": "\x1b[2Jgone", "namespace": "ricochet"}

    assert "\\x1b[2Jgone" in str(projector_refusal(health, HERE))
