"""Step: merge the adapter, save it as a BentoML model, build the bentos and their images.

Two bentos share the model: ``<bento_model>`` (GPU image, the output) and ``<bento_model>-cpu``.
Where a Docker engine runs, the variants in ``package.images`` become images ``<name>:<version>``
and ``:latest`` (a failed build fails the step); the others, and all without an engine, are
left as complete build contexts in the BentoML home, with the reason (see step metadata).
"""

import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any

from zenml import log_metadata, step
from zenml.client import Client

from steps.core.config import ModelConfig, PackageConfig
from steps.core.register.registration import Registration

log = logging.getLogger(__name__)


@step
def package(
    adapter: Path, base_model: ModelConfig, package: PackageConfig, registration: Registration
) -> Annotated[str, "bento_tag"]:
    """The bento's tag is the output; the merged weights are baked into it."""
    from bento.build import build_variants, save_model
    from steps.core.modeling import resolve_base_model
    from steps.core.package.merging import merge_adapter

    if package.from_revision:  # a registered version (vX.Y, prod) instead of the new adapter
        adapter = registered_adapter(registration.model, package.from_revision)
    with tempfile.TemporaryDirectory(prefix="nizami-merged-") as scratch:
        merged = merge_adapter(
            resolve_base_model(base_model), adapter, Path(scratch) / "model", package.dtype
        )
        labels = {"zenml_model": registration.model, "zenml_version": registration.version}
        model_tag = save_model(merged, package.bento_model, labels, registration.metrics.to_json())
    bentos = build_variants(package.bento_model, model_tag, labels)
    images = containerize(bentos, registration.version, package.images)
    log_metadata(metadata={"bento_tag": bentos["gpu"], "cpu_bento_tag": bentos["cpu"],
                           "bento_model_tag": model_tag, **images})  # fmt: skip
    return bentos["gpu"]


def registered_adapter(model_name: str, revision: str) -> Path:
    """The adapter of a registered version (``vX.Y``, ``prod``, a sha) from the stack's model
    registry; where it came from is recorded as metadata of the running step.

    Raises:
        RuntimeError: the active stack has no model registry.
    """
    registry = Client().active_stack.model_registry
    if registry is None:
        raise RuntimeError(
            f"package.from_revision={revision!r} needs a stack with a model registry (e.g. "
            f"stacks/huggingface.yaml); the active stack {Client().active_stack_model.name!r} "
            "has none"
        )
    adapter = Path(registry.load_model_version(model_name, revision))
    version = registry.get_model_version(model_name, revision)
    source = {
        "repo_id": version.registered_model.name,
        "requested": revision,
        "version_tag": version.version,
        "revision": getattr(version.metadata, "revision", None) or "",
    }
    log.info("packaging %s %s (%s)", source["repo_id"], revision, source["revision"][:12])
    log_metadata(metadata={"adapter_source": source})
    return adapter


def containerize(bentos: dict[str, str], version: str, variants: list[str]) -> dict[str, Any]:
    """Build the images of ``variants`` (see ``bento.image.make_image``); the step's metadata.

    An image is recorded only when ``docker image inspect`` confirms it; a failed build raises
    (``ImageBuildError``) and fails the step.
    """
    from bento.image import make_image

    images = {v: make_image(tag, version, build=v in variants) for v, tag in bentos.items()}
    return {
        "images": {v: i.image_tags for v, i in images.items()},
        "image_ids": {v: i.image_id for v, i in images.items() if i.image_id},
        "image_sizes_bytes": {v: i.size_bytes for v, i in images.items() if i.size_bytes},
        "images_not_built": {v: i.reason for v, i in images.items() if i.reason},
        "build_contexts": {v: str(i.build_context) for v, i in images.items()},
    }
