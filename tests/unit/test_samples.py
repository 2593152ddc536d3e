"""Saved samples of every event version must keep parsing (STYLE rule 9).

The files under ``samples/`` were written once and are never regenerated from
the models: a change that stops an old event from parsing fails here, and needs
a new version with an upcaster instead. A new event type needs a sample too.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ricochet.contracts import EVENT_TYPES, EventBase, decode_batch, decode_event, encode
from ricochet.contracts.upcasting import latest_type

SAMPLES = Path(__file__).parent / "samples"
SAMPLE_FILES = sorted(SAMPLES.glob("*.json"))


def type_string(model: type[EventBase]) -> str:
    """The stable ``type`` an event model writes, e.g. ``attempt_failed.v1``."""
    return str(model.model_fields["type"].default)


def type_of(path: Path) -> str:
    return path.name.removesuffix(".json")


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=type_of)
def test_sample_decodes_as_its_type(path: Path) -> None:
    """``attempt_failed.v1.json`` decodes to an event whose type is ``attempt_failed.v1``."""
    # Given a saved sample
    data = path.read_bytes()
    # When it is decoded
    actual = decode_event(data)
    # Then it is the event its name says (an old version read as today's, through its
    # upcasters), and it survives another round trip
    assert latest_type(type_of(path)) == actual.type
    assert latest_type(type_of(path)) == type_string(type(actual))
    assert actual == decode_event(encode(actual))


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=type_of)
def test_sample_keeps_every_field_it_was_saved_with(path: Path) -> None:
    """Decoding drops nothing: every saved field is still a field of the model (an upcast
    old version may gain fields, never lose one)."""
    saved = orjson.loads(path.read_bytes())

    actual = decode_event(path.read_bytes()).model_dump(mode="json")

    assert set(saved) <= set(actual)
    if latest_type(type_of(path)) == type_of(path):
        assert sorted(saved) == sorted(actual)


@pytest.mark.parametrize("model", EVENT_TYPES, ids=type_string)
def test_every_event_type_has_a_sample(model: type[EventBase]) -> None:
    """A new event type (or version) without a saved sample fails here."""
    expected = SAMPLES / f"{type_string(model)}.json"

    assert expected.is_file(), f"add a realistic sample: tests/unit/samples/{expected.name}"


def test_every_sample_is_a_known_type() -> None:
    """No sample for a type the union no longer reads (old versions stay readable)."""
    known = {type_string(model) for model in EVENT_TYPES}

    assert [] == [path.name for path in SAMPLE_FILES if latest_type(type_of(path)) not in known]


def test_samples_decode_together_as_one_batch() -> None:
    """The samples as one stream message (a JSON array) decode in order."""
    batch = b"[" + b",".join(path.read_bytes() for path in SAMPLE_FILES) + b"]"

    actual = decode_batch(batch)

    assert [latest_type(type_of(path)) for path in SAMPLE_FILES] == [e.type for e in actual]
