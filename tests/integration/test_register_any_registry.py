"""The register step with a model registry that is not the Hugging Face one (issue 23 item 3).

``FileModelRegistry`` below is a second, minimal flavor: ZenML's ``BaseModelRegistry`` API over
one JSON file, keeping each version's ``metadata`` as given and ignoring the extras
(``metrics``, ``card``, ``bump``) that only the ``huggingface`` flavor uses, as ZenML's MLflow
registry does. The real ``register`` step runs in a small pipeline on a stack with it:

1. 30 BLEU, no production yet            -> v1 registered and made production
2. 10 BLEU                               -> v2 registered, held: the gate compared with v1's
   30 BLEU, found through v1's registry metadata (the ZenML Model version that registered it)
3. production moved by hand to a version with no such metadata -> the step fails, saying why
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field
from zenml import Model, pipeline, step
from zenml.model_registries.base_model_registry import (
    BaseModelRegistry,
    BaseModelRegistryConfig,
    BaseModelRegistryFlavor,
    ModelRegistryModelMetadata,
    ModelVersionStage,
    RegisteredModel,
    RegistryModelVersion,
)

from steps.core.config import load_config
from steps.core.evaluate.metrics_document import Figures, MetricsDocument

FLAVOR = "nizami_file_registry"
# ZenML names this module's flavor, steps and pipeline by their path from the repository root;
# the venv's stray top-level ``tests`` package would shadow that name, so this module is it.
ZENML_NAME = f"tests.integration.{Path(__file__).stem}"
sys.modules.setdefault(ZENML_NAME, sys.modules[__name__])
MODEL = f"nizami-any-registry-{uuid.uuid4().hex[:8]}"
pytestmark = pytest.mark.e2e


class FileModelRegistryConfig(BaseModelRegistryConfig):
    path: str = Field(description="The JSON file that holds every model and version.")


class FileModelRegistry(BaseModelRegistry):
    """Registered models and their versions in one JSON file; versions are numbered 1, 2..."""

    def _load(self) -> dict[str, Any]:
        path = Path(self.config.path)
        return json.loads(path.read_text()) if path.is_file() else {}

    def _save(self, models: dict[str, Any]) -> None:
        Path(self.config.path).write_text(json.dumps(models, indent=1))

    def _version(self, name: str, raw: dict[str, Any]) -> RegistryModelVersion:
        return RegistryModelVersion(
            version=raw["version"], model_source_uri=raw["source"], model_format="folder",
            registered_model=RegisteredModel(name=name), stage=ModelVersionStage(raw["stage"]),
            created_at=datetime.fromisoformat(raw["created"]),
            metadata=ModelRegistryModelMetadata(**raw["metadata"]),
        )

    def register_model(self, name: str, description: str | None = None,
                       metadata: dict[str, str] | None = None) -> RegisteredModel:
        models = self._load()
        models.setdefault(name, [])
        self._save(models)
        return RegisteredModel(name=name, description=description, metadata=metadata)

    def delete_model(self, name: str) -> None:
        models = self._load()
        models.pop(name)
        self._save(models)

    def update_model(self, name: str, description: str | None = None,
                     metadata: dict[str, str] | None = None,
                     remove_metadata: list[str] | None = None) -> RegisteredModel:
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        if name not in self._load():
            raise KeyError(name)
        return RegisteredModel(name=name)

    def list_models(self, name: str | None = None,
                    metadata: dict[str, str] | None = None) -> list[RegisteredModel]:
        return [RegisteredModel(name=n) for n in self._load() if name in (None, n)]

    def register_model_version(self, name: str, version: str | None = None,
                               model_source_uri: str | None = None,
                               description: str | None = None,
                               metadata: ModelRegistryModelMetadata | None = None,
                               **kwargs: Any) -> RegistryModelVersion:
        models = self._load()
        versions = models.setdefault(name, [])
        raw = {"version": version or str(len(versions) + 1), "source": model_source_uri or "",
               "stage": ModelVersionStage.NONE.value, "created": datetime.now(UTC).isoformat(),
               "metadata": metadata.model_dump() if metadata else {}}
        versions.append(raw)
        self._save(models)
        return self._version(name, raw)

    def delete_model_version(self, name: str, version: str) -> None:
        models = self._load()
        models[name] = [v for v in models[name] if v["version"] != version]
        self._save(models)

    def update_model_version(self, name: str, version: str, description: str | None = None,
                             metadata: ModelRegistryModelMetadata | None = None,
                             remove_metadata: list[str] | None = None,
                             stage: ModelVersionStage | None = None) -> RegistryModelVersion:
        models = self._load()
        for raw in models.get(name, []):
            if stage == ModelVersionStage.PRODUCTION and raw["stage"] == stage.value:
                raw["stage"] = ModelVersionStage.ARCHIVED.value  # one production version
            if raw["version"] == version:
                raw["stage"] = stage.value if stage else raw["stage"]
                raw["metadata"] |= metadata.model_dump() if metadata else {}
        self._save(models)
        return self.get_model_version(name, version)

    def list_model_versions(self, name: str | None = None, model_source_uri: str | None = None,
                            metadata: ModelRegistryModelMetadata | None = None,
                            stage: ModelVersionStage | None = None, count: int | None = None,
                            created_after: datetime | None = None,
                            created_before: datetime | None = None,
                            order_by_date: str | None = None,
                            **kwargs: Any) -> list[RegistryModelVersion] | None:
        found = [self._version(n, raw) for n, versions in self._load().items()
                 if name in (None, n) for raw in versions
                 if stage is None or raw["stage"] == stage.value]
        if order_by_date == "desc":
            found.reverse()
        return found[:count] if count else found

    def get_model_version(self, name: str, version: str) -> RegistryModelVersion:
        for raw in self._load().get(name, []):
            if raw["version"] == version:
                return self._version(name, raw)
        raise KeyError(f"{name} has no version {version}")

    def load_model_version(self, name: str, version: str, **kwargs: Any) -> Any:
        return Path(self.get_model_version(name, version).model_source_uri)

    def get_model_uri_artifact_store(self, model_version: RegistryModelVersion) -> str:
        return model_version.model_source_uri


class FileModelRegistryFlavor(BaseModelRegistryFlavor):
    @property
    def name(self) -> str:
        return FLAVOR

    @property
    def config_class(self) -> type[FileModelRegistryConfig]:
        return FileModelRegistryConfig

    @property
    def implementation_class(self) -> type[FileModelRegistry]:
        return FileModelRegistry


@step
def candidate(bleu: float, out: str) -> tuple[
    Annotated[Path, "adapter"], Annotated[MetricsDocument, "metrics"]
]:
    """An adapter folder and its metrics, as train and evaluate would make them."""
    adapter = Path(out) / f"adapter-{bleu}"
    adapter.mkdir(parents=True, exist_ok=True)
    (adapter / "adapter_config.json").write_text("{}")
    return adapter, MetricsDocument(examples=3, base=Figures(bleu=1.0), tuned=Figures(bleu=bleu))


@pipeline(enable_cache=False)
def register_only(bleu: float, out: str) -> None:
    from steps.register import register

    cfg = load_config(Path(__file__).resolve().parents[2] / "pipelines/configs/tiny.yaml")
    gate = cfg.gate.model_copy(update={"metric": "bleu", "threshold": 0.0, "margin": 5.0})
    adapter, metrics = candidate(bleu, out)
    register.with_options(model=Model(name=MODEL))(
        adapter, metrics, gate, cfg.registry, cfg.base_model, cfg.lora, cfg.train
    )


@pytest.fixture(scope="module")
def file_stack(tmp_path_factory):
    from zenml.client import Client
    from zenml.enums import StackComponentType as T

    client = Client()
    store = tmp_path_factory.mktemp("file-registry") / "registry.json"
    client.create_flavor(source=_source("FileModelRegistryFlavor"),
                         component_type=T.MODEL_REGISTRY)
    client.create_stack_component(f"{MODEL}-registry", FLAVOR, T.MODEL_REGISTRY,
                                  configuration={"path": str(store)})
    previous = client.active_stack_model.name
    client.create_stack(f"{MODEL}-stack", components={
        T.ORCHESTRATOR: "default", T.ARTIFACT_STORE: "default",
        T.MODEL_REGISTRY: f"{MODEL}-registry"})
    client.activate_stack(f"{MODEL}-stack")
    yield store
    client.activate_stack(previous)


def _source(name: str) -> str:
    """This module's class ``name`` as ZenML imports it (from the repository root)."""
    return f"{ZENML_NAME}.{name}"


