"""Tracing is an optional extra (issue 12): without OpenTelemetry installed, every hook
is a no-op, and nothing of OpenTelemetry is imported."""

from __future__ import annotations

import subprocess
import sys

WITHOUT_OTEL = """
import sys
sys.modules["opentelemetry"] = None  # what an environment without the extra looks like
from ricochet.contracts import WorkMessage
from ricochet.workers.observe import tracing
from ricochet.workers.runtime.worker import Worker  # the worker imports and runs without it

assert tracing.ENABLED is False
assert tracing.current_traceparent() is None
work = WorkMessage(execution_id="e", target="t")
carried = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
with tracing.attempt_span(carried, work, 1, None) as span:
    assert span is tracing.NO_SPAN
    span.ended(object())
assert tracing.traceparent_of(carried) == carried["traceparent"]
assert not [name for name in sys.modules if name.startswith("opentelemetry.")]
print("ok")
"""


def test_without_the_extra_tracing_does_nothing_and_imports_nothing() -> None:
    """A ``traceparent`` still travels on (it is only a header); no span is made."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OTEL], capture_output=True, text=True, check=False
    )
    assert (0, "ok") == (done.returncode, done.stdout.strip()), done.stderr


def test_traceparent_is_read_only_from_a_short_string_header() -> None:
    """Headers come from other services: anything but a short string is ignored."""
    from ricochet.workers.observe.tracing import traceparent_of

    assert traceparent_of(None) is None
    assert traceparent_of({"traceparent": 7}) is None
    assert traceparent_of({"traceparent": "x" * 500}) is None
    assert "00-a-b-01" == traceparent_of({"traceparent": "00-a-b-01"})
