"""Bounded storage, in the declared arguments and the parking of dead letters (issue 13,
item 5). The broker-side proof is in tests/integration/test_bounded_storage.py."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from ricochet.contracts import (
    EXECUTION_HEADER,
    ORIGINAL_BYTES_HEADER,
    ORIGINAL_SHA256_HEADER,
)
from ricochet.workers.amqp.mismatch import mismatch
from ricochet.workers.amqp.topology import (
    MAX_SEGMENT_BYTES,
    MIN_SEGMENT_BYTES,
    Names,
    checkpoints,
    dead_letters,
    event_log,
)
from ricochet.workers.delivery.settle import cut_body
from ricochet.workers.settings import Settings

NAMES = Names("ns")
GIB = 1024**3


def test_the_event_log_is_bounded_by_size_beside_age_in_twentieths() -> None:
    arguments = event_log(NAMES, Settings()).arguments
    assert "7D" == arguments["x-max-age"]
    assert 5 * GIB == arguments["x-max-length-bytes"]
    assert 5 * GIB // 20 == arguments["x-stream-max-segment-size-bytes"]


@pytest.mark.parametrize(
    ("bound", "segment"),
    [(4 * 1024**2, MIN_SEGMENT_BYTES), (200 * GIB, MAX_SEGMENT_BYTES), (2 * GIB, 2 * GIB // 20)],
)
def test_segments_stay_between_1_mib_and_the_brokers_default(bound: int, segment: int) -> None:
    arguments = event_log(NAMES, Settings(stream_max_bytes=bound)).arguments
    assert segment == arguments["x-stream-max-segment-size-bytes"]


def test_zero_declares_the_stream_and_the_dead_queue_as_before_the_bounds() -> None:
    """What queues made by earlier versions have: they keep starting with 0."""
    unbounded = Settings(stream_max_bytes=0, dead_letter_max_bytes=0)
    assert {"x-queue-type": "stream", "x-max-age": "7D"} == event_log(NAMES, unbounded).arguments
    assert {"x-queue-type": "quorum"} == dead_letters(NAMES, unbounded).arguments


def test_the_dead_letter_queue_keeps_the_newest_up_to_its_bound() -> None:
    arguments = dead_letters(NAMES, Settings(dead_letter_max_bytes=12345)).arguments
    assert ("quorum", 12345, "drop-head") == (
        arguments["x-queue-type"],
        arguments["x-max-length-bytes"],
        arguments["x-overflow"],
    )


def test_the_checkpoint_stream_stays_bounded_as_it_was() -> None:
    """Its arguments are fixed on every deployment already: unchanged, so none breaks."""
    arguments = checkpoints(NAMES, Settings()).arguments
    assert 256 * 1024**2 == arguments["x-max-length-bytes"]
    assert 16 * 1024**2 == arguments["x-stream-max-segment-size-bytes"]


BROKER_SAYS = (
    "PRECONDITION_FAILED - inequivalent arg 'x-max-length-bytes' for queue 'ns.events' in"
    " vhost 'prod': received the value '5368709120' of type 'long' but current is none"
)


def test_a_refused_declare_says_what_differs_and_what_to_do() -> None:
    text = str(mismatch("ns.events", BROKER_SAYS))
    assert "\n" not in text
    assert "queue 'ns.events' in vhost 'prod' was created with another x-max-length-bytes" in text
    assert "received the value '5368709120' of type 'long' but current is none" in text
    assert "RICOCHET_STREAM_MAX_BYTES to the queue's value (0 leaves the bound out" in text
    assert "rabbitmqctl set_policy -p prod ns.events-bound '^ns\\.events$'" in text
    assert '{"max-length-bytes": VALUE}' in text
    assert text.endswith("or use a new --namespace.")


def test_the_dead_queue_gets_its_own_setting_and_policy() -> None:
    text = str(mismatch("ns.dead", BROKER_SAYS.replace("ns.events", "ns.dead")))
    assert "RICOCHET_DEAD_LETTER_MAX_BYTES" in text
    assert '{"max-length-bytes": VALUE, "overflow": "drop-head"}' in text


def test_an_unknown_refusal_is_still_one_clear_line() -> None:
    text = str(mismatch("ns.dead", "PRECONDITION_FAILED - something new"))
    assert "queue 'ns.dead' exists with other arguments or another type" in text
    assert "something new" in text


def test_a_body_within_the_bound_is_parked_whole() -> None:
    assert (b"x" * 100, {}) == cut_body(b"x" * 100, 100)


def test_a_body_over_the_bound_is_cut_with_its_size_and_hash() -> None:
    body = orjson.dumps({"type": "work.v1", "execution_id": "e-1", "args": ["y" * 5000]})
    cut, headers = cut_body(body, 64)
    assert body[:64] == cut
    assert {
        ORIGINAL_BYTES_HEADER: len(body),
        ORIGINAL_SHA256_HEADER: hashlib.sha256(body).hexdigest(),
        EXECUTION_HEADER: "e-1",
    } == headers


@pytest.mark.parametrize(
    "body", [b"\xff" * 500, b"[" * 2000, orjson.dumps({"execution_id": 7, "pad": "z" * 500})]
)
def test_junk_has_no_execution_header(body: bytes) -> None:
    _, headers = cut_body(body, 10)
    assert {ORIGINAL_BYTES_HEADER, ORIGINAL_SHA256_HEADER} == set(headers)
