"""The package's imports follow the one-way flow of docs/architecture.md, "Layers and data flow":
data -> models -> distill -> train -> tracking -> evaluation -> energy -> deploy.

Every module of ``spiketrack`` is parsed with ``ast`` (imports inside functions included, and
``importlib.import_module("literal")`` calls), so a deferred import cannot hide a cycle. Failures list the
offending edges as ``importer -> imported (line)``.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from dataclasses import dataclass
from pathlib import Path

import pytest

import spiketrack

# The subpackages in the order data flows through them (docs/architecture.md, "Layers and data flow"); distill sits
# between the models it aligns and the trainer that uses it. A subpackage may import only subpackages before it.
FLOW = ("data", "models", "distill", "train", "tracking", "evaluation", "energy", "deploy")
RANK = {name: i for i, name in enumerate(FLOW)}


@dataclass(frozen=True)
class Edge:
    """``importer`` imports ``imported`` at ``line`` of the importer's file."""

    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} (line {self.line})"


def _modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> source file."""
    found = {"spiketrack": Path(spiketrack.__file__)}
    for info in pkgutil.walk_packages(spiketrack.__path__, "spiketrack."):
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin is not None, info.name
        found[info.name] = Path(spec.origin)
    return found


def _package_of(module: str, path: Path) -> str:
    """The package a module's relative imports start from."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, path: Path, known: set[str]) -> list[Edge]:
    """Every import in ``path`` (any depth), as edges to the most precise module name."""
    edges = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(module, path).split(".")
                anchor = ".".join(package[: len(package) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            # ``from spiketrack import energy`` imports the module spiketrack.energy; outside the package the
            # name may be a module too (``from spikingjelly import _ops``), so it is kept
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known or not base.startswith("spiketrack") else base
                for a in node.names
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            targets = [node.args[0].value]
        edges += [Edge(module, t, node.lineno) for t in dict.fromkeys(targets)]
    return edges


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    modules = _modules()
    known = set(modules)
    return [e for name, path in sorted(modules.items()) for e in _imports(name, path, known)]


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "spiketrack" and parts[1] in RANK else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_walk_sees_deferred_imports(edges: list[Edge]) -> None:
    """Sanity check of the parser: known imports, one of them inside a function, are found."""
    found = {(e.importer, e.imported) for e in edges}
    assert ("spiketrack.tracking.runner", "spiketrack.tracking.tracker") in found
    assert ("spiketrack.tracking.runner", "spiketrack.data.h5seq") in found  # imported inside run_one
    assert ("spiketrack.models.checkpoint", "spiketrack.models") in found


def test_subpackages_import_only_upstream(edges: list[Edge]) -> None:
    """Data flows one way: no subpackage imports one after it in FLOW (models never import train or tracking,
    tracking imports neither train nor energy), so there is no import cycle between subpackages."""
    cross = [
        (e, a, b) for e in edges
        if (a := _subpackage(e.importer)) and (b := _subpackage(e.imported)) and a != b
    ]
    graph: dict[str, set[str]] = {}
    for _, a, b in cross:
        graph.setdefault(a, set()).add(b)
    cycles = _cycles(graph)
    cycle_edges = [str(e) for e, a, b in cross if any(a in c and b in c for c in cycles)]
    assert not cycles, f"import cycles between subpackages {cycles}:\n" + "\n".join(cycle_edges)
    against = [str(e) for e, a, b in cross if RANK[b] > RANK[a]]
    assert not against, f"imports against the flow {' -> '.join(FLOW)}:\n" + "\n".join(against)


def test_tracking_knows_neither_train_nor_energy(edges: list[Edge]) -> None:
    """The two rules docs/architecture.md, "Layers and data flow" names (also covered by the flow above), reported on
    their own."""
    bad = [
        str(e) for e in edges
        if (_subpackage(e.importer), _subpackage(e.imported)) in {
            ("models", "train"), ("models", "tracking"), ("tracking", "train"), ("tracking", "energy")}
    ]
    assert not bad, "\n".join(bad)


def test_no_private_spikingjelly_ops(edges: list[Edge]) -> None:
    """spikingjelly's private ``_ops`` package is not an API: nothing imports it."""
    bad = [str(e) for e in edges if e.imported == "spikingjelly._ops" or e.imported.startswith("spikingjelly._ops.")]
    assert not bad, "imports of spikingjelly._ops:\n" + "\n".join(bad)
