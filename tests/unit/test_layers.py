"""Layers go one way (STYLE rule 1): errors <- contracts <- engine <- workers; the core has no I/O.

Inside ``workers``, each sub-package may import only the ones listed for it in
``MAY_IMPORT`` (read from the source by ``tests.import_graph``), there are no
import cycles, and no module is over 400 lines. The engine has no I/O, clock,
randomness or logging: a test imports it and checks that no broker or logging
library came along, and reads its source to check that nothing reaches for the
clock, the network or the disk.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.import_graph import Graph, module_files, package_roots

ROOT = Path(__file__).resolve().parents[2]
ENGINE_FILES = sorted((ROOT / "engine").rglob("*.py"))
CONTRACTS_FILES = sorted((ROOT / "contracts").rglob("*.py"))

BROKER_AND_LOGGING = ("aio_pika", "aiormq", "pamqp", "structlog", "logging")
ENGINE_FORBIDDEN = frozenset(
    {
        "logging",
        "structlog",
        "aio_pika",
        "aiormq",
        "pamqp",
        "asyncio",
        "time",
        "random",
        "secrets",
        "os",
        "socket",
        "subprocess",
        "threading",
    }
)
CONTRACTS_FORBIDDEN = frozenset({"logging", "structlog", "aio_pika", "aiormq", "pamqp", "asyncio"})
CLOCK_AND_CHANCE = frozenset(
    # uuid itself may be imported: uuid5 is a hash (child ids); uuid1/uuid4 are chance.
    {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "random", "uuid1", "uuid4"}
)
IO_BUILTINS = frozenset({"open", "print", "input"})


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def imported_modules(tree: ast.AST) -> Iterator[str]:
    """Top-level names of every absolute import in ``tree`` (relative ones stay in the package)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def called_names(tree: ast.AST) -> Iterator[str]:
    """The name of everything called in ``tree``: ``f()`` gives f, ``a.b.f()`` gives f."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                yield node.func.id
            elif isinstance(node.func, ast.Attribute):
                yield node.func.attr


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_layer_files_were_found() -> None:
    """The checks below read real files (an empty glob would pass them vacuously)."""
    assert (True, True) == (bool(ENGINE_FILES), bool(CONTRACTS_FILES))


def test_importing_engine_brings_no_broker_or_logging_library() -> None:
    """``import ricochet.engine`` in a fresh interpreter loads no broker client and no logging."""
    # Given a fresh interpreter
    code = "import ricochet.engine, sys; print('\\n'.join(sorted(sys.modules)))"
    # When it imports the engine
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    # Then none of them came along
    assert [] == [name for name in BROKER_AND_LOGGING if name in loaded]


@pytest.mark.parametrize("path", ENGINE_FILES, ids=_name)
def test_engine_imports_no_io_clock_randomness_or_logging(path: Path) -> None:
    """No module under engine/ imports I/O, clock, randomness or logging (the layer
    rules below keep the workers layer out)."""
    actual = sorted(set(imported_modules(parse(path))) & ENGINE_FORBIDDEN)

    assert [] == actual


@pytest.mark.parametrize("path", ENGINE_FILES, ids=_name)
def test_engine_reads_no_clock_and_opens_nothing(path: Path) -> None:
    """Time and randomness come in as data: no now()/time()/random(), no open() or print()."""
    actual = sorted(set(called_names(parse(path))) & (CLOCK_AND_CHANCE | IO_BUILTINS))

    assert [] == actual


@pytest.mark.parametrize("path", CONTRACTS_FILES, ids=_name)
def test_contracts_import_no_io(path: Path) -> None:
    """Contracts are data and codec: no broker, no logging, no event loop."""
    actual = sorted(set(imported_modules(parse(path))) & CONTRACTS_FORBIDDEN)

    assert [] == actual


@pytest.mark.parametrize("path", CONTRACTS_FILES, ids=_name)
def test_contracts_read_no_clock_and_open_nothing(path: Path) -> None:
    """Contracts are data and codec only: no clock, no files, no printing."""
    actual = sorted(set(called_names(parse(path))) & (CLOCK_AND_CHANCE | IO_BUILTINS))

    assert [] == actual


def test_the_checks_catch_what_they_look_for() -> None:
    """The AST helpers see plain, dotted and from-imports, and clock calls however spelled."""
    tree = ast.parse(
        "import os.path\nfrom time import monotonic\nfrom . import sibling\n"
        "import datetime\nx = datetime.datetime.now()\nopen('f')\n"
    )

    assert ["datetime", "os", "time"] == sorted(imported_modules(tree))
    assert {"now", "open"} == set(called_names(tree))


SHARED = frozenset({"settings", "logs", "clock", "end_of_turn", "addresses"})
"""Modules directly in ``ricochet.workers`` that every sub-package shares."""
CORE = frozenset({"errors", "contracts", "engine"})
MAY_IMPORT: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "contracts": frozenset({"errors"}),
    "engine": frozenset({"errors", "contracts"}),
    "workers.shared": CORE,
    "workers.amqp": CORE | {"workers.shared"},
    # metrics and traces: below everything that counts or traces, above only the broker names
    "workers.observe": CORE | {"workers.shared", "workers.amqp"},
    "workers.log": CORE | {"workers.shared", "workers.amqp", "workers.observe"},
    "workers.delivery": CORE | {"workers.shared", "workers.amqp", "workers.log", "workers.observe"},
    "workers.client": CORE | {"workers.shared", "workers.amqp", "workers.log", "workers.observe"},
    "workers.supervision": CORE
    | {
        "workers.shared",
        "workers.amqp",
        "workers.log",
        "workers.delivery",
        "workers.client",
        "workers.observe",
    },
    "workers.runtime": CORE
    | {
        "workers.shared",
        "workers.amqp",
        "workers.log",
        "workers.delivery",
        "workers.client",
        "workers.supervision",
        "workers.observe",
    },
    "workers.read": CORE | {"workers.shared", "workers.amqp", "workers.log", "workers.observe"},
    "workers.cli": CORE
    | {
        "root",
        "workers.shared",
        "workers.amqp",
        "workers.log",
        "workers.delivery",
        "workers.client",
        "workers.supervision",
        "workers.runtime",
        "workers.read",
    },
    "workers.examples": frozenset({"root"}),
    "root": frozenset({"errors"}),
    "main": frozenset({"workers.cli"}),
}
"""Which part may import which: the house's architecture, in one table."""
MAX_LINES = 400
GRAPH = Graph.read(ROOT)


