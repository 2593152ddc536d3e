"""Helpers for the observability tests: scraping /metrics and publishing traced triggers."""

from __future__ import annotations

from collections.abc import Mapping

import aio_pika
import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from ricochet.workers.settings import Settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str) -> Samples:
    """Every sample at ``url``, keyed by name and sorted labels."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def by_label(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """The samples of ``name`` keyed by the values of ``labels`` (zeros left out)."""
    chosen: dict[tuple[str, ...], float] = {}
    for (sample_name, sample_labels), value in samples.items():
        if sample_name == name and value:
            found = dict(sample_labels)
            chosen[tuple(found.get(label, "") for label in labels)] = value
    return chosen


async def publish_trigger(
    settings: Settings, body: bytes, target: str, headers: Mapping[str, str] | None = None
) -> None:
    """What another service does: one JSON trigger, confirmed, with its own AMQP headers."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{settings.namespace}.triggers")
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=dict(headers or {}),
        )
        await exchange.publish(message, routing_key=target)
    finally:
        await connection.close()
