"""Install what a registered stack's components need and this environment lacks.

ZenML knows each component's Python requirements (its integration's, e.g. the Kubernetes
orchestrator's ``kubernetes>=21.7,<26``; ``zenml stack export-requirements`` prints them); this
installs the ones not satisfied here, with every package already installed held at its version
(a constraints file of ``pip freeze``), so a stack never moves one of the project's pins. A
requirement that would need to is a pip error naming both.

``python -m pipelines.stack_requirements <stack>`` (``stacks/register.sh`` runs
:func:`install_missing` in :mod:`pipelines.register_stack`); exit 0 when
nothing was missing or the install succeeded.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from importlib import metadata

from packaging.requirements import Requirement


def missing(requirements: list[str]) -> list[str]:
    """The requirements this environment does not satisfy (not installed, or another version)."""
    lacking = []
    for line in requirements:
        requirement = Requirement(line)
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            lacking.append(line)
            continue
        if version not in requirement.specifier:
            lacking.append(line)
    return lacking


def stack_requirements(stack: str) -> list[str]:
    """ZenML's requirements of stack ``stack`` (what ``zenml stack export-requirements`` lists)."""
    from zenml.client import Client
    from zenml.utils import requirements_utils

    requirements, _ = requirements_utils.get_requirements_for_stack(Client().get_stack(stack))
    return list(requirements)


def install(requirements: list[str]) -> subprocess.CompletedProcess[str]:
    """``pip install`` ``requirements``, everything installed held where it is."""
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    held = [line for line in frozen.splitlines() if "==" in line and not line.startswith("-")]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="installed-") as constraints:
        constraints.write("\n".join(held) + "\n")
        constraints.flush()
        return subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-c", constraints.name, *requirements],
            capture_output=True, text=True,
        )  # fmt: skip


def install_missing(stack: str) -> int:
    """Install what stack ``stack`` lacks; 0, or 1 after saying what failed on stderr."""
    lacking = missing(stack_requirements(stack))
    if not lacking:
        return 0
    print(f"stack {stack!r} needs {', '.join(lacking)}: installing", flush=True)
    done = install(lacking)
    if done.returncode != 0:
        print(
            f"installing {' '.join(lacking)} for stack {stack!r} failed (the project's pins are "
            f"held):\n{done.stdout}{done.stderr}",
            file=sys.stderr,
        )
        return 1
    return 0


def main() -> int:
    return install_missing(sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
