"""Step: a new model version with its metrics; promoted to production by the quality gate.

The step speaks ZenML's model-registry API only (``get_latest_model_version``,
``register_model_version``, ``update_model_version``), as ZenML's own MLflow registry step
does, and works with any registry flavor. What the gate needs travels with the model version
through that API: the version's ``metadata`` (``ModelRegistryModelMetadata``) names the ZenML
Model version that registered it (``zenml_model``, ``zenml_model_version``), whose
``registration`` artifact holds the complete metrics. The ``huggingface`` flavor (``hf_registry``:
a Hub commit tagged ``vX.Y``, ``prod`` on promotion) also keeps ``metrics.json`` in the version
itself, which the gate reads first there (the Hub is its source of truth). ``metrics``, ``card``
and ``bump`` are extras for ``register_model_version`` that other flavors ignore.
With a model registry on the stack the gate compares with the registry's production version
and fails, saying why, if that version carries neither; without a registry, with the ZenML
Model's production version, and only the ZenML Model version is recorded.
"""

import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any

from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.config import CachePolicy
from zenml.enums import ModelStages, StackComponentType
from zenml.model_registries.base_model_registry import (
    BaseModelRegistry,
    ModelRegistryModelMetadata,
    ModelVersionStage,
)
from zenml.models import ModelVersionResponse

from steps.core.config import GateConfig, LoraSettings, ModelConfig, RegistryConfig, TrainConfig
from steps.core.evaluate.metrics_document import METRICS_FILE, MetricsDocument
from steps.core.register.registration import GateDecision, RegisteredVersion, Registration

log = logging.getLogger(__name__)


@step(cache_policy=CachePolicy(cache_func="steps.register.registry_identity"))
def register(
    adapter: Path,
    metrics: MetricsDocument,
    gate: GateConfig,
    registry: RegistryConfig,
    base_model: ModelConfig,
    lora: LoraSettings,
    train: TrainConfig,
) -> Annotated[Registration, "registration"]:
    """Record metrics + data hash on the version; the quality gate decides production."""
    from steps.core.register.quality_gate import decide

    version = get_step_context().model_version
    name, model_registry = version.model.name, Client().active_stack.model_registry
    decision = decide(metrics, production_metrics(model_registry, name), gate)
    log.info("quality gate: %s (%s)", "PROMOTE" if decision.promote else "hold", decision.reason)
    published = None
    if model_registry is not None:
        card = card_inputs(base_model, lora, train, metrics, decision)
        published = publish(model_registry, name, adapter, metrics, card, registry.bump,
                            decision.promote)
    if decision.promote:
        version.set_stage(ModelStages.PRODUCTION, force=True)
    record = Registration(model=name, version=str(version.number), gate=decision,
                          metrics=metrics, hub=published)
    log_metadata(metadata=record.model_version_metadata(), model_version_id=version.id)
    log_metadata(metadata=record.metadata())
    return record


HF_FLAVOR = "huggingface"  # the registry that keeps metrics.json in each version


class RegistryMetricsError(RuntimeError):
    """The registry's production version carries no metrics the quality gate can use."""


def production_metrics(registry: BaseModelRegistry | None, name: str) -> MetricsDocument | None:
    """The metrics document of the production version: the registry's with a model registry on
    the stack, else the ZenML Model's; None when there is no production version.

    Raises:
        RegistryMetricsError: The registry has a production version whose metrics cannot be
            found (its metadata names no ZenML Model version of this store).
    """
    if registry is None:
        return _zenml_production_metrics(name)
    production = registry.get_latest_model_version(name, ModelVersionStage.PRODUCTION)
    if production is None:
        return None
    if registry.flavor == HF_FLAVOR:
        found = _version_metrics_file(registry, name, production.version)
        if found is not None:
            return found
    attributes = production.metadata.custom_attributes if production.metadata else {}
    found = _zenml_version_metrics(attributes.get("zenml_model"),
                                   attributes.get("zenml_model_version"))
    if found is None:
        raise RegistryMetricsError(
            f"model registry '{registry.name}' (flavor {registry.flavor}): the production "
            f"version {production.version} of {name!r} carries no metrics the quality gate can "
            f"compare with: its metadata names no ZenML Model version of this ZenML store "
            f"(zenml_model={attributes.get('zenml_model')!r}, zenml_model_version="
            f"{attributes.get('zenml_model_version')!r}); the register step writes them when it "
            "registers a version. Promote a version this pipeline registered, or take the "
            "production stage off this one in the registry."
        )
    return found


