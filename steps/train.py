"""Step: LoRA fine-tuning. Where it runs (in-process, a Kaggle kernel) is the stack's choice."""

import tempfile
from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from steps.core.config import LoraSettings, ModelConfig, TrainConfig
from steps.core.dataset import DatasetSplit


@step
def train(
    dataset: DatasetSplit, base_model: ModelConfig, lora: LoraSettings, recipe: TrainConfig
) -> Annotated[Path, "adapter"]:
    """Train the adapter on the training split; the adapter directory is the artifact."""
    from steps.core.modeling import resolve_base_model
    from steps.core.training import train_lora
    from steps.tracking import report_to

    out_dir = Path(tempfile.mkdtemp(prefix="nizami-adapter-")) / "adapter"
    result = train_lora(
        resolve_base_model(base_model), dataset.train, lora, recipe, out_dir, report_to()
    )
    log_metadata(metadata={"train": result.metrics})
    return result.adapter_dir
