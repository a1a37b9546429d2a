"""Step: merge the adapter, save it as a BentoML model, build the bentos and their images.

Two bentos share the model: ``<bento_model>`` (GPU image, the output) and ``<bento_model>-cpu``.
Where a Docker engine runs they become images ``<name>:<version>`` and ``:latest``; elsewhere
the complete build contexts are left in the BentoML home (see step metadata).
"""

import tempfile
from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from steps.core.config import ModelConfig, PackageConfig


@step
def package(
    adapter: Path, base_model: ModelConfig, packaging: PackageConfig, registration: dict
) -> Annotated[str, "bento_tag"]:
    """The bento's tag is the output; the merged weights are baked into it."""
    from bento.build import build_variants, make_image, save_model
    from steps.core.merging import merge_adapter
    from steps.core.modeling import resolve_base_model

    if packaging.from_revision:  # a registered version (vX.Y, prod) instead of the new adapter
        from steps.registry.stack import registered_adapter

        adapter = registered_adapter(registration["model"], packaging.from_revision)
    with tempfile.TemporaryDirectory(prefix="nizami-merged-") as scratch:
        merged = merge_adapter(
            resolve_base_model(base_model), adapter, Path(scratch) / "model", packaging.dtype
        )
        labels = {"zenml_model": registration["model"], "zenml_version": registration["version"]}
        model_tag = save_model(merged, packaging.bento_model, labels, registration["metrics"])
    bentos = build_variants(packaging.bento_model, model_tag, labels)
    images = {v: make_image(tag, registration["version"]) for v, tag in bentos.items()}
    log_metadata(
        metadata={
            "bento_tag": bentos["gpu"],
            "cpu_bento_tag": bentos["cpu"],
            "bento_model_tag": model_tag,
            "images": {v: i.image_tags for v, i in images.items()},
            "build_contexts": {v: str(i.build_context) for v, i in images.items()},
        }
    )
    return bentos["gpu"]