def _version_metrics_file(registry: BaseModelRegistry, name: str,
                          version: str) -> MetricsDocument | None:
    """``metrics.json`` of a huggingface-registry version (its load returns a folder)."""
    with tempfile.TemporaryDirectory(prefix="nizami-production-") as cache:
        folder = registry.load_model_version(name, version, cache_dir=cache,
                                             allow_patterns=[METRICS_FILE])
        path = Path(folder) / METRICS_FILE
        return MetricsDocument.read(path) if path.is_file() else None


def _zenml_version_metrics(model: str | None, number: str | None) -> MetricsDocument | None:
    """The metrics the register step recorded on ZenML Model version ``model`` ``number``."""
    if not model or not number or not number.isdigit():
        return None
    try:
        version = Client().get_model_version(model, int(number))
    except KeyError:
        return None
    return _recorded_metrics(version)


def _zenml_production_metrics(name: str) -> MetricsDocument | None:
    """The ZenML Model's production version's metrics."""
    try:
        production = Client().get_model_version(name, ModelStages.PRODUCTION)
    except KeyError:  # no production version yet
        return None
    return _recorded_metrics(production)


def _recorded_metrics(version: ModelVersionResponse) -> MetricsDocument | None:
    """From the version's ``registration`` artifact (complete, answers included), else from
    its metadata (which has no texts)."""
    artifact = version.get_artifact("registration")
    if artifact is not None:
        loaded = artifact.load()
        if isinstance(loaded, Registration):
            return loaded.metrics
        return MetricsDocument.model_validate(loaded["metrics"])  # a record from before the type
    metadata = version.run_metadata.get("metrics")
    return None if metadata is None else MetricsDocument.model_validate(metadata)


def card_inputs(
    base_model: ModelConfig,
    lora: LoraSettings,
    train: TrainConfig,
    metrics: MetricsDocument,
    decision: GateDecision,
) -> dict[str, Any]:
    """What the version's model card says (``register_model_version(card=...)``)."""
    from steps.core.evaluate.report import markdown_table

    return {
        "base_model": base_model.name,
        "base_model_source": base_model.source,
        "base_model_revision": base_model.revision,
        "data_hash": metrics.data_hash,
        "examples": metrics.examples,
        "evaluation": markdown_table(metrics),
        "sacrebleu_signature": metrics.sacrebleu_signature or "n/a",
        "answer_accuracy": metrics.answer_accuracy or "n/a",
        "training": {"lora": lora.model_dump(mode="json"), "train": train.model_dump(mode="json")},
        "promoted": decision.promote,
        "gate_reason": decision.reason,
    }


def publish(
    registry: BaseModelRegistry,
    name: str,
    adapter: Path,
    metrics: MetricsDocument,
    card: dict[str, Any],
    bump: str,
    promote: bool,
) -> RegisteredVersion:
    """Register ``adapter`` as the next version, and make it production if ``promote``."""
    registered = registry.register_model_version(
        name,
        model_source_uri=str(adapter),
        metadata=ModelRegistryModelMetadata(**run_provenance()),
        metrics=metrics.to_json(),
        card=card,
        bump=bump,
    )
    if promote:
        registry.update_model_version(name, registered.version, stage=ModelVersionStage.PRODUCTION)
    return RegisteredVersion(
        repo_id=registered.registered_model.name,
        version_tag=registered.version,
        revision=(registered.metadata.custom_attributes.get("revision")
                  if registered.metadata else None),
        url=registered.model_source_uri,
    )


def run_provenance() -> dict[str, str]:
    """Which ZenML run, pipeline, step and model version produced what is being registered."""
    from zenml import __version__

    context = get_step_context()
    version = context.model_version
    return {
        "zenml_version": __version__,
        "zenml_pipeline_name": context.pipeline.name,
        "zenml_run_name": context.pipeline_run.name,
        "zenml_pipeline_run_uuid": str(context.pipeline_run.id),
        "zenml_step_name": context.step_run.name,
        "zenml_model": version.model.name if version else "",
        "zenml_model_version": str(version.number) if version else "",
    }


def registry_identity() -> str:
    """Part of the register step's cache key: the registry (and where it points) it publishes
    to, so switching stacks or endpoints never reuses a registration made elsewhere."""
    components = Client().active_stack_model.components.get(StackComponentType.MODEL_REGISTRY)
    if not components:
        return "no-model-registry"
    registry = components[0]
    where = [registry.configuration.get(k) for k in ("endpoint", "namespace")]
    return ":".join(map(str, [registry.flavor_name, registry.id, *where]))
