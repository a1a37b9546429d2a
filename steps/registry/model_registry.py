"""ZenML's model-registry API over the Hugging Face Hub (the ``huggingface`` flavor).

Mapping: registered model = Hub repo ``<namespace>/<model name>`` (private by default); model
version = one commit tagged ``vX.Y``; stage = tag (``prod`` = Production, ``staging`` =
Staging). The Hub work itself is in :mod:`steps.core.hub`; this class adapts it to ZenML.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from zenml.exceptions import EntityExistsError
from zenml.model_registries.base_model_registry import (
    BaseModelRegistry,
    ModelRegistryModelMetadata,
    ModelVersionStage,
    RegisteredModel,
    RegistryModelVersion,
)

from steps.core import hub
from steps.registry.flavor import HuggingFaceModelRegistryConfig

log = logging.getLogger(__name__)

STAGE_TAG = {ModelVersionStage.PRODUCTION: hub.PROD_TAG, ModelVersionStage.STAGING: hub.STAGING_TAG}
TAG_STAGE = {tag: stage for stage, tag in STAGE_TAG.items()}
MODEL_FORMAT = "peft-lora"


class HuggingFaceModelRegistry(BaseModelRegistry):
    """Registered models are Hub repos; versions are tagged commits; stages are tags."""

    @property
    def config(self) -> HuggingFaceModelRegistryConfig:
        """The component's configuration (the token resolved from its ZenML secret)."""
        return cast(HuggingFaceModelRegistryConfig, self._config)

    @property
    def api(self) -> HfApi:
        """A Hub client for the configured endpoint and token."""
        return hub.connect(self.config.endpoint, self.config.token)

    def repo_id(self, name: str) -> str:
        """The Hub repo of the registered model ``name``."""
        return hub.repo_id_for(self.api, name, self.config.namespace)

    # --- registered models ----------------------------------------------------------------

    def register_model(
        self, name: str, description: str | None = None, metadata: dict[str, str] | None = None
    ) -> RegisteredModel:
        """Create the model's Hub repo (private unless configured otherwise)."""
        api, repo_id = self.api, self.repo_id(name)
        hub.require_token(api)
        try:
            api.create_repo(repo_id, private=self.config.private)
        except HfHubHTTPError as e:
            if hub.http_status(e) == 409:
                raise EntityExistsError(f"model repo {repo_id} exists on {api.endpoint}") from e
            raise hub.HubError(f"cannot create {repo_id} on {api.endpoint}: {e}") from e
        return self.get_model(name)

    def delete_model(self, name: str) -> None:
        """Delete the model's Hub repo with every version in it."""
        api, repo_id = self.api, self.repo_id(name)
        try:
            api.delete_repo(repo_id)
        except RepositoryNotFoundError as e:
            raise KeyError(f"model repo {repo_id} not found on {api.endpoint}") from e

    def update_model(
        self,
        name: str,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        remove_metadata: list[str] | None = None,
    ) -> RegisteredModel:
        """Not supported: a Hub repo's description is its model card, written per version."""
        raise NotImplementedError(
            f"the huggingface registry keeps descriptions in each version's model card; "
            f"register a new version of {name!r} to change it"
        )

    def get_model(self, name: str) -> RegisteredModel:
        """The registered model ``name`` (its repo must exist)."""
        api, repo_id = self.api, self.repo_id(name)
        try:
            info = api.model_info(repo_id)
        except RepositoryNotFoundError as e:
            raise KeyError(f"model repo {repo_id} not found on {api.endpoint}") from e
        return self._registered(repo_id, bool(info.private))

    def list_models(
        self, name: str | None = None, metadata: dict[str, str] | None = None
    ) -> list[RegisteredModel]:
        """Model repos in the namespace (optionally those whose name contains ``name``)."""
        api = self.api
        namespace = self.config.namespace or api.whoami()["name"]
        found = api.list_models(author=namespace, search=name)
        return [self._registered(m.id, bool(m.private)) for m in found]

    def _registered(self, repo_id: str, private: bool) -> RegisteredModel:
        url = f"{self.config.endpoint}/{repo_id}"
        return RegisteredModel(
            name=repo_id, metadata={"url": url, "private": str(private).lower()}
        )

    # --- versions ---------------------------------------------------------------------------

    def register_model_version(
        self,
        name: str,
        version: str | None = None,
        model_source_uri: str | None = None,
        description: str | None = None,
        metadata: ModelRegistryModelMetadata | None = None,
        **kwargs: Any,
    ) -> RegistryModelVersion:
        """Upload the adapter folder ``model_source_uri`` as the next ``vX.Y``: one commit, then
        the tag.

        Args:
            name: registered model name (or ``owner/name``).
            version: must be None; the registry numbers versions (``bump`` picks how).
            model_source_uri: local adapter directory (adapter + tokenizer).
            description: unused (the model card describes the version).
            metadata: ZenML provenance, written into the model card.
            **kwargs: ``metrics`` (dict, becomes ``metrics.json``), ``card`` (the
                :class:`steps.core.hub.CardInputs` fields except ``repo_id``), ``bump``
                (``minor``/``major``).

        Raises:
            ValueError: an explicit ``version`` or a missing adapter directory / metrics.
            steps.core.hub.HubError: the upload or the tagging failed (no tag is left behind).
        """
        if version is not None:
            raise ValueError("the huggingface registry numbers versions itself; pass bump=")
        if model_source_uri is None or not Path(model_source_uri).is_dir():
            raise ValueError(f"model_source_uri must be the adapter directory: {model_source_uri}")
        metrics = kwargs.get("metrics")
        if not isinstance(metrics, dict):
            raise ValueError("register_model_version needs metrics= (the metrics.json content)")
        api, repo_id = self.api, self.repo_id(name)
        # a timestamp makes every registration its own commit, even of unchanged files
        registered_at = datetime.now(UTC).isoformat()
        provenance = {"registered_at": registered_at} | (metadata.model_dump() if metadata else {})
        card_fields = dict(kwargs.get("card") or {})
        card_fields["provenance"] = card_fields.get("provenance", {}) | provenance
        card = hub.render_model_card(hub.CardInputs(repo_id=repo_id, **card_fields))
        published = hub.publish_version(
            api,
            repo_id,
            Path(model_source_uri),
            metrics,
            card,
            bump=kwargs.get("bump", "minor"),
            private=self.config.private,
            message=f"Register {repo_id} ({provenance.get('zenml_run_name', 'manual')})",
        )
        return self._version(repo_id, published.version, published.revision, [])

    def delete_model_version(self, name: str, version: str) -> None:
        """Remove the version's tag and any stage tag on its commit (the commit stays)."""
        api, repo_id = self.api, self.repo_id(name)
        tags = hub.list_tags(api, repo_id)
        if version not in tags or hub.parse_version(version) is None:
            raise KeyError(f"{repo_id} on {api.endpoint} has no version {version}")
        for stage in hub.STAGE_TAGS:
            hub.clear_stage(api, repo_id, stage, version)
        api.delete_tag(repo_id, tag=version)

    def update_model_version(
        self,
        name: str,
        version: str,
        description: str | None = None,
        metadata: ModelRegistryModelMetadata | None = None,
        remove_metadata: list[str] | None = None,
        stage: ModelVersionStage | None = None,
    ) -> RegistryModelVersion:
        """Move a stage tag onto the version (Production/Staging) or take them off it.

        Description and metadata live in the version's model card, which is immutable.
        """
        api, repo_id = self.api, self.repo_id(name)
        self.get_model_version(name, version)  # KeyError if there is no such version
        if stage in STAGE_TAG:
            hub.set_stage(api, repo_id, STAGE_TAG[stage], version)
            for other in set(STAGE_TAG.values()) - {STAGE_TAG[stage]}:
                hub.clear_stage(api, repo_id, other, version)
        elif stage is not None:  # None-stage or Archived: no stage tag points at it any more
            for tag in hub.STAGE_TAGS:
                hub.clear_stage(api, repo_id, tag, version)
        return self.get_model_version(name, version)

    def list_model_versions(
        self,
        name: str | None = None,
        model_source_uri: str | None = None,
        metadata: ModelRegistryModelMetadata | None = None,
        stage: ModelVersionStage | None = None,
        count: int | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        order_by_date: str | None = None,
        **kwargs: Any,
    ) -> list[RegistryModelVersion] | None:
        """Versions in version order (``vX.Y`` order stands in for dates; the Hub's refs carry
        none). ``order_by_date="desc"`` puts the newest first."""
        names = [name] if name else [m.name for m in self.list_models()]
        versions: list[RegistryModelVersion] = []
        for model in names:
            repo_id = self.repo_id(model)
            for tag, sha, stages in hub.list_versions(self.api, repo_id):
                versions.append(self._version(repo_id, tag, sha, stages))
        if stage is not None:
            versions = [v for v in versions if v.stage == stage]
        if order_by_date == "desc":
            versions.reverse()
        return versions[:count] if count else versions

    def get_model_version(self, name: str, version: str) -> RegistryModelVersion:
        """The version ``version`` names: ``vX.Y``, a stage tag (``prod``) or its commit sha."""
        repo_id = self.repo_id(name)
        listed = hub.list_versions(self.api, repo_id)
        for tag, sha, stages in listed:
            if version in (tag, *stages) or (len(version) >= 7 and sha.startswith(version)):
                return self._version(repo_id, tag, sha, stages)
        raise KeyError(f"{repo_id} on {self.config.endpoint} has no version {version}")

    def load_model_version(self, name: str, version: str, **kwargs: Any) -> Path:
        """Download a version (``vX.Y``, ``prod``, a sha); returns the local snapshot directory.

        Args:
            name: registered model name.
            version: any revision of the repo.
            **kwargs: ``cache_dir`` for ``snapshot_download``.
        """
        return hub.download_version(
            self.api, self.repo_id(name), version, cache_dir=kwargs.get("cache_dir")
        )

    def get_model_uri_artifact_store(self, model_version: RegistryModelVersion) -> str:
        """The version's Hub URL (the Hub is where it is stored)."""
        return model_version.model_source_uri

    # --- what the register step needs -------------------------------------------------------

    def publish(
        self,
        name: str,
        adapter_dir: Path,
        metrics: dict,
        card: dict[str, Any],
        bump: hub.Bump,
        promote: bool,
        provenance: dict[str, str],
    ) -> dict[str, str]:
        """Register ``adapter_dir`` as the next version and move ``prod`` onto it if ``promote``.

        Returns:
            ``repo_id``, ``revision`` (commit sha), ``version_tag``, ``url`` and ``endpoint``.
        """
        registered = self.register_model_version(
            name,
            model_source_uri=str(adapter_dir),
            metadata=ModelRegistryModelMetadata(**provenance),
            metrics=metrics,
            card=card,
            bump=bump,
        )
        if promote:
            self.update_model_version(name, registered.version, stage=ModelVersionStage.PRODUCTION)
        meta = registered.metadata.model_dump() if registered.metadata else {}
        return {
            "repo_id": meta["repo_id"],
            "revision": meta["revision"],
            "version_tag": registered.version,
            "url": f"{self.config.endpoint}/{meta['repo_id']}/tree/{registered.version}",
            "endpoint": self.config.endpoint,
        }

    def production_metrics(self, name: str) -> dict | None:
        """``metrics.json`` of the version tagged ``prod``, or None when there is none yet."""
        return hub.read_metrics(self.api, self.repo_id(name), hub.PROD_TAG)

    def _version(
        self, repo_id: str, tag: str, sha: str, stages: list[str]
    ) -> RegistryModelVersion:
        stage = next((TAG_STAGE[s] for s in stages if s in TAG_STAGE), ModelVersionStage.NONE)
        return RegistryModelVersion(
            version=tag,
            model_source_uri=f"{self.config.endpoint}/{repo_id}/tree/{sha}",
            model_format=MODEL_FORMAT,
            model_library="peft",
            registered_model=RegisteredModel(name=repo_id),
            stage=stage,
            metadata=ModelRegistryModelMetadata(repo_id=repo_id, revision=sha),
        )
