"""The suite's table: medians per system, ratios to each peer, and the issue's targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Figures = dict[str, dict[str, float]]
RICOCHET = "Ricochet"


@dataclass(frozen=True, slots=True)
class Target:
    """A goal for one metric of Ricochet's, judged on the medians."""

    text: str
    met: Callable[[float, Figures], bool]


def _within_raw(value: float, figures: Figures) -> bool:
    raw = [v[RICOCHET] for m, v in figures.items() if m.startswith("raw: TTL") and "at once" in m
           and m.endswith("-> classic p99 ms")]  # fmt: skip
    return value <= 50 and bool(raw) and value <= raw[0] + 15


def _peer(figures: Figures, metric: str, peer: str) -> float:
    return figures[metric].get(peer, 0.0)


def _drain_one(value: float, figures: Figures) -> bool:
    """Issue 10: at least both Celery configurations and 0.9x Dramatiq with prefetch 64."""
    metric = "(a) drain, 1 worker, exec/s"
    celery = max(_peer(figures, metric, "Celery"), _peer(figures, metric, "Celery-64"))
    return value >= celery and value >= 0.9 * _peer(figures, metric, "Dramatiq-64")


TARGETS: dict[str, Target] = {
    "(a) drain, 1 worker, exec/s": Target(">= both Celery, >= 0.9x Dramatiq-64", _drain_one),
    "(b) drain, 2 workers, exec/s": Target(
        ">= 0.8x Dramatiq-64",
        lambda v, f: v >= 0.8 * _peer(f, "(b) drain, 2 workers, exec/s", "Dramatiq-64"),
    ),
    "(c) retry 2 s p99 ms": Target("<= 50, raw burst + 15", _within_raw),
    "(d) 1 s group after 10 s p99 ms": Target("<= 50, raw burst + 15", _within_raw),
    "(e) fold, decoded events/s": Target(">= 200,000", lambda v, _: v >= 200_000),
    "(e) decode + fold from JSON, events/s": Target(">= 100,000", lambda v, _: v >= 100_000),
    "(e) replay of (a)'s log from the broker, events/s": Target(
        ">= 50,000", lambda v, _: v >= 50_000
    ),
    "(f) growth, MiB": Target("flat (<= 5)", lambda v, _: v <= 5),
}


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or not theirs:
        return ""
    return f"{ours / theirs:.2f}"


def _ratio_width(peer: str) -> int:
    """Room for ``R/<peer>`` in full: the peers' two configurations differ only at the end."""
    return max(10, len(peer) + 4)


def render(figures: Figures, systems: list[str], version: str, url: str, runs: int) -> str:
    peers = [name for name in systems if name != RICOCHET]
    width = 52
    header = f"{'metric':<{width}}" + "".join(f"{name:>12}" for name in systems)
    header += "".join(f"{'R/' + name:>{_ratio_width(name)}}" for name in peers) + "   target"
    lines = [
        f"Ricochet benchmark suite: RabbitMQ {version} at {url}; medians of {runs} run(s)",
        "",
        header,
        "-" * len(header),
    ]
    for metric, values in figures.items():
        ours = values.get(RICOCHET)
        row = f"{metric:<{width}}" + "".join(f"{_number(values.get(n)):>12}" for n in systems)
        row += "".join(f"{_ratio(ours, values.get(n)):>{_ratio_width(n)}}" for n in peers)
        target = TARGETS.get(metric)
        if target is not None and ours is not None:
            row += f"   {target.text}: {'met' if target.met(ours, figures) else 'MISSED'}"
        lines.append(row)
    lines += [
        "",
        "R/peer: Ricochet's figure divided by the peer's (higher is better for rates,",
        "lower for lateness and memory). Raw rows are plain aio-pika on the same broker;",
        "lateness = start of the retry - its due time (Ricochet: from the event log).",
    ]
    return "\n".join(lines)
