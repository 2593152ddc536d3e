"""Old event versions keep replaying: they are upcast, never rewritten."""

from __future__ import annotations

from pathlib import Path

import orjson

from ricochet.contracts import ExecutionRequested, decode_batch, decode_event

V1 = (Path(__file__).parent / "samples" / "execution_requested.v1.json").read_bytes()


def test_a_v1_request_reads_as_v2_with_no_rerun() -> None:
    """execution_requested.v1 (before rerun_of existed) is read as v2 with rerun_of None."""
    event = decode_event(V1)
    assert isinstance(event, ExecutionRequested)
    assert ("execution_requested.v2", None) == (event.type, event.rerun_of)
    assert orjson.loads(V1)["target"] == event.target


def test_a_batch_mixing_versions_reads_whole() -> None:
    """A stream message written by an older worker, beside a newer one, decodes in order."""
    v2 = decode_event(V1).model_dump(mode="json")
    batch = orjson.dumps([orjson.loads(V1), v2])
    first, second = decode_batch(batch)
    assert first == second
