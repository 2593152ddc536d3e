"""The shared limits (SPEC 7.9): what a writer accepts, every reader reads back.

Measured on main before the limits: orjson writes 255 levels of nesting and
pydantic reads 200 in all, so a value nested 198 deep in an argument was
written into an event no reader could decode; NaN became ``null`` on the way
out; integers past 64 bits were read by pydantic and crashed orjson printers.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue, TypeAdapter, ValidationError

from ricochet.contracts import (
    DEFAULT_LIMITS,
    AttemptSucceeded,
    Event,
    ExecutionRequested,
    ExecutionSucceeded,
    FailureCause,
    Json,
    Limits,
    NotReadable,
    TooLarge,
    TriggerV1,
    WorkMessage,
    check_args,
    check_result,
    check_value,
    decode,
    decode_batch,
    encode,
    encode_batch,
)
from ricochet.contracts.limits import MAX_INT, MIN_INT, cut
from ricochet.errors import DecodeError
from ricochet.workers.settings import Settings
from tests.unit.builders import T0

DEPTH = DEFAULT_LIMITS.max_json_depth
JSON: TypeAdapter[JsonValue] = TypeAdapter(JsonValue)


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` lists, one inside the other, around ``leaf``."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_the_depth_limit_leaves_room_for_the_envelope_pydantic_reads() -> None:
    """A stream message adds 3 levels around an argument; pydantic reads 90 more."""
    JSON.validate_json(orjson.dumps(nested(3 + DEPTH + 90)))


def test_values_as_deep_as_the_limit_pass_and_one_more_level_is_refused() -> None:
    check_value(nested(DEPTH))
    check_value({"a": nested(DEPTH - 1)})
    with pytest.raises(NotReadable, match=f"nested deeper than the limit of {DEPTH} levels"):
        check_value(nested(DEPTH + 1))
    with pytest.raises(NotReadable):
        check_value({"a": nested(DEPTH)})


def test_a_hostile_depth_is_refused_without_recursion() -> None:
    with pytest.raises(NotReadable):
        check_value(nested(100_000))


@pytest.mark.parametrize("number", [MIN_INT, MAX_INT, 0, -1, 1.5, -0.0, 1e308, True])
def test_numbers_json_carries_unchanged_pass(number: Any) -> None:
    check_value([number])


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (MIN_INT - 1, "64-bit"),
        (MAX_INT + 1, "64-bit"),
        (2**100, "64-bit"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "inf"),
    ],
)
def test_numbers_json_would_change_are_refused(number: Any, reason: str) -> None:
    with pytest.raises(NotReadable, match=reason):
        check_value({"deep": [[number]]})


def test_arguments_are_refused_by_size_together_and_named_when_unreadable() -> None:
    small = Limits(max_args_bytes=100)
    check_args(["x" * 40], {"k": "y" * 40}, small)
    with pytest.raises(TooLarge, match="over the limit of 100"):
        check_args(["x" * 50], {"k": "y" * 50}, small)
    with pytest.raises(NotReadable, match="keyword argument 'k'"):
        check_args([], {"k": math.nan})
    with pytest.raises(NotReadable, match="argument 1"):
        check_args([1, nested(DEPTH + 1)], {})
    with pytest.raises(NotReadable, match="cannot be written as JSON"):
        check_args([{1, 2}], {})
    with pytest.raises(NotReadable, match="cannot be written as JSON"):
        check_args([], {"k": "\ud800"})


def test_results_are_told_apart_too_large_from_not_readable() -> None:
    check_result("x" * 1000, Limits(max_result_bytes=1002))
    with pytest.raises(TooLarge):
        check_result("x" * 1001, Limits(max_result_bytes=1002))
    with pytest.raises(NotReadable):
        check_result(nested(DEPTH + 1))
    assert issubclass(TooLarge, ValueError)
    assert issubclass(NotReadable, ValueError)


def test_the_new_failure_causes_have_their_wire_names() -> None:
    assert FailureCause.RESULT_TOO_LARGE.value == "result_too_large"
    assert FailureCause.RESULT_NOT_READABLE.value == "result_not_readable"


@pytest.mark.parametrize(
    "body",
    [
        b'{"target":"t","args":[' + b"[" * (DEPTH + 1) + b"]" * (DEPTH + 1) + b"]}",
        b'{"target":"t","kwargs":{"a":NaN}}',
        b'{"target":"t","kwargs":{"a":-Infinity}}',
        b'{"target":"t","args":[123456789012345678901234567890]}',
    ],
    ids=["too-deep", "nan", "infinity", "big-int"],
)
def test_triggers_and_work_messages_refuse_what_readers_could_not_read(body: bytes) -> None:
    """Trigger intake and workers parse with these models: both dead-letter such bodies."""
    with pytest.raises(DecodeError, match=r"args|kwargs"):
        decode(TriggerV1, body)
    work = body.replace(b'{"target":"t"', b'{"execution_id":"e","target":"t"')
    with pytest.raises(DecodeError, match=r"args|kwargs"):
        decode(WorkMessage, work)


def test_events_refuse_values_outside_the_limits_when_made_and_when_read() -> None:
    with pytest.raises(ValidationError, match="64-bit"):
        AttemptSucceeded(event_id="e/1/s", execution_id="e", attempt=1, at=T0, result=2**64)
    forged = (
        b'[{"type":"attempt_succeeded.v1","event_id":"e/1/s","execution_id":"e","attempt":1,'
        b'"at":"2026-01-01T00:00:00Z","result":18446744073709551616}]'
    )
    with pytest.raises(DecodeError, match="64-bit"):
        decode_batch(forged)


def test_a_batch_of_values_at_every_limit_reads_back() -> None:
    deepest = nested(DEPTH - 1, {"k": 1})  # the dict is a level too
    events: list[Event] = [
        ExecutionRequested(
            event_id="e/0/r",
            execution_id="e",
            attempt=0,
            at=T0,
            target="t",
            args=(deepest, MAX_INT, MIN_INT, 1e308),
            kwargs={"k": deepest},
        ),
        AttemptSucceeded(event_id="e/1/s", execution_id="e", attempt=1, at=T0, result=deepest),
        ExecutionSucceeded(event_id="e/1/e", execution_id="e", attempt=1, at=T0, result=deepest),
    ]
    assert tuple(events) == decode_batch(encode_batch(events))


json_values: st.SearchStrategy[Json] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300)
@given(json_values, st.integers(min_value=0, max_value=DEPTH + 2))
def test_whatever_a_writer_accepts_every_reader_reads_back_equal(value: Json, depth: int) -> None:
    """Values that pass the checks survive a stream message and a trigger unchanged."""
    value = nested(depth, value)
    try:
        check_args([value], {"k": value})
    except NotReadable:
        return
    requested = ExecutionRequested(
        event_id="e/0/r", execution_id="e", attempt=0, at=T0, target="t", args=(value,)
    )
    assert (requested,) == decode_batch(encode_batch([requested]))
    trigger = TriggerV1(target="t", kwargs={"k": value})
    assert trigger == decode(TriggerV1, encode(trigger))


def test_settings_lower_the_limits_never_raise_them() -> None:
    lowered = Settings.from_env(
        {"RICOCHET_MAX_RESULT_BYTES": "1000", "RICOCHET_MAX_JSON_DEPTH": "8"}
    )
    assert lowered.limits == Limits(max_result_bytes=1000, max_json_depth=8)
    assert Settings().limits == DEFAULT_LIMITS
    with pytest.raises(ValidationError):
        Settings(max_json_depth=DEPTH + 1)
    with pytest.raises(ValidationError):
        Settings(max_args_bytes=DEFAULT_LIMITS.max_args_bytes + 1)


def test_error_texts_are_cut_and_made_writable() -> None:
    long = "a" * 50_000 + "END"
    cut_text = cut(long)
    assert len(cut_text) < 17_000
    assert cut_text.startswith("aaa")
    assert cut_text.endswith("END")
    assert cut("bad \ud800 text") == "bad ? text"
    assert cut("fine") == "fine"