def _run(bleu: float, out: Path, allow_failure: bool = False):
    from zenml.client import Client

    name = f"register-only-{uuid.uuid4().hex[:8]}"
    try:
        register_only.with_options(run_name=name)(bleu=bleu, out=str(out))
    except Exception:  # the step's own error, re-raised by the local orchestrator
        if not allow_failure:
            raise
    return Client().get_pipeline_run(name)


def _registration(run):
    return run.steps["register"].outputs["registration"][0].load()


def test_the_register_step_works_with_a_second_registry_flavor(file_stack, tmp_path):
    first = _registration(_run(30.0, tmp_path))
    assert first.gate.promote and first.gate.production is None
    assert first.hub is not None and first.hub.version_tag == "1"
    assert first.hub.revision is None  # a Hub notion; this registry has none
    models = json.loads(file_stack.read_text())
    (v1,) = models[MODEL]
    assert v1["stage"] == "Production"
    # What the gate needs travels with the version through the base API's metadata.
    assert v1["metadata"]["zenml_model"] == MODEL
    assert v1["metadata"]["zenml_model_version"] == first.version

    second = _registration(_run(10.0, tmp_path))
    assert not second.gate.promote
    assert second.gate.production == 30.0  # v1's, found through the registry's production
    assert "worse than production's 30.00" in second.gate.reason
    stages = {v["version"]: v["stage"] for v in json.loads(file_stack.read_text())[MODEL]}
    assert stages == {"1": "Production", "2": "None"}


def test_a_production_version_without_its_metrics_fails_the_step_clearly(file_stack, tmp_path):
    models = json.loads(file_stack.read_text())
    for raw in models[MODEL]:
        raw["stage"] = "Archived"
    models[MODEL].append({"version": "by-hand", "source": str(tmp_path), "stage": "Production",
                          "created": datetime.now(UTC).isoformat(), "metadata": {}})
    file_stack.write_text(json.dumps(models))
    run = _run(50.0, tmp_path, allow_failure=True)
    assert run.steps["register"].status.value == "failed"
    message = run.steps["register"].exception_info.message
    assert f"flavor {FLAVOR}" in message and "production version by-hand" in message
    assert "no metrics the quality gate can compare with" in message
    assert [v["version"] for v in json.loads(file_stack.read_text())[MODEL]] == [
        "1", "2", "by-hand"]  # nothing registered
