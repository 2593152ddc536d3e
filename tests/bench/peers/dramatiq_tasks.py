"""The benchmark's tasks as Dramatiq actors: ``dramatiq tests.bench.peers.dramatiq_tasks``."""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import CurrentMessage

from tests.bench.peers.marks import QUEUE_ENV, URL_ENV, mark

QUEUE = os.environ.get(QUEUE_ENV, "bench-dramatiq")

broker = RabbitmqBroker(url=os.environ.get(URL_ENV, "amqp://guest:guest@localhost:5672/"))
broker.add_middleware(CurrentMessage())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_noop", max_retries=0)
def noop() -> None:
    mark("start")
    mark("end")


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_fail_once", max_retries=1)
def fail_once(delay_s: float, group: str = "retry") -> None:
    """Fails its first run with an exact delay; the retry records how late it started."""
    message = CurrentMessage.get_current_message()
    assert message is not None, "CurrentMessage middleware is installed above"
    if message.options.get("retries", 0) == 0:
        mark("failed")
        raise dramatiq.Retry(delay=round(delay_s * 1000))
    # Dramatiq drops the "eta" option when it moves a due message back to the work queue;
    # the Retries middleware stamped the failure time, and the eta was that + the delay.
    failed_ms = message.options["requeue_timestamp"]
    mark(group, time.time() - (failed_ms / 1000 + delay_s))
