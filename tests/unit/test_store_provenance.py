"""The projector's store records the broker, vhost and namespace it folds, and refuses
to open for another: its offset and states would mean nothing there.

A SQLite file in a temporary folder; no broker.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ricochet.engine import ExecutionState, Status
from ricochet.errors import WrongStore
from ricochet.workers.read.provenance import Provenance
from ricochet.workers.read.store import ProjectionStore

SHOP = Provenance("amqp://guest@localhost:5672", "shop", "ricochet")


def opened(path: Path, provenance: Provenance | None) -> ProjectionStore:
    return ProjectionStore(path, provenance).open()


def test_a_new_store_records_what_it_folds(tmp_path: Path) -> None:
    path = tmp_path / "projection.sqlite3"
    opened(path, SHOP).close()

    store = opened(path, None)
    try:
        assert SHOP == store.recorded()
    finally:
        store.close()


def test_a_store_of_another_vhost_refuses_to_open_naming_both(tmp_path: Path) -> None:
    """One line: the file, what it was made for and what this projector folds."""
    path = tmp_path / "projection.sqlite3"
    opened(path, SHOP).close()
    staging = Provenance(SHOP.broker, "staging", "ricochet")

    with pytest.raises(WrongStore) as refused:
        opened(path, staging)

    message = str(refused.value)
    assert "\n" not in message
    assert f"{path} was made for another vhost" in message
    assert "vhost shop, namespace ricochet" in message
    assert "vhost staging, namespace ricochet" in message


def test_a_refused_store_is_left_closed_and_unlocked(tmp_path: Path) -> None:
    """After a refusal the rightful projector can still open it."""
    path = tmp_path / "projection.sqlite3"
    opened(path, SHOP).close()
    with pytest.raises(WrongStore):
        opened(path, Provenance(SHOP.broker, "shop", "other"))

    opened(path, SHOP).close()


def test_a_store_from_before_the_record_is_adopted_and_says_so(tmp_path: Path) -> None:
    """An old file (states and an offset, no record) is taken over, with a log line."""
    path = tmp_path / "projection.sqlite3"
    old = opened(path, None)
    old.save([ExecutionState("e1", Status.SUCCEEDED, "t:f")], 41)
    old.close()

    with capture_logs() as logs:
        store = opened(path, SHOP)
    try:
        assert (SHOP, 41) == (store.recorded(), store.offset())
    finally:
        store.close()
    adopted = [line for line in logs if line["event"] == "store.adopted"]
    assert [("shop", "ricochet")] == [(line["vhost"], line["namespace"]) for line in adopted]


def test_a_new_store_is_not_reported_as_adopted(tmp_path: Path) -> None:
    with capture_logs() as logs:
        opened(tmp_path / "projection.sqlite3", SHOP).close()

    assert [] == [line for line in logs if line["event"] == "store.adopted"]


def test_the_same_cluster_listed_otherwise_opens_and_is_recorded_anew(tmp_path: Path) -> None:
    path = tmp_path / "projection.sqlite3"
    opened(path, SHOP).close()
    grown = Provenance(f"amqp://guest@other:5672,{SHOP.broker}", "shop", "ricochet")

    opened(path, grown).close()

    with sqlite3.connect(path) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'broker'").fetchone()
    assert (grown.broker,) == row
