"""Step: LoRA fine-tuning. Where it runs (in-process, a Kaggle kernel) is the stack's choice."""

import tempfile
from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from steps.core.config import LoraSettings, ModelConfig, TrainConfig
from steps.core.data.dataset import DatasetSplit


@step
def train(
    dataset: DatasetSplit, base_model: ModelConfig, lora: LoraSettings, train: TrainConfig
) -> Annotated[Path, "adapter"]:
    """Train the adapter (one process per GPU); a rerun resumes from the last checkpoint."""
    from steps.core.modeling import resolve_base_model
    from steps.core.paths import checkpoint_root, resume_dirs
    from steps.core.tracking import report_to
    from steps.core.train.launch import train_lora

    out_dir = Path(tempfile.mkdtemp(prefix="nizami-adapter-")) / "adapter"
    result = train_lora(
        resolve_base_model(base_model), dataset.train, lora, train, out_dir, report_to(),
        checkpoint_dir=checkpoint_root(train.checkpoint_dir), resume_from=resume_dirs(),
    )
    attempt = {"resumed_from_step": result.resumed_from_step or 0, "max_steps": result.max_steps,
               "resumed_from": result.resumed_from or ""}
    log_metadata(metadata={"train": result.metrics, "train_plan": result.plan,
                           "train_attempt": attempt})
    return result.adapter_dir
