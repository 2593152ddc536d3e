"""``engine.recent.Recent``: a bounded memory that forgets the oldest first."""

from __future__ import annotations

from ricochet.engine.recent import Recent


def test_the_oldest_key_is_forgotten_beyond_capacity() -> None:
    recent: Recent[str, int] = Recent(2)
    for key, value in (("a", 1), ("b", 2), ("c", 3)):
        recent.add(key, value)

    assert (["b", "c"], None, 3) == (list(recent), recent.get("a"), recent.get("c"))


def test_adding_a_key_again_makes_it_the_newest() -> None:
    recent: Recent[str, int] = Recent(2)
    recent.add("a", 1)
    recent.add("b", 2)
    recent.add("a", 10)
    recent.add("c", 3)

    assert (["a", "c"], 10) == (list(recent), recent.get("a"))
