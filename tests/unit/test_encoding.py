"""Encoding writes the same bytes as ``model_dump`` + orjson, from each model's ``__dict__``.

``contracts.codec`` skips ``model_dump``, which is only right while every wire
model is plain data: these tests check that it is, and compare the bytes with the
``model_dump`` way on every event type, every saved sample and generated values.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, PlainSerializer, ValidationError, WrapSerializer

from ricochet.contracts import (
    AT_MOST_ONCE,
    AttemptSucceeded,
    Event,
    Heartbeat,
    Json,
    RunningAttempt,
    TriggerV1,
    WireModel,
    WorkMessage,
    decode_event,
    encode,
    encode_batch,
    event_id,
)
from tests.unit.builders import BOOM, EVERY_EVENT_TYPE, POLICY, T0

SAMPLES = sorted((Path(__file__).parent / "samples").glob("*.json"))


def dumped(model: BaseModel) -> bytes:
    """The reference: what the codec wrote before it skipped ``model_dump``."""
    return orjson.dumps(model.model_dump(mode="python"))


def wire_models() -> list[type[WireModel]]:
    """Every wire model ``contracts`` defines, found by walking the subclasses."""
    found: list[type[WireModel]] = []
    pending: list[type[WireModel]] = [WireModel]
    while pending:
        model = pending.pop()
        found.append(model)
        pending.extend(model.__subclasses__())
    return [m for m in found if m.__module__.startswith("ricochet.contracts.") and m.model_fields]


OTHER_WIRE_MODELS: tuple[WireModel, ...] = (
    WorkMessage(execution_id="e1", target="a:b", args=(1, "é"), kwargs={"k": [None, 1.5]}),
    TriggerV1(target="a:b", args=({"x": []},), idempotency_key="k-1"),
    Heartbeat(worker="w:1", at=T0, running=(RunningAttempt(execution_id="e1", attempt=2),)),
    BOOM,
    POLICY,
    AT_MOST_ONCE,
)


def name_of(model: type[WireModel]) -> str:
    return model.__name__


def type_name(model: WireModel) -> str:
    return type(model).__name__


def test_every_wire_model_is_found() -> None:
    """The walk below finds the models (so the checks on them are not vacuous)."""
    names = {model.__name__ for model in wire_models()}

    assert {"ExecutionRequested", "WorkMessage", "ErrorInfo", "RetryPolicy"} <= names
    assert {type(m).__name__ for m in (*EVERY_EVENT_TYPE, *OTHER_WIRE_MODELS)} <= names


@pytest.mark.parametrize("model", wire_models(), ids=name_of)
def test_wire_models_are_plain_data(model: type[WireModel]) -> None:
    """No aliases, exclusions, serialisers or computed fields: ``__dict__`` is the JSON."""
    decorators = model.__pydantic_decorators__
    assert {} == decorators.field_serializers
    assert {} == decorators.model_serializers
    assert {} == model.model_computed_fields
    for name, info in model.model_fields.items():
        assert (None, None, None) == (info.alias, info.serialization_alias, info.exclude), name
        serializers = (PlainSerializer, WrapSerializer)
        assert not [m for m in info.metadata if isinstance(m, serializers)], name


@pytest.mark.parametrize("model", [*EVERY_EVENT_TYPE, *OTHER_WIRE_MODELS], ids=type_name)
def test_encode_writes_what_model_dump_wrote(model: WireModel) -> None:
    assert dumped(model) == encode(model)
    assert list(type(model).model_fields) == list(model.__dict__)


def test_encode_batch_writes_what_model_dump_wrote() -> None:
    expected = b"[" + b",".join(dumped(event) for event in EVERY_EVENT_TYPE) + b"]"

    assert expected == encode_batch(EVERY_EVENT_TYPE)
    assert expected == encode_batch(list(EVERY_EVENT_TYPE))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.name)
def test_decoded_samples_encode_as_model_dump_did(path: Path) -> None:
    """Decoded (and upcast) events hold what validation made: still plain data."""
    event = decode_event(path.read_bytes())

    assert dumped(event) == encode(event)
    assert dumped(event) == encode_batch([event])[1:-1]


json_values: st.SearchStrategy[Json] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)  # what the shared limits let through
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200)
@given(
    json_values,
    st.datetimes(  # within the shared time range (contracts.limits) in every zone
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.timezones()
    ),
)
def test_any_result_and_time_encode_as_model_dump_did(result: Json, when: Any) -> None:
    """Any JSON a function returns, at any instant: the same bytes as before."""
    event: Event = AttemptSucceeded(
        event_id=event_id("e", 1, "succeeded"),
        execution_id="e",
        attempt=1,
        at=when,
        worker="w",
        result=result,
    )

    assert dumped(event) == encode(event)
    assert b"[" + dumped(event) + b"]" == encode_batch([event])


def test_values_orjson_cannot_write_are_refused_by_the_model_and_by_encoding() -> None:
    """An integer beyond 64 bits is valid JSON to pydantic, not to orjson: the model refuses
    it (the shared limits), and an event made without validation still cannot be encoded."""
    with pytest.raises(ValidationError, match="64-bit"):
        AttemptSucceeded(event_id="e/1/succeeded", execution_id="e", attempt=1, at=T0, result=2**70)
    event = AttemptSucceeded.model_construct(
        event_id="e/1/succeeded", execution_id="e", attempt=1, at=T0, result=2**70
    )

    with pytest.raises(TypeError):
        encode(event)
    with pytest.raises(TypeError):
        encode_batch([event])
