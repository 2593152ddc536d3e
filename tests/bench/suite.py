"""The benchmark suite: Ricochet beside Celery and Dramatiq, on one broker, in one run.

    .venv/bin/pip install -e '.[dev,bench]'       # once: the peers
    .venv/bin/python -m tests.bench.suite [--runs 3] [--quick] [--only ricochet]

Workloads (issue 6): (a) 20,000 no-ops drained by one worker process; (b) by two;
each beside the broker's CPU time per execution (its process's counters, submission
included), and each peer in two configurations: its defaults, and a 64-message
window like Ricochet's ``--concurrency 64`` (Celery ``-P solo --prefetch-multiplier
64``, Dramatiq ``dramatiq_queue_prefetch=64``), issue 10;
(c) 200 retries due 2 s after failing, lateness; (d) 100 retries due in 10 s,
then 100 due in 1 s, lateness of the 1 s group; (e) Ricochet's fold and replay
rates; (f) worker memory after 1,000 and after 100,000 executions. Ceilings:
plain aio-pika confirmed publish and consume, and TTL dead-letter lateness.

Each figure is the median of ``--runs`` runs; the table goes to stdout,
progress to stderr. See ``tests/bench/README.md`` for how each peer is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import orjson

from ricochet.workers.settings import Settings
from tests.bench.bench_core import server_version
from tests.bench.bench_projector import fold_rates
from tests.bench.raw import publish_then_consume, ttl_lateness
from tests.bench.ricochet_system import RicochetSystem
from tests.bench.support import delete_objects, masked, new_namespace, percentile
from tests.bench.systems import System
from tests.bench.table import render

RICOCHET = "Ricochet"
WINDOW = 64
"""The peers' second configuration takes this many messages at once, as Ricochet's
``--concurrency 64`` does (issue 10)."""


@dataclass(frozen=True, slots=True)
class Sizes:
    executions: int = 20_000
    retries: int = 200
    mixed: int = 100
    memory_small: int = 1_000
    memory_large: int = 100_000
    fold_executions: int = 50_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(2_000, 50, 20, 500, 5_000, 10_000)


Figures = dict[str, dict[str, float]]
"""metric -> system -> value, for one run."""


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def peers(url: str, only: set[str]) -> list[System]:
    systems: list[System] = [RicochetSystem()]
    try:
        from tests.bench.peers.run import CeleryPeer, DramatiqPeer
    except ImportError as err:  # the bench extra is missing
        raise SystemExit(f"install the peers first: pip install -e '.[dev,bench]' ({err})") from err
    systems += [
        CeleryPeer(url),
        CeleryPeer(url, WINDOW),
        DramatiqPeer(url),
        DramatiqPeer(url, WINDOW),
    ]
    return [system for system in systems if not only or _chosen(system.name.lower(), only)]


def _chosen(name: str, only: set[str]) -> bool:
    """``--only celery`` takes both of Celery's configurations; ``--only celery-64`` one."""
    return name in only or name.split("-")[0] in only


def lateness(into: Figures, metric: str, system: str, seconds: list[float]) -> None:
    for q, label in ((50, "p50"), (99, "p99"), (100, "max")):
        into[f"{metric} {label} ms"][system] = percentile(seconds, q) * 1000


async def run_system(system: System, sizes: Sizes, into: Figures) -> None:
    """Every workload of one system; one that fails is reported and left out (n/a)."""
    for workload in (drain_one, drain_two, retry_2s, mixed_delays, memory):
        try:
            await workload(system, sizes, into)
        except Exception as err:
            progress(f"{system.name}: {workload.__name__} FAILED: {type(err).__name__}: {err}")


async def drain_one(system: System, sizes: Sizes, into: Figures) -> None:
    progress(f"{system.name}: (a) {sizes.executions} no-ops, one worker")
    into["(a) drain, 1 worker, exec/s"][system.name] = await system.drain(sizes.executions, 1)
    broker_cpu(into, "(a) broker CPU per execution, us", system, sizes.executions)
    if isinstance(system, RicochetSystem):
        replay = "(e) replay of (a)'s log from the broker, events/s"
        into[replay][system.name] = system.replay_per_s


async def drain_two(system: System, sizes: Sizes, into: Figures) -> None:
    progress(f"{system.name}: (b) {sizes.executions} no-ops, two workers")
    into["(b) drain, 2 workers, exec/s"][system.name] = await system.drain(sizes.executions, 2)
    broker_cpu(into, "(b) broker CPU per execution, us", system, sizes.executions)


