"""Start an execution from any service with one AMQP message: plain aio-pika, no
Ricochet import (pika, amqplib or the Java client work the same way).

Run: ``python -m ricochet.workers.examples.shop_trigger`` (``AMQP_URL`` and
``NAMESPACE`` default to a local broker and ``ricochet``).
"""

import asyncio
import json
import os

import aio_pika


async def main() -> None:
    url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
    namespace = os.environ.get("NAMESPACE", "ricochet")
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{namespace}.triggers")
        body = {"target": "shop.charge", "args": ["o-2", 900], "idempotency_key": "order-o-2"}
        message = aio_pika.Message(
            json.dumps(body).encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await exchange.publish(message, routing_key="shop.charge", mandatory=True)
        print("trigger published for order o-2")


if __name__ == "__main__":
    asyncio.run(main())
