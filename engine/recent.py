"""A bounded memory of the most recently added keys: the oldest are forgotten first.

Used wherever something is remembered "for a while" after it ended (the supervisor's
ended executions, a client's finished watches), so that memory stays bounded
however long a process runs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass(slots=True)
class Recent(Generic[K, V]):
    """At most ``capacity`` keys with their values, in the order they were added."""

    capacity: int
    items: OrderedDict[K, V] = field(default_factory=OrderedDict)

    def add(self, key: K, value: V) -> None:
        """Remember ``key`` (as the newest), forgetting the oldest beyond capacity."""
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.capacity:
            self.items.popitem(last=False)

    def get(self, key: K) -> V | None:
        return self.items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self.items

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[K]:
        return iter(self.items)

    def clear(self) -> None:
        self.items.clear()
