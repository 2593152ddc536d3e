"""Every queue Ricochet declares is replicated, and delay queues dead-letter at least once.

The broker-side proof is in tests/integration/test_replication.py and
test_delays_durable.py; these check the declared arguments, which decide it.
"""

from __future__ import annotations

from ricochet.workers.amqp.topology import (
    DELAY_HEADER,
    Names,
    QueueSpec,
    core_queues,
    delay_expiry_ms,
    delay_queue,
    exchanges,
    supervisor,
    work_queue,
)
from ricochet.workers.settings import Settings

NAMES = Names("ns")


def every_queue(settings: Settings) -> list[QueueSpec]:
    group = settings.quorum_group_size
    return [
        *core_queues(NAMES, settings),
        work_queue(NAMES, settings, "default"),
        delay_queue(NAMES, 2_000, group),
    ]


def test_every_queue_is_a_quorum_queue_or_a_stream() -> None:
    kinds = {spec.name: spec.arguments.get("x-queue-type") for spec in every_queue(Settings())}
    assert set(kinds.values()) <= {"quorum", "stream"}, kinds


def test_delay_queues_dead_letter_at_least_once_to_the_work_exchange() -> None:
    spec = delay_queue(NAMES, 2_000)
    assert spec.arguments["x-queue-type"] == "quorum"
    assert spec.arguments["x-dead-letter-strategy"] == "at-least-once"
    assert spec.arguments["x-overflow"] == "reject-publish"  # else at-most-once, silently
    assert spec.arguments["x-dead-letter-exchange"] == NAMES.work
    assert spec.bind_to == NAMES.delay
    assert spec.binding_arguments == {"x-match": "all", DELAY_HEADER: 2_000}


def test_a_delay_queue_outlives_any_message_in_it() -> None:
    """Removed by x-expires only when surely empty: expiry well past twice the TTL."""
    for delay_ms in (1, 1_000, 3_600_000):
        assert delay_queue(NAMES, delay_ms).arguments["x-expires"] == delay_expiry_ms(delay_ms)
        assert delay_expiry_ms(delay_ms) > 2 * delay_ms + 60_000


def test_new_types_come_with_new_names() -> None:
    """A re-declare with another type fails, and the old classic delay queues stay bound
    to ``<ns>.delay``: the new ones must not be reachable from it (retries would double)."""
    assert NAMES.delay == "ns.delayq"
    assert NAMES.delay_queue(500) == "ns.delayq.500ms"
    assert NAMES.supervisor == "ns.heartbeats"
    assert "ns.delay" not in {spec.name for spec in exchanges(NAMES)}


def test_the_heartbeat_queue_keeps_its_bounds_as_a_quorum_queue() -> None:
    arguments = supervisor(NAMES).arguments
    assert arguments["x-queue-type"] == "quorum"
    assert arguments["x-single-active-consumer"] is True
    assert arguments["x-overflow"] == "drop-head"
    assert arguments["x-max-length"] > 0
    assert arguments["x-message-ttl"] > 0


def test_no_replication_argument_by_default() -> None:
    """None leaves it to the broker: every node, on one node and on a cluster alike."""
    for spec in every_queue(Settings()):
        assert "x-quorum-initial-group-size" not in spec.arguments, spec.name
        assert "x-initial-cluster-size" not in spec.arguments, spec.name


def test_replication_sizes_reach_the_queues_that_take_settings() -> None:
    settings = Settings(quorum_group_size=3, stream_group_size=2)
    specs = {spec.name: spec.arguments for spec in every_queue(settings)}
    streams = {name for name, args in specs.items() if args["x-queue-type"] == "stream"}
    assert streams == {NAMES.events, NAMES.checkpoints}
    for name in streams:
        assert specs[name]["x-initial-cluster-size"] == 2
    # The supervisor re-declares these two from the namespace alone: broker default always.
    default_group = {NAMES.supervisor, NAMES.dead_watch}
    for name in set(specs) - streams - default_group:
        assert specs[name]["x-quorum-initial-group-size"] == 3, name
    for name in default_group:
        assert "x-quorum-initial-group-size" not in specs[name]
