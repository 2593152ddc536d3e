"""Whose stream messages a reader believes: the rule behind the ``event_writers`` setting.

RabbitMQ refuses a publish whose AMQP ``user_id`` differs from the user the
connection logged in as, so a message's ``user_id`` names the user that wrote it
(unless that user has the ``impersonator`` tag). Ricochet's writers always set it;
a reader given a set of writers believes only messages from them. An empty set
believes everything: a single-user setup works without configuring anything.
"""

from __future__ import annotations

from collections.abc import Collection

MISSING_USER_ID = "missing_user_id"
"""The message names no writer: written by something other than Ricochet, or an old
Ricochet that did not set ``user_id``."""
NOT_A_WRITER = "not_a_writer"
"""The message was written by a user that is not among the event writers."""


def distrust(writers: Collection[str], user_id: str | None) -> str | None:
    """Why a message from ``user_id`` must not be believed, or None when it may be.

    ``writers`` empty: every message is believed, with a ``user_id`` or without."""
    if not writers:
        return None
    if not user_id:
        return MISSING_USER_ID
    if user_id not in writers:
        return NOT_A_WRITER
    return None