def part_of(module: str) -> str:
    """The ``MAY_IMPORT`` key of a module: ``ricochet.workers.log.reader`` -> ``workers.log``."""
    parts = module.split(".")[1:]
    if not parts:
        return "root"
    if parts[0] != "workers":
        return "main" if parts[0] == "__main__" else parts[0]
    if len(parts) == 1 or parts[1] in SHARED:
        return "workers.shared"
    return f"workers.{parts[1]}"


def test_every_part_is_in_the_table() -> None:
    """A new sub-package must say what it may import (an unknown part fails here)."""
    assert [] == sorted({part_of(m) for m in GRAPH.edges} - MAY_IMPORT.keys())


@pytest.mark.parametrize("module", sorted(GRAPH.edges))
def test_imports_follow_the_layers(module: str) -> None:
    """Each module imports only from its own part and the parts ``MAY_IMPORT`` lists."""
    mine = part_of(module)
    wrong = [m for m in sorted(GRAPH.edges[module]) if part_of(m) not in MAY_IMPORT[mine] | {mine}]

    assert [] == wrong


def test_there_are_no_import_cycles() -> None:
    assert [] == GRAPH.cycles()


def test_the_layer_rules_catch_a_wrong_way_import() -> None:
    """The table is not vacuous: the engine may not import the log, nor read the runtime."""
    assert "workers.log" not in MAY_IMPORT[part_of("ricochet.engine.watch")]
    assert "workers.runtime" not in MAY_IMPORT[part_of("ricochet.workers.read.api")]
    assert "workers.shared" == part_of("ricochet.workers.settings")


@pytest.mark.parametrize("module", sorted(GRAPH.edges))
def test_no_module_is_over_400_lines(module: str) -> None:
    path = module_files(package_roots(ROOT))[module]

    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES
