"""Register the project's own stack-component flavors in the active ZenML store (idempotent).

``stacks/register.sh`` (:mod:`pipelines.register_stack`) runs :func:`register_flavors` before
importing a stack; ``python -m pipelines.flavors`` does it alone. A flavor
registered from an older source path (the flavors moved to ``kaggle_orchestrator/flavors/`` and
``hf_registry/flavors/``) is registered again from the current one, so an existing store keeps
working after an upgrade.
"""

from __future__ import annotations

import sys

FLAVORS = {
    "step_operator":
        "kaggle_orchestrator.flavors.kaggle_step_operator_flavor.KaggleStepOperatorFlavor",
    "model_registry":
        "hf_registry.flavors.hf_model_registry_flavor.HuggingFaceModelRegistryFlavor",
    "experiment_tracker": "pipelines.wandb_flavor.NizamiWandbFlavor",
}


def register_flavors() -> list[str]:
    """Create or update each flavor of ``FLAVORS``; returns what was done, one line each."""
    from zenml.client import Client
    from zenml.enums import StackComponentType
    from zenml.utils import source_utils

    client, done = Client(), []
    for kind, source in FLAVORS.items():
        component_type = StackComponentType(kind)
        name = source_utils.load(source)().name
        try:
            existing = client.get_flavor_by_name_and_type(name, component_type)
        except KeyError:
            existing = None
        if existing is not None and existing.source == source:
            done.append(f"{kind} flavor '{name}': registered")
            continue
        if existing is None:
            client.create_flavor(source, component_type)
        else:  # registered from a path that moved; components may use it: update in place
            from zenml.models import FlavorUpdate

            schema = source_utils.load(source)().config_schema
            client.zen_store.update_flavor(existing.id,
                                           FlavorUpdate(source=source, config_schema=schema))
        done.append(f"{kind} flavor '{name}': {'updated to' if existing else 'registered from'} "
                    f"{source}")
    return done


if __name__ == "__main__":
    print("\n".join(register_flavors()), file=sys.stdout)
