"""Doing something once at the end of the event loop's turn, however often it was asked for.

Batching needs it: callers woken by the same burst of frames all run in one turn
of the loop, so work planned for its end (a publish, an ack) covers them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class EndOfTurn:
    """Calls ``action`` at the end of the current turn; asking again before then is free."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._action = action
        self._planned = False

    def plan(self) -> None:
        if not self._planned:
            self._planned = True
            asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        self._planned = False
        self._action()
