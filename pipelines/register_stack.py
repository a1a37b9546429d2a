"""``stacks/register.sh <name>``'s work in one Python process.

Registering a stack is six steps, each of which needs ZenML loaded (about 4 s of CPU on the
2-core machines here): the project's flavors (:mod:`pipelines.flavors`), the stack from its file
(:mod:`pipelines.stack_import`), what its components need (:mod:`pipelines.stack_requirements`),
the server-mode check (:mod:`kaggle_orchestrator.stack_check`), ``zenml stack set``, and what W&B
would do (:mod:`pipelines.tracker`). Run as six processes they took 24 s per registration, also
when nothing changed; here ZenML is loaded once. Each module still runs on its own
(``python -m pipelines.stack_import <name>`` and so on) and says the same.

Output and exit status are the six steps' in order: 1 with the reason on stderr at the first
step that refuses (a flavor conflict, a failed install, a stack that cannot work), 2 for usage.
"""

from __future__ import annotations

import importlib
import sys


def register(name: str) -> int:
    """Register stack ``name`` and make it active; 0, or 1 after saying why not on stderr."""
    from kaggle_orchestrator.stack_check import check_registered_stack
    from pipelines.flavors import register_flavors
    from pipelines.stack_import import StackConflict, register_stack
    from pipelines.stack_requirements import install_missing

    print("\n".join(register_flavors()))
    try:
        print("\n".join(register_stack(name)))
    except StackConflict as conflict:
        print(f"register: {conflict}", file=sys.stderr)
        return 1
    if install_missing(name) != 0:
        return 1
    importlib.invalidate_caches()  # what was just installed is importable in this process
    problems = check_registered_stack(name)
    for problem in problems:
        print(f"stack '{name}': {problem}", file=sys.stderr)
    if problems:
        return 1

    from zenml.client import Client

    from pipelines.tracker import decide

    Client().activate_stack(name)
    print(f"active stack: {name}")
    # W&B is decided at each run; this says what a run started now would do.
    print(f"{decide(probe=False).describe()} - decided again at each run", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.register_stack <name>``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pipelines.register_stack <stack name>", file=sys.stderr)
        return 2
    return register(args[0])


if __name__ == "__main__":
    sys.exit(main())
