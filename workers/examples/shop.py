"""The README's example: a shop's tasks (run them with ``ricochet worker
ricochet.workers.examples.shop``; in your project, ``ricochet worker shop.tasks``)."""

from __future__ import annotations

from ricochet import current_attempt, task


class CardDeclined(Exception):
    """Not worth retrying: the same card will be declined again."""


@task(retries=(3, 0.5, 2), dont_retry=(CardDeclined,), name="shop.charge")
def charge(order_id: str, cents: int) -> dict[str, object]:
    """Charge an order: retried when the payment service is flaky (attempt 1 fails here,
    on purpose), never when the card is declined."""
    attempt = current_attempt()
    if attempt is not None and attempt.attempt == 1:
        raise ConnectionError("payment service timed out")
    return {"order": order_id, "charged": cents}


@task(retries=2, name="shop.receipt")
async def send_receipt(order_id: str, to: str) -> str:
    """Async functions run on the worker's event loop; sync ones in its thread pool."""
    return f"receipt for {order_id} sent to {to}"
