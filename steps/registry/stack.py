"""Which model registry the active stack has: the register and package steps ask here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from zenml.client import Client
from zenml.enums import StackComponentType

if TYPE_CHECKING:
    from steps.registry.model_registry import HuggingFaceModelRegistry

log = logging.getLogger(__name__)


def hub_registry() -> HuggingFaceModelRegistry | None:
    """The active stack's ``huggingface`` model registry, or None when the stack has none.

    A registry of another flavor is ignored with a warning: this pipeline publishes adapters
    to the Hub only.
    """
    from steps.registry.model_registry import HuggingFaceModelRegistry

    registry = Client().active_stack.model_registry
    if registry is None:
        return None
    if not isinstance(registry, HuggingFaceModelRegistry):
        log.warning(
            "model registry %r is flavor %r, not 'huggingface': registering on ZenML only",
            registry.name,
            registry.flavor,
        )
        return None
    return registry


def registry_identity() -> str:
    """Part of the register step's cache key: the registry (and where it points) it publishes
    to, so switching stacks or endpoints never reuses a registration made elsewhere."""
    components = Client().active_stack_model.components.get(StackComponentType.MODEL_REGISTRY)
    if not components:
        return "no-model-registry"
    registry = components[0]
    where = [registry.configuration.get(k) for k in ("endpoint", "namespace")]
    return ":".join(map(str, [registry.flavor_name, registry.id, *where]))


def run_provenance() -> dict[str, str]:
    """Which ZenML run, pipeline, step and model version produced what is being registered."""
    from zenml import __version__, get_step_context

    context = get_step_context()
    version = context.model_version
    return {
        "zenml_version": __version__,
        "zenml_pipeline_name": context.pipeline.name,
        "zenml_run_name": context.pipeline_run.name,
        "zenml_pipeline_run_uuid": str(context.pipeline_run.id),
        "zenml_step_name": context.step_run.name,
        "zenml_model": version.model.name if version else "",
        "zenml_model_version": str(version.number) if version else "",
    }


def registered_adapter(model_name: str, revision: str) -> Path:
    """The adapter of a registered version (``vX.Y``, ``prod``, a sha) from the stack's registry.

    Records where it came from as metadata of the running step.

    Raises:
        RuntimeError: the active stack has no ``huggingface`` model registry.
    """
    from zenml import log_metadata

    registry = hub_registry()
    if registry is None:
        raise RuntimeError(
            f"package.from_revision={revision!r} needs a stack with a 'huggingface' model "
            f"registry (e.g. stacks/huggingface.yaml); the active stack "
            f"{Client().active_stack_model.name!r} has none"
        )
    adapter = registry.load_model_version(model_name, revision)
    version = registry.get_model_version(model_name, revision)
    source = {
        "repo_id": registry.repo_id(model_name),
        "requested": revision,
        "version_tag": version.version,
        "revision": adapter.name,  # snapshot folders are named after the commit sha
    }
    log.info("packaging %s %s (%s)", source["repo_id"], revision, source["revision"][:12])
    log_metadata(metadata={"adapter_source": source})
    return adapter
