"""Wire formats (SPEC section 3): frozen, closed, UTC, one codec, schemas shipped as files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from ricochet import contracts
from ricochet.contracts import (
    EVENT_TYPES,
    AttemptFailed,
    ErrorInfo,
    Event,
    TriggerV1,
    WorkMessage,
    decode,
    decode_batch,
    decode_event,
    encode,
    encode_batch,
    encode_json,
)
from ricochet.contracts.schemas import json_schemas
from ricochet.errors import DecodeError
from tests.unit.builders import BOOM, EVERY_EVENT_TYPE, T0, failed

SCHEMA_DIR = Path(contracts.__file__).parent / "schemas"


def wire(event: Event) -> dict[str, Any]:
    """The event as the JSON object other processes see."""
    data: dict[str, Any] = orjson.loads(encode(event))
    return data


def event_type(event: Event) -> str:
    return event.type


def test_every_event_type_is_covered_here() -> None:
    """The round-trip cases below include an instance of every event type."""
    expected = sorted(str(model.model_fields["type"].default) for model in EVENT_TYPES)

    assert expected == sorted({event.type for event in EVERY_EVENT_TYPE})


@pytest.mark.parametrize("event", EVERY_EVENT_TYPE, ids=event_type)
def test_event_round_trip(event: Event) -> None:
    """decode_event(encode(e)) == e, for every event type."""
    # Given an event
    # When it is written and read back
    actual = decode_event(encode(event))
    # Then nothing changed, not even its class
    assert event == actual
    assert type(event) is type(actual)


def test_batch_round_trip() -> None:
    """A batch of events is one JSON array and reads back as the same tuple, in order."""
    actual = decode_batch(encode_batch(list(EVERY_EVENT_TYPE)))

    assert EVERY_EVENT_TYPE == actual
    assert EVERY_EVENT_TYPE == decode_batch(encode_batch(EVERY_EVENT_TYPE))


def test_event_decodes_from_text_too() -> None:
    """The codec reads ``str`` as well as ``bytes`` (a JSON line from ``replay``, say)."""
    event = failed(1, 3)

    assert event == decode_event(encode(event).decode())


def test_trigger_and_work_round_trip() -> None:
    """The public trigger and the work message read back as written."""
    trigger = TriggerV1(target="billing.tasks:send_invoice", args=(1,), idempotency_key="k-1")
    work = WorkMessage(execution_id="e1", target="billing.tasks:send_invoice", kwargs={"a": None})

    assert (trigger, work) == (
        decode(TriggerV1, encode(trigger)),
        decode(WorkMessage, encode(work)),
    )


def test_minimal_trigger_gets_defaults() -> None:
    """Only ``target`` is required in a trigger; the rest defaults."""
    actual = decode(TriggerV1, b'{"target": "billing.tasks:send_invoice"}')

    assert TriggerV1(target="billing.tasks:send_invoice") == actual
    assert ((), {}, None) == (actual.args, actual.kwargs, actual.idempotency_key)


@pytest.mark.parametrize("event", EVERY_EVENT_TYPE, ids=event_type)
@pytest.mark.parametrize("field", ["attempt", "at", "execution_id", "type"])
def test_events_are_frozen(event: Event, field: str) -> None:
    """An event is an immutable fact: assigning to any field raises."""
    with pytest.raises(ValidationError, match="frozen"):
        setattr(event, field, getattr(event, field))


def test_nested_models_are_frozen() -> None:
    """The error and the policy inside events are frozen too."""
    field = "message"

    with pytest.raises(ValidationError, match="frozen"):
        setattr(BOOM, field, "changed")


@pytest.mark.parametrize("event", EVERY_EVENT_TYPE, ids=event_type)
def test_unknown_field_is_refused(event: Event) -> None:
    """extra="forbid": a field the model does not know is a DecodeError naming the field."""
    # Given an event's JSON with a field no version of it has
    data = orjson.dumps({**wire(event), "priority": "high"})
    # When it is decoded
    with pytest.raises(DecodeError) as raised:
        decode_event(data)
    # Then the error says where
    assert f"{event.type}.priority: Extra inputs are not permitted" == str(raised.value)


def test_unknown_nested_field_is_refused() -> None:
    """Nested records are closed too: an unknown key inside ``error`` is refused."""
    data = wire(failed(1, 3))
    data["error"] = {**data["error"], "code": 7}

    with pytest.raises(DecodeError, match=r"attempt_failed\.v1\.error\.code"):
        decode_event(orjson.dumps(data))


def test_unknown_trigger_field_is_refused() -> None:
    """The public trigger refuses fields it does not define rather than ignoring them."""
    with pytest.raises(DecodeError, match="priority"):
        decode(TriggerV1, b'{"target": "a:b", "priority": 1}')


def test_offset_times_come_back_in_utc() -> None:
    """A +02:00 time is normalised to the same instant in UTC."""
    # Given an event whose time was written with a +02:00 offset
    data = wire(failed(1, 0))
    data["at"] = "2026-01-01T02:00:00+02:00"
    # When it is decoded
    actual = decode_event(orjson.dumps(data)).at
    # Then it is the same instant, with a UTC offset, and is written back as UTC
    assert T0 == actual
    assert timedelta(0) == actual.utcoffset()
    assert "2026-01-01T00:00:00+00:00" == wire(failed(1, 0).model_copy(update={"at": actual}))["at"]


def test_offset_times_given_in_python_are_normalised() -> None:
    """Built in Python with a +02:00 datetime, the event still holds UTC."""
    plus_two = timezone(timedelta(hours=2))

    actual = AttemptFailed.model_validate(
        {**wire(failed(1, 0)), "at": datetime(2026, 1, 1, 2, tzinfo=plus_two)}
    ).at

    assert (T0, timedelta(0)) == (actual, actual.utcoffset())
    assert UTC == actual.tzinfo


def test_naive_times_are_refused() -> None:
    """A time without an offset is ambiguous: refused, not guessed."""
    data = wire(failed(1, 0))
    data["at"] = "2026-01-01T00:00:00"

    with pytest.raises(DecodeError, match=r"attempt_failed\.v1\.at: .*timezone"):
        decode_event(orjson.dumps(data))


def test_non_json_bytes_give_a_one_line_reason() -> None:
    """Bytes that are not JSON: one line that says it is the body and where it broke."""
    with pytest.raises(DecodeError) as raised:
        decode_event(b"\x00\xffnot json")

    message = str(raised.value)
    assert message.startswith("body: Invalid JSON")
    assert "column" in message
    assert "\n" not in message


def test_wrong_type_gives_a_one_line_reason_with_the_path() -> None:
    """A field of the wrong type: one line naming the event type and the field."""
    data = {**wire(failed(1, 0)), "attempt": "one"}

    with pytest.raises(DecodeError) as raised:
        decode_event(orjson.dumps(data))

    message = str(raised.value)
    assert message.startswith("attempt_failed.v1.attempt: Input should be a valid integer")
    assert "\n" not in message


def test_batch_that_is_not_an_array_says_so() -> None:
    """A stream message must be a JSON array of events."""
    with pytest.raises(DecodeError) as raised:
        decode_batch(encode(failed(1, 0)))

    assert "body: Input should be a valid array" == str(raised.value)


def test_wrong_batch_item_names_its_index() -> None:
    """In a batch, the reason names which event was wrong."""
    data = orjson.dumps([wire(failed(1, 0)), {**wire(failed(1, 0)), "attempt": -1}])

    with pytest.raises(DecodeError, match=r"^1\.attempt_failed\.v1\.attempt: "):
        decode_batch(data)


def test_many_errors_are_summarised() -> None:
    """Past five problems the reason counts the rest instead of listing them."""
    with pytest.raises(DecodeError) as raised:
        decode_event(b'{"type": "attempt_failed.v1"}')

    message = str(raised.value)
    assert 5 == message.count("Field required")
    assert message.endswith(" (+1 more)")


def test_reason_is_bounded() -> None:
    """A hostile body cannot make a huge reason (it goes into a dead-letter header)."""
    data = orjson.dumps({**wire(failed(1, 0)), "x" * 10_000: 1})

    with pytest.raises(DecodeError) as raised:
        decode_event(data)

    assert len(str(raised.value)) <= 920


def test_decode_error_is_a_value_error() -> None:
    """Bad input is a ValueError to callers that do not know Ricochet's types."""
    with pytest.raises(ValueError, match="Invalid JSON"):
        decode(WorkMessage, b"{")


