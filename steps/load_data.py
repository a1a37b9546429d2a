"""Step: pull the pinned data revision, validate, split, render with the chat template."""

from typing import Annotated

from zenml import log_metadata, step

from steps.core.config import DataConfig, ModelConfig
from steps.core.data.dataset import DatasetSplit


@step
def load_data(
    data: DataConfig, base_model: ModelConfig, max_length: int, data_version: str
) -> Annotated[DatasetSplit, "dataset"]:
    """DVC pull + all-or-nothing validation; ``data_version`` keys the step cache."""
    from steps.core.data.dataset import load_dataset
    from steps.core.modeling import load_tokenizer, resolve_base_model

    tokenizer = load_tokenizer(resolve_base_model(base_model))
    split, metadata = load_dataset(data, tokenizer, max_length)
    log_metadata(metadata={"data": metadata})
    return split
