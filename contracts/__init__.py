"""Wire formats: events, work messages, triggers and their codec. No I/O here."""

from contracts.base import Json, WireModel
from contracts.codec import (
    DecodeError,
    decode,
    decode_batch,
    decode_event,
    encode,
    encode_batch,
    encode_json,
)
from contracts.events import (
    BATCH_ADAPTER,
    EVENT_ADAPTER,
    EVENT_TYPES,
    TERMINAL_TYPES,
    AttemptFailed,
    AttemptStarted,
    AttemptSucceeded,
    Event,
    EventBase,
    EventBatch,
    ExecutionFailed,
    ExecutionRequested,
    ExecutionSucceeded,
    RetryScheduled,
    event_id,
)
from contracts.failure import ErrorInfo, FailureCause
from contracts.heartbeat import Heartbeat, RunningAttempt
from contracts.policy import AT_MOST_ONCE, RetryPolicy
from contracts.trigger import MAX_TRIGGER_BYTES, TRIGGER_CONTENT_TYPE, TriggerV1
from contracts.work import (
    ATTEMPT_HEADER,
    DUE_AT_HEADER,
    REASON_HEADER,
    SOURCE_QUEUE_HEADER,
    WorkMessage,
)

__all__ = [
    "ATTEMPT_HEADER",
    "AT_MOST_ONCE",
    "BATCH_ADAPTER",
    "DUE_AT_HEADER",
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "MAX_TRIGGER_BYTES",
    "REASON_HEADER",
    "SOURCE_QUEUE_HEADER",
    "TERMINAL_TYPES",
    "TRIGGER_CONTENT_TYPE",
    "AttemptFailed",
    "AttemptStarted",
    "AttemptSucceeded",
    "DecodeError",
    "ErrorInfo",
    "Event",
    "EventBase",
    "EventBatch",
    "ExecutionFailed",
    "ExecutionRequested",
    "ExecutionSucceeded",
    "FailureCause",
    "Heartbeat",
    "Json",
    "RetryPolicy",
    "RetryScheduled",
    "RunningAttempt",
    "TriggerV1",
    "WireModel",
    "WorkMessage",
    "decode",
    "decode_batch",
    "decode_event",
    "encode",
    "encode_batch",
    "encode_json",
    "event_id",
]
