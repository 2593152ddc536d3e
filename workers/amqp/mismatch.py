"""Turning RabbitMQ's PRECONDITION_FAILED on a queue declare into one line a person can act on.

A queue's arguments are fixed when it is created: a deployment that changes a setting
behind one (``stream_max_bytes``, ``stream_max_age``, ``dead_letter_max_bytes``...)
finds its existing queue declared with the old values, and every process that
declares it fails. The broker says which argument differs; this says which setting
gives it and the two ways out: keep the queue's value and set the new one by a policy
(policies change on a live queue), or start afresh under a new namespace.
"""

from __future__ import annotations

import re

from ricochet.errors import TopologyMismatch

INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for queue '(?P<queue>[^']*)' in vhost '(?P<vhost>[^']*)'"
    r": (?P<detail>.*)$"
)

SETTINGS = {
    "x-max-length-bytes": ("stream_max_bytes or dead_letter_max_bytes", "max-length-bytes"),
    "x-stream-max-segment-size-bytes": ("stream_max_bytes", "stream-max-segment-size-bytes"),
    "x-max-age": ("stream_max_age", "max-age"),
    "x-overflow": ("dead_letter_max_bytes", "overflow"),
    "x-delivery-limit": ("delivery_limit", "delivery-limit"),
    "x-quorum-initial-group-size": ("quorum_group_size", None),
    "x-initial-cluster-size": ("stream_group_size", None),
}
"""Argument -> (the setting that gives it, the policy key that can change it live)."""

STREAM_SETTINGS = {"x-max-length-bytes": "stream_max_bytes"}
DEAD_SETTINGS = {"x-max-length-bytes": "dead_letter_max_bytes"}


def mismatch(queue: str, broker_text: str) -> TopologyMismatch:
    """The error for ``queue``'s refused declare; the broker's own words are kept in it."""
    text = " ".join(broker_text.split())
    found = INEQUIVALENT.search(text)
    if found is None:
        return TopologyMismatch(
            f"queue {queue!r} exists with other arguments or another type ({text}); a queue's"
            " arguments are fixed when it is created: use a new --namespace, or delete the queue"
        )
    arg, vhost, detail = found["arg"], found["vhost"], found["detail"]
    setting, policy_key = SETTINGS.get(arg, (None, None))
    if arg == "x-max-length-bytes":
        setting = (STREAM_SETTINGS if queue.endswith(".events") else DEAD_SETTINGS)[arg]
    head = (
        f"queue {queue!r} in vhost {vhost!r} was created with another {arg}"
        f" ({detail}); a queue's arguments are fixed when it is created."
    )
    keep = (
        f" Set {_env(setting)} to the queue's value{_zero_hint(arg)} and restart"
        if setting
        else " Declare it as it was and restart"
    )
    policy = (
        f", then change the bound live with a policy: rabbitmqctl set_policy -p {vhost}"
        f" {queue}-bound '^{re.escape(queue)}$' '{_policy(queue, policy_key)}' --apply-to queues"
        if policy_key
        else ""
    )
    return TopologyMismatch(f"{head}{keep}{policy}; or use a new --namespace.")


def _policy(queue: str, key: str) -> str:
    """The policy's definition; the dead-letter queue keeps the newest (drop-head).
    Where a policy and an argument both bound a queue, the broker applies the lower."""
    if key in ("max-length-bytes", "overflow") and not queue.endswith(".events"):
        return '{"max-length-bytes": VALUE, "overflow": "drop-head"}'
    return f'{{"{key}": VALUE}}'


def _env(setting: str) -> str:
    return "RICOCHET_" + setting.upper()


def _zero_hint(arg: str) -> str:
    """Queues created before the size bounds have none: 0 leaves the argument out."""
    if arg in ("x-max-length-bytes", "x-stream-max-segment-size-bytes", "x-overflow"):
        return " (0 leaves the bound out, as on queues created before it)"
    return ""
