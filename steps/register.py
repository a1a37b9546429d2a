"""Step: a new model version with its metrics; promoted to production by the gate.

On a stack with a ``huggingface`` model registry the version is also published to the Hub (one
commit tagged ``vX.Y``; ``prod`` moves when the gate passes) and the gate compares with the
Hub's ``prod``; without one, only the ZenML Model version is recorded.
"""

import logging
from pathlib import Path
from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.config import CachePolicy
from zenml.enums import ModelStages

from steps.core.config import GateConfig, LoraSettings, ModelConfig, RegistryConfig, TrainConfig

log = logging.getLogger(__name__)


def _zenml_production_metrics(model_name: str) -> dict | None:
    try:
        production = Client().get_model_version(model_name, ModelStages.PRODUCTION)
        return production.run_metadata["metrics"]
    except KeyError:  # no production version yet (or one registered without metrics)
        return None


@step(cache_policy=CachePolicy(cache_func="steps.registry.stack.registry_identity"))
def register(
    adapter: Path,
    metrics: dict,
    gate: GateConfig,
    registry: RegistryConfig,
    base_model: ModelConfig,
    lora: LoraSettings,
    recipe: TrainConfig,
) -> Annotated[dict, "registration"]:
    """Record metrics + data hash on the version; the quality gate decides production."""
    from steps.core.hub import card_fields
    from steps.core.quality_gate import decide
    from steps.registry.stack import hub_registry, run_provenance

    context = get_step_context()
    version, hub = context.model_version, hub_registry()
    name = version.model.name
    production = hub.production_metrics(name) if hub else _zenml_production_metrics(name)
    production_bleu = production["tuned"]["bleu"] if production else None
    decision = decide(metrics["tuned"]["bleu"], production_bleu, gate)
    log.info("quality gate: %s (%s)", "PROMOTE" if decision.promote else "hold", decision.reason)
    record = {"metrics": metrics, "data_hash": metrics["data_hash"], "gate": decision.model_dump()}
    published = {"repo_id": None, "revision": None, "version_tag": None}
    if hub is not None:
        card = card_fields(base_model, lora, recipe, metrics, record["gate"])
        published = hub.publish(
            name, adapter, metrics, card, registry.bump, decision.promote, run_provenance()
        )
        record["hub"] = published
    if decision.promote:
        version.set_stage(ModelStages.PRODUCTION, force=True)
    log_metadata(metadata=record, model_version_id=version.id)
    log_metadata(metadata={k: v for k, v in record.items() if k in ("gate", "hub")})
    return {"model": name, "version": str(version.number), **record, **published}