def broker_cpu(into: Figures, metric: str, system: System, executions: int) -> None:
    """The broker's CPU time over the drain just run (submission included), per execution."""
    if system.broker_cpu_s is not None:
        into[metric][system.name] = system.broker_cpu_s / executions * 1e6


async def retry_2s(system: System, sizes: Sizes, into: Figures) -> None:
    progress(f"{system.name}: (c) {sizes.retries} retries due 2 s after failing")
    late = await system.retry_lateness(sizes.retries, 2.0)
    lateness(into, "(c) retry 2 s", system.name, late)


async def mixed_delays(system: System, sizes: Sizes, into: Figures) -> None:
    progress(f"{system.name}: (d) {sizes.mixed} retries in 10 s, then {sizes.mixed} in 1 s")
    late = await system.mixed_lateness(sizes.mixed, 10.0, 1.0)
    lateness(into, "(d) 1 s group after 10 s", system.name, late)


async def memory(system: System, sizes: Sizes, into: Figures) -> None:
    small, large = sizes.memory_small, sizes.memory_large
    progress(f"{system.name}: (f) memory after {small} and {large}")
    measured = await system.memory(small, large)
    into[f"(f) worker RSS after {small:,}, MiB"][system.name] = measured.after_small_mib
    into[f"(f) worker RSS after {large:,}, MiB"][system.name] = measured.after_large_mib
    into["(f) growth, MiB"][system.name] = measured.growth_mib


async def run_raw(url: str, sizes: Sizes, into: Figures) -> None:
    """The broker's own ceilings, in queues of a fresh namespace."""
    ns = new_namespace()
    progress(f"raw aio-pika: {sizes.executions} confirmed publishes, then consume")
    rates = await publish_then_consume(url, f"{ns}.raw", sizes.executions, 300)
    into["raw: confirmed publish, msg/s"][RICOCHET] = rates.publish_per_s
    into["raw: consume, msg/s"][RICOCHET] = rates.consume_per_s
    queues = [f"{ns}.wait", f"{ns}.arrived", f"{ns}.raw"]
    try:
        for count, label in ((1, "1 message"), (sizes.retries, f"{sizes.retries} at once")):
            for quorum in (False, True):
                kind = "quorum" if quorum else "classic"
                progress(f"raw TTL lateness, {label}, into a {kind} queue")
                seconds = await ttl_lateness(
                    url, queues[0], queues[1], f"{ns}.dlx", count, 2.0, quorum_arrival=quorum
                )
                await delete_objects(url, queues[:2], [])
                lateness(into, f"raw: TTL {label} -> {kind}", RICOCHET, seconds)
    finally:
        await delete_objects(url, queues, [f"{ns}.dlx"])


def run_fold(sizes: Sizes, into: Figures) -> None:
    progress(f"(e) fold of {sizes.fold_executions * 4:,} events in-process")
    folded, decoded = fold_rates(sizes.fold_executions)
    into["(e) fold, decoded events/s"][RICOCHET] = folded
    into["(e) decode + fold from JSON, events/s"][RICOCHET] = decoded


async def one_run(url: str, systems: list[System], sizes: Sizes) -> Figures:
    figures: Figures = defaultdict(dict)
    await run_raw(url, sizes, figures)
    run_fold(sizes, figures)
    for system in systems:
        await run_system(system, sizes, figures)
    return figures


def medians(runs: list[Figures]) -> Figures:
    merged: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for figures in runs:
        for metric, values in figures.items():
            for system, value in values.items():
                merged[metric][system].append(value)
    return {m: {s: statistics.median(v) for s, v in by.items()} for m, by in merged.items()}


async def main(runs: int, sizes: Sizes, only: set[str], save: Path | None) -> None:
    url = Settings.from_env().amqp_url
    systems = peers(url, only)
    version = await server_version(url)
    collected: list[Figures] = []
    for number in range(1, runs + 1):
        progress(f"run {number} of {runs}")
        collected.append(await one_run(url, systems, sizes))
        if save is not None:  # after every run: a later failure loses nothing
            _save(save, collected)
    print(render(medians(collected), [s.name for s in systems], version, masked(url), runs))


def _save(path: Path, runs: list[Figures]) -> None:
    path.write_bytes(orjson.dumps(runs, option=orjson.OPT_INDENT_2))


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.suite", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs; figures are medians")
    parser.add_argument("--quick", action="store_true", help="small sizes, to try it out")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="ricochet, celery, celery-64, dramatiq or dramatiq-64 (repeatable)",
    )
    parser.add_argument("--save", type=Path, help="write every run's figures here (JSON)")
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    asyncio.run(main(args.runs, sizes, {name.lower() for name in args.only}, args.save))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
