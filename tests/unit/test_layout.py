"""The layout rules, checked on the source (AST), so that they stay true.

- no module of the product (everything but tests/, bench/ and the data generator) is over
  400 lines;
- every ZenML step function is at most 30 lines, decorator included;
- ``steps/`` holds step modules and ``steps/core/`` only;
- the README's Layout tree names every package of the product, and only folders that exist.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

PRODUCT = ["steps", "pipelines", "bento", "kaggle_orchestrator", "kaggle_emulator", "hf_registry",
           "http_backoff", "data", "docs", ".github"]
NOT_PRODUCT = {ROOT / "data" / "generate.py"}  # a data table written as code
MAX_MODULE_LINES = 400
MAX_STEP_LINES = 30


def _product_modules() -> list[Path]:
    modules = [p for folder in PRODUCT for p in sorted((ROOT / folder).rglob("*.py"))]
    return [p for p in modules if p not in NOT_PRODUCT and "__pycache__" not in p.parts]


def _is_step(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    return name == "step"


def _steps(tree: ast.Module) -> list[ast.FunctionDef]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            and any(_is_step(d) for d in node.decorator_list)]


def test_no_product_module_is_over_400_lines() -> None:
    modules = _product_modules()
    assert len(modules) > 40 and ROOT / "steps" / "register.py" in modules
    too_long = {str(p.relative_to(ROOT)): n for p in modules
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_every_step_function_is_at_most_30_lines() -> None:
    found, too_long = [], {}
    for path in _product_modules():
        for fn in _steps(ast.parse(path.read_text(encoding="utf-8"))):
            first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
            lines = fn.end_lineno - first + 1
            found.append(fn.name)
            if lines > MAX_STEP_LINES:
                too_long[f"{path.relative_to(ROOT)}:{fn.name}"] = lines
    assert {"load_data", "train", "evaluate", "register", "package"} <= set(found)
    assert not too_long, f"step functions over {MAX_STEP_LINES} lines: {too_long}"


def test_steps_holds_step_modules_and_core_only() -> None:
    folder = ROOT / "steps"
    packages = {p.name for p in folder.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages == {"core"}
    for path in sorted(folder.glob("*.py")):
        if path.name != "__init__.py":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            assert _steps(tree), f"{path.relative_to(ROOT)} defines no ZenML step"


def _layout_tree() -> set[str]:
    """The folders the README's Layout tree names, as paths from the repository root."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("\n## Layout\n", 1)[1].split("```\n", 1)[1].split("```", 1)[0]
    paths, parents = set(), []
    for line in block.splitlines()[1:]:  # the first line is the root, nizami/
        name = line[:28].replace("│", " ").replace("├──", "   ").replace("└──", "   ")
        if not name.strip():
            continue  # a description's continuation line
        depth = (len(name) - len(name.lstrip())) // 4
        parents[depth - 1:] = [name.strip().rstrip("/")]
        paths.add("/".join(parents))
    return paths


def test_the_readme_layout_names_every_package_and_only_real_folders() -> None:
    tree = _layout_tree()
    packages = {p.parent.relative_to(ROOT).as_posix() for folder in PRODUCT
                for p in (ROOT / folder).rglob("__init__.py") if "__pycache__" not in p.parts}
    assert "steps/core/evaluate/grading" in packages
    assert not packages - tree, f"packages missing from the README's Layout: {packages - tree}"
    not_folders = [path for path in tree if not (ROOT / path).is_dir()]
    assert not not_folders, f"the README's Layout names folders that do not exist: {not_folders}"
