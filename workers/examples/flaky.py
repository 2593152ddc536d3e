"""The demo's flaky task: fails on its first two attempts, succeeds on the third.

It counts by the attempt number Ricochet hands it, so it behaves the same
however many worker processes share the work.
"""

from __future__ import annotations

from ricochet import current_attempt, task


class FlakyUpstream(RuntimeError):
    """Stands in for a dependency that is briefly unavailable."""


@task(retries=(3, 1, 2), name="demo.flaky")
def flaky(order_id: str) -> dict[str, object]:
    """Retried up to 3 times, 1 s, then 1.5 s, then 2 s after each failure."""
    attempt = current_attempt()
    number = attempt.attempt if attempt else 1
    if number < 3:
        raise FlakyUpstream(f"upstream unavailable for order {order_id} (attempt {number})")
    return {"order_id": order_id, "charged": True, "attempt": number}
