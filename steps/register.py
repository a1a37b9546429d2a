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
    """Production's metrics: from its ``registration`` artifact (complete, per-example answers
    included), else from its metadata (which has no texts); None if there is no production."""
    try:
        production = Client().get_model_version(model_name, ModelStages.PRODUCTION)
    except KeyError:  # no production version yet
        return None
    artifact = production.get_artifact("registration")
    if artifact is not None:
        return artifact.load().get("metrics")
    return production.run_metadata.get("metrics")


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
    from steps.core.evaluation import metadata_document
    from steps.core.hub import card_fields
    from steps.core.quality_gate import decide
    from steps.registry.stack import hub_registry, run_provenance

    version, hub = get_step_context().model_version, hub_registry()
    name = version.model.name
    production = hub.production_metrics(name) if hub else _zenml_production_metrics(name)
    decision = decide(metrics, production, gate)
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
    slim = record | {"metrics": metadata_document(metrics)}  # ZenML caps a value at 64 KiB
    log_metadata(metadata=slim, model_version_id=version.id)
    log_metadata(metadata={k: v for k, v in record.items() if k in ("gate", "hub")})
    return {"model": name, "version": str(version.number), **record, **published}
