"""A log rewound under a follower (``workers.log.rewind``): RabbitMQ 3.10 can lose a
stream's last writes when its leader's node stops and reuse their offsets."""

from __future__ import annotations

from ricochet.workers.log.rewind import RecentOffsets


def read(*pairs: tuple[int, str]) -> RecentOffsets:
    recent = RecentOffsets(size=4)
    for offset, message_id in pairs:
        recent.note(offset, message_id)
    return recent


def test_the_same_message_again_is_a_repeat() -> None:
    assert read((1, "a"), (2, "b")).is_repeat(2, "b")


def test_another_message_at_an_offset_read_is_new() -> None:
    assert not read((1, "a"), (2, "b")).is_repeat(2, "c")


def test_an_offset_too_old_to_remember_is_taken_for_a_repeat() -> None:
    recent = read((1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"))
    assert recent.is_repeat(1, "z")
    assert not recent.is_repeat(2, "z")


def test_a_tail_with_other_messages_at_offsets_read_shows_a_rewind() -> None:
    recent = read((1, "a"), (2, "b"), (3, "c"))
    assert recent.rewound({2: "x"}, last_read=3)
    assert not recent.rewound({2: "b", 3: "c"}, last_read=3)
    assert not recent.rewound({}, last_read=3)
    assert not recent.rewound({4: "new"}, last_read=3), "a longer log is no rewind"
