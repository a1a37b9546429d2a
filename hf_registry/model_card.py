"""The model card (``README.md``) of a registered version: ``huggingface_hub``'s ``ModelCard``.

The front matter is a ``ModelCardData`` (the Hub validates it when the card is committed); the
text is the Jinja template ``templates/model_card.md``, rendered by ``ModelCard.from_template``.
What the card says about the evaluation arrives rendered (a Markdown table): the registry
writes the metrics document as ``metrics.json`` but does not read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import ModelCard, ModelCardData
from pydantic import BaseModel, Field

from hf_registry.client import METRICS_FILE

TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"
TAGS = ["lora", "peft", "azerbaijani", "chain-of-thought", "zenml"]


class CardInputs(BaseModel):
    """What the model card says about one version (``register_model_version(card=...)``)."""

    repo_id: str = Field(description="owner/name; the registry fills it in")
    base_model: str = Field(description="the base model's repo id, or a local name")
    base_model_source: str = Field("hub", description="hub, gguf or tiny (only a hub repo id "
                                   "goes into the card's base_model, which the Hub validates)")
    base_model_revision: str | None = None
    data_hash: str = Field(description="DVC md5 of the training data")
    examples: int | None = Field(None, description="held-out examples evaluated")
    evaluation: str = Field(description="the evaluation as a Markdown table")
    sacrebleu_signature: str = "n/a"
    answer_accuracy: str = Field("n/a", description="the rule that decides a correct answer")
    training: dict[str, Any] = Field(description="the LoRA and training configuration")
    promoted: bool = Field(description="whether the quality gate promoted the version")
    gate_reason: str
    provenance: dict[str, str] = Field({}, description="ZenML run, step, model version…")


def render_model_card(card: CardInputs) -> str:
    """The version's ``README.md``: what it is, how good it is, how to load it."""
    data = ModelCardData(
        library_name="peft",
        language=["az"],
        base_model=card.base_model if card.base_model_source == "hub" else None,
        tags=TAGS,
    )
    values = card.model_dump(exclude={"training"})
    return str(
        ModelCard.from_template(
            data,
            template_path=str(TEMPLATE),
            name=card.repo_id.split("/")[-1],
            training=yaml.safe_dump(card.training, sort_keys=False, allow_unicode=True).strip(),
            metrics_file=METRICS_FILE,
            **values,
        )
    )
