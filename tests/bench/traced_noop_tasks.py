"""The no-op tasks, in a worker whose attempts are traced by the OpenTelemetry SDK.

Importing this module installs an SDK tracer provider whose spans go through a
batch processor to an exporter that drops them: what is measured is making and
ending the spans, not shipping them (``bench_observe``).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from tests.bench.noop_tasks import noop

__all__ = ["noop"]


class DroppingExporter(SpanExporter):
    """Takes every span and does nothing with it."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


_provider = TracerProvider()
_provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
trace.set_tracer_provider(_provider)
