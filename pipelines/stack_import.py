"""Register ``stacks/<name>.yaml`` in the active ZenML store: in any order, and again.

``zenml stack import`` refuses a stack whose components exist already with another
configuration ("... already exists, but is configured differently"), and stacks here share
components (``nizami_s3`` of ``team`` and ``team-k8s``, the tracker of every stack), which the
README has you point at your bucket, cluster or registry. ``stacks/register.sh`` therefore
registers with :func:`register_stack`:

- a component that does not exist is created as the file says;
- one that exists with the same flavor is used as it is (it may have been pointed somewhere on
  purpose); where its configuration differs from the file, the keys are listed;
- one that exists with another flavor is a conflict: nothing is changed, and the message names
  it and the command that resolves it;
- the stack is created, or, when it exists, set to the file's components.

Exit status 0, or 1 with the conflict (``python -m pipelines.stack_import <name>``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


class StackConflict(RuntimeError):
    """A component of the file exists with another flavor."""


def _components(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for group in (spec.get("components") or {}).values() for c in group]


def register_stack(name: str, stacks_dir: Path = ROOT / "stacks") -> list[str]:
    """Create or update stack ``name`` from ``stacks_dir/<name>.yaml``; what was done, a line
    each.

    Raises:
        StackConflict: A component of the same name and type has another flavor.
    """
    from zenml.client import Client
    from zenml.enums import StackComponentType

    path = stacks_dir / f"{name}.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    client, said, chosen = Client(), [], {}
    for component in _components(spec):
        kind = StackComponentType(component["type"])
        wanted = component.get("configuration") or {}
        try:
            existing = client.get_stack_component(kind, component["name"])
        except KeyError:
            existing = None
        if existing is None:
            client.create_stack_component(component["name"], component["flavor"], kind, wanted)
            said.append(f"{kind.value} {component['name']}: created")
        elif existing.flavor_name != component["flavor"]:
            raise StackConflict(
                f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: the "
                f"{kind.value} '{component['name']}' exists with flavor "
                f"'{existing.flavor_name}', the file wants '{component['flavor']}'. Nothing was "
                f"changed. Rename the old one (`zenml {kind.value.replace('_', '-')} rename "
                f"{component['name']} {component['name']}_old`) or delete it, then run "
                f"stacks/register.sh {name} again."
            )
        else:
            differs = sorted(k for k, v in wanted.items() if existing.configuration.get(k) != v)
            note = f" (configured here, not as the file: {', '.join(differs)})" if differs else ""
            said.append(f"{kind.value} {component['name']}: exists, used as it is{note}")
        chosen[kind] = component["name"]
    stack_name = spec.get("stack_name", name)
    try:
        stack = client.get_stack(stack_name)
    except KeyError:
        stack = None
    if stack is None:
        client.create_stack(stack_name, components=chosen)
        said.append(f"stack '{stack_name}' registered")
        return said
    current = {kind: [c.name for c in comps] for kind, comps in stack.components.items()}
    if current == {kind: [n] for kind, n in chosen.items()}:
        said.append(f"stack '{stack_name}' already registered")
        return said
    client.update_stack(stack_name, component_updates={
        kind: [chosen[kind]] if kind in chosen else [] for kind in {*chosen, *current}
    })  # fmt: skip
    said.append(f"stack '{stack_name}' updated to the components of {path.name}")
    return said


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.stack_import <name>``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pipelines.stack_import <stack name>", file=sys.stderr)
        return 2
    try:
        lines = register_stack(args[0])
    except StackConflict as conflict:
        print(f"register: {conflict}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
