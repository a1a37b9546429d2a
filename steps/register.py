"""Step: a new ZenML Model version with its metrics; promoted to production by the gate."""

import logging
from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.enums import ModelStages

from steps.core.config import GateConfig

log = logging.getLogger(__name__)


@step
def register(metrics: dict, gate: GateConfig) -> Annotated[dict, "registration"]:
    """Record metrics + data hash on the version; apply the quality gate to set the stage."""
    from steps.core.quality_gate import decide

    version = get_step_context().model_version
    try:
        production = Client().get_model_version(version.model.name, ModelStages.PRODUCTION)
        production_bleu = production.run_metadata["metrics"]["tuned"]["bleu"]
    except KeyError:  # no production version yet (or one registered without metrics)
        production_bleu = None
    decision = decide(metrics["tuned"]["bleu"], production_bleu, gate)
    log.info("quality gate: %s (%s)", "PROMOTE" if decision.promote else "hold", decision.reason)
    if decision.promote:
        version.set_stage(ModelStages.PRODUCTION, force=True)
    record = {"metrics": metrics, "data_hash": metrics["data_hash"], "gate": decision.model_dump()}
    log_metadata(metadata=record, model_version_id=version.id)
    log_metadata(metadata={"gate": decision.model_dump()})
    return {"model": version.model.name, "version": str(version.number), **record}
