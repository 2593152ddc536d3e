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


TARGETS: dict[str, Target] = {
    "(a) drain, 1 worker, exec/s": Target(
        ">= Celery", lambda v, f: v >= f["(a) drain, 1 worker, exec/s"].get("Celery", 0)
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


def render(figures: Figures, systems: list[str], version: str, url: str, runs: int) -> str:
    peers = [name for name in systems if name != RICOCHET]
    width = 52
    header = f"{'metric':<{width}}" + "".join(f"{name:>11}" for name in systems)
    header += "".join(f"{'R/' + name[:7]:>10}" for name in peers) + "   target"
    lines = [
        f"Ricochet benchmark suite: RabbitMQ {version} at {url}; medians of {runs} run(s)",
        "",
        header,
        "-" * len(header),
    ]
    for metric, values in figures.items():
        ours = values.get(RICOCHET)
        row = f"{metric:<{width}}" + "".join(f"{_number(values.get(n)):>11}" for n in systems)
        row += "".join(f"{_ratio(ours, values.get(n)):>10}" for n in peers)
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
