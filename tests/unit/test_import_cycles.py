"""No import cycle among the modules of ``kaggle_orchestrator/`` or of ``steps/``.

The graph is grimp's, the one import-linter checks its contracts on: every ``import`` statement
counts, those inside functions and under ``TYPE_CHECKING`` too, so a cycle hidden by a lazy
import is still found. A cycle is a strongly connected component of more than one module
(Tarjan's algorithm); the failure names its modules.
"""

from __future__ import annotations

import grimp
import pytest

PACKAGES = ["kaggle_orchestrator", "steps"]


def import_cycles(package: str) -> list[list[str]]:
    """The groups of ``package``'s modules that import each other in a circle."""
    graph = grimp.build_graph(package, cache_dir=None)
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    inside = set(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan; depth stays within the package's module count
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module) & inside:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return cycles


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_inside_the_package(package: str) -> None:
    assert import_cycles(package) == [], f"import cycles in {package}/"


def test_a_cycle_through_a_lazy_import_is_found(tmp_path, monkeypatch) -> None:
    package = tmp_path / "circle_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circle_pkg import b\n")
    (package / "b.py").write_text("def f():\n    from circle_pkg import c\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from circle_pkg import a\n"
    )
    (package / "d.py").write_text("from circle_pkg import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("circle_pkg") == [["circle_pkg.a", "circle_pkg.b", "circle_pkg.c"]]
