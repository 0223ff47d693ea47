"""The package's modules import downwards only: the graph of imports between its top-level modules (every import,
also those inside functions) has no cycle, and the concept modules never reach up to the course's machinery."""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stn_course"
# what teaches and grades, above the concepts: a concept module (affine … deform, gpu, data) imports none of these
MACHINERY = {"checks", "grading", "plotting", "widgets", "explore", "cli", "notebooks"}


def _unit(module: str) -> str:
    """``stn_course.autograd.fast`` -> ``autograd`` (a top-level module or subpackage)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def import_graph() -> dict[str, set[str]]:
    """``{unit: the units it imports}`` for every module of the package, read from its syntax."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                targets = [".".join([*base, node.module])] if node.module else \
                    [".".join([*base, alias.name]) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stn_course"):
                targets = [node.module] if node.module != "stn_course" else \
                    [f"stn_course.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("stn_course")]
            else:
                continue
            for target in targets:
                if _unit(module) and _unit(target) and _unit(module) != _unit(target):
                    graph.setdefault(_unit(module), set()).add(_unit(target))
    return graph


def test_the_modules_import_without_a_cycle():
    graph = import_graph()
    assert {"sampling", "autograd", "checks", "grading"} <= set(graph)  # the reader sees the package
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        raise AssertionError(f"an import runs upward: {' -> '.join(cycle.args[1])}") from None
    assert order.index("sampling") < order.index("stn") < order.index("training")


def test_the_concept_modules_never_import_the_machinery():
    graph = import_graph()
    concepts = set(graph) - MACHINERY - {"course"}
    upward = {unit: sorted(graph[unit] & MACHINERY) for unit in concepts if graph[unit] & MACHINERY}
    assert not upward, f"concept modules importing the course's machinery: {upward}"
