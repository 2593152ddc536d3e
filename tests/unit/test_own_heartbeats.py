"""A worker learns it was cut off longer than the loss window (``engine.vigil.OwnHeartbeats``)."""

from __future__ import annotations

from ricochet.engine.vigil import OwnHeartbeats


def test_heartbeats_at_their_pace_say_nothing() -> None:
    """Given heartbeats a second apart and a 3 s window, then no gap is reported."""
    own = OwnHeartbeats(window_s=3.0)
    assert [own.sent(t) for t in (0.0, 1.0, 2.0, 3.0, 4.0)] == [None] * 5


def test_a_gap_within_the_window_says_nothing() -> None:
    """Given a gap of exactly the window, then nothing: no attempt could be judged yet."""
    own = OwnHeartbeats(window_s=3.0)
    own.sent(10.0)
    assert own.sent(13.0) is None


def test_a_gap_longer_than_the_window_is_reported_once() -> None:
    """Given a heartbeat at 10 s and the next at 17.5 s (a 3 s window), when it goes
    through, then the 7.5 s gap is reported, and the heartbeats after it say nothing."""
    own = OwnHeartbeats(window_s=3.0)
    own.sent(10.0)
    assert own.sent(17.5) == 7.5
    assert own.sent(18.5) is None


def test_the_first_heartbeat_reports_nothing() -> None:
    """Given a worker just started, then its first heartbeat has no gap before it."""
    assert OwnHeartbeats(window_s=3.0).sent(1_000.0) is None
