"""Step: merge the adapter, save it as a BentoML model and build the bento."""

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
    from bento.build import build_bento, save_model
    from steps.core.merging import merge_adapter
    from steps.core.modeling import resolve_base_model

    with tempfile.TemporaryDirectory(prefix="nizami-merged-") as scratch:
        merged = merge_adapter(
            resolve_base_model(base_model), adapter, Path(scratch) / "model", packaging.dtype
        )
        labels = {"zenml_model": registration["model"], "zenml_version": registration["version"]}
        model_tag = save_model(merged, packaging.bento_model, labels, registration["metrics"])
    bento_tag = build_bento(packaging.bento_model, model_tag, labels)
    log_metadata(metadata={"bento_tag": bento_tag, "bento_model_tag": model_tag})
    return bento_tag
