"""Submit work from Python and wait for its result, through every retry.

Run: ``python -m ricochet.workers.examples.shop_client`` (with a worker of
``ricochet.workers.examples.shop`` running; ``RICOCHET_AMQP_URL`` and
``RICOCHET_NAMESPACE`` say where).
"""

import asyncio

from ricochet import Client, Settings
from ricochet.workers.examples.shop import charge


async def main() -> None:
    async with Client(Settings.from_env()) as client:
        handle = await charge.submit("o-1", 1200)  # or: client.submit("shop.charge", ["o-1", 1200])
        print(await handle.result(timeout=60))  # raises RemoteError if every attempt fails
        receipt = await client.submit("shop.receipt", ["o-1", "ada@example.com"])
        print(await receipt.result(timeout=60))


if __name__ == "__main__":
    asyncio.run(main())
