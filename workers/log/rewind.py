"""Noticing that the log was rewound under a follower, and reading the new messages.

On RabbitMQ 3.10 a stream whose leader's node stops can lose its last writes,
even confirmed ones (rabbitmq-server#9457), and the new leader then writes new
messages at the offsets the lost ones had. A follower that remembers only the
last offset it read would wait beyond the new tail, hearing nothing, and then
skip every new message at a reused offset as one it had read. So a follower
remembers the message id it read at each recent offset: a different message at
an offset it has read means the log was rewound, and that message is new.
"""

from __future__ import annotations

REWIND_LOOKBACK = 2048
"""Offsets whose message ids a follower remembers; after a rewind it reads again
from this far before the new tail (writes lost in a rewind are a fraction of a
second's, far fewer than this)."""

_UNKNOWN = object()


class RecentOffsets:
    """The message id read at each of the last ``size`` offsets."""

    def __init__(self, size: int = REWIND_LOOKBACK) -> None:
        self._size = size
        self._ids: dict[int, str | None] = {}

    def note(self, offset: int, message_id: str | None) -> None:
        self._ids[offset] = message_id
        if len(self._ids) > self._size:
            del self._ids[next(iter(self._ids))]

    def is_repeat(self, offset: int, message_id: str | None) -> bool:
        """A message at an offset already read: the same one again (or one too old to
        tell, which is taken for the same), unless a different message is there now."""
        known = self._ids.get(offset, _UNKNOWN)
        return known is _UNKNOWN or known == message_id

    def rewound(self, tail: dict[int, str | None], last_read: int) -> bool:
        """Does the log's tail (offset -> message id, as read now) show a rewind: a
        different message at an offset read before?"""
        return any(
            offset <= last_read and not self.is_repeat(offset, message_id)
            for offset, message_id in tail.items()
        )
