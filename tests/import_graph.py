"""The shape of the house: modules per folder, the longest import chain, and cycles.

Run ``python -m tests.import_graph`` from the repository root. It reads the source
(no imports are executed) and counts module-level imports between Ricochet's own
modules; imports under ``if TYPE_CHECKING:`` are left out because they never run.
The layer test uses the same graph to forbid cycles and wrong-way imports.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_roots(root: Path = ROOT) -> dict[str, Path]:
    """Top-level package name -> folder: ``ricochet`` once it exists, else the old three."""
    if (root / "ricochet" / "__init__.py").exists():
        return {"ricochet": root / "ricochet"}
    return {name: root / name for name in ("contracts", "engine", "workers")}


def module_files(roots: dict[str, Path]) -> dict[str, Path]:
    """Every module's dotted name and its file (symlinked folders are followed)."""
    found: dict[str, Path] = {}
    for top, folder in roots.items():
        for path in sorted(_python_files(folder)):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((top, *parts))] = path
    return found


def _python_files(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and (entry / "__init__.py").exists():
            yield from _python_files(entry)
        elif entry.suffix == ".py":
            yield entry


def _runtime_imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    """Absolute names imported at run time (TYPE_CHECKING blocks skipped)."""
    for node in _walk_skipping_type_checking(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    return ".".join([*parts[:keep], *([node.module] if node.module else [])])


def _walk_skipping_type_checking(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in ast.walk(child))
            continue
        yield node
        yield from _walk_skipping_type_checking(node)


@dataclass(frozen=True)
class Graph:
    """Ricochet's modules and which of them each one imports."""

    edges: dict[str, frozenset[str]]

    @classmethod
    def read(cls, root: Path = ROOT) -> Graph:
        files = module_files(package_roots(root))
        edges: dict[str, frozenset[str]] = {}
        for module, path in files.items():
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            names = _runtime_imports(tree, module, path.name == "__init__.py")
            edges[module] = frozenset(n for n in names if n in files and n != module)
        return cls(edges)

    def cycles(self) -> list[list[str]]:
        """Strongly connected groups of more than one module (Tarjan's algorithm)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        groups: list[list[str]] = []

        def visit(node: str) -> None:
            index[node] = low[node] = len(index)
            stack.append(node)
            on_stack.add(node)
            for nxt in sorted(self.edges[node]):
                if nxt not in index:
                    visit(nxt)
                    low[node] = min(low[node], low[nxt])
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if low[node] == index[node]:
                group = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    group.append(top)
                    if top == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

        sys.setrecursionlimit(10_000)
        for node in sorted(self.edges):
            if node not in index:
                visit(node)
        return groups

    def longest_chain(self) -> list[str]:
        """The longest path of imports (within an acyclic graph; cycles are cut)."""

        @cache
        def longest_from(node: str) -> tuple[str, ...]:
            best: tuple[str, ...] = ()
            for nxt in sorted(self.edges[node]):
                path = longest_from(nxt)
                best = path if len(path) > len(best) else best
            return (node, *best)

        if self.cycles():
            return []
        chains: list[tuple[str, ...]] = [longest_from(m) for m in sorted(self.edges)]
        longest = max(chains, key=len)
        return list(longest)

    def modules_per_folder(self) -> Counter[str]:
        """Modules (``__init__`` excluded) counted by the package that holds them."""
        packages = {m for m in self.edges if any(o.startswith(m + ".") for o in self.edges)}
        return Counter(m.rsplit(".", 1)[0] for m in self.edges if m not in packages)


def main() -> None:
    graph = Graph.read()
    print("modules per folder:")
    for folder, count in sorted(graph.modules_per_folder().items()):
        print(f"  {folder:<32} {count:>3}")
    cycles = graph.cycles()
    print(f"cycles: {len(cycles)}")
    for group in cycles:
        print("  " + " <-> ".join(group))
    chain = graph.longest_chain()
    print(f"longest import chain: {len(chain)} modules")
    for module in chain:
        print(f"  {module}")


if __name__ == "__main__":
    main()