def test_encode_json_refuses_what_json_cannot_say() -> None:
    """Arguments and results are JSON, never pickle: anything else is a TypeError."""
    with pytest.raises(TypeError):
        encode_json(object())
    assert b'{"a":[1,"x",null]}' == encode_json({"a": [1, "x", None]})


def schema_text(schema: dict[str, Any]) -> bytes:
    """Exactly what ``ricochet schemas --out DIR`` writes (cli/log_tools.py ``schemas``)."""
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_schema_file_is_current(name: str) -> None:
    """The JSON Schema files shipped for other languages match the models."""
    path = SCHEMA_DIR / name
    expected = schema_text(json_schemas()[name])

    actual = path.read_bytes() if path.exists() else b""

    assert expected == actual, (
        f"contracts/schemas/{name} is stale: run `ricochet schemas --out contracts/schemas`"
    )


def test_no_stale_schema_files_remain() -> None:
    """Every schema file on disk is one the models still produce."""
    on_disk = sorted(str(p.relative_to(SCHEMA_DIR)) for p in SCHEMA_DIR.rglob("*.json"))

    assert sorted(json_schemas()) == on_disk, (
        "schemas differ: run `ricochet schemas --out contracts/schemas`"
    )


def test_error_info_reads_back() -> None:
    """The remote error travels whole: type, message and traceback."""
    actual = decode(ErrorInfo, encode(BOOM))

    assert BOOM == actual
