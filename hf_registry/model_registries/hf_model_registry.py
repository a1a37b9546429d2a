"""ZenML's model-registry API over the Hugging Face Hub (the ``huggingface`` flavor).

Mapping: registered model = Hub repo ``<namespace>/<model name>`` (private by default); model
version = one commit tagged ``vX.Y``; stage = tag (``prod`` = Production, ``staging`` =
Staging). The Hub work itself is in :mod:`hf_registry.client`; this class adapts it to ZenML.
One ``HfApi`` serves the registry's lifetime, and the token's owner is asked for (``whoami``)
at most once, only when no ``namespace`` is configured.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import cached_property
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

from hf_registry import client, retry
from hf_registry.flavors.hf_model_registry_flavor import HuggingFaceModelRegistryConfig
from hf_registry.model_card import CardInputs, render_model_card

log = logging.getLogger(__name__)

STAGE_TAG = {
    ModelVersionStage.PRODUCTION: client.PROD_TAG,
    ModelVersionStage.STAGING: client.STAGING_TAG,
}
TAG_STAGE = {tag: stage for stage, tag in STAGE_TAG.items()}
MODEL_FORMAT = "peft-lora"
ORDERS = (None, "asc", "desc")


class HuggingFaceModelRegistry(BaseModelRegistry):
    """Registered models are Hub repos; versions are tagged commits; stages are tags."""

    @property
    def config(self) -> HuggingFaceModelRegistryConfig:
        """The component's configuration (the token resolved from its ZenML secret)."""
        return cast(HuggingFaceModelRegistryConfig, self._config)

    @cached_property
    def api(self) -> HfApi:
        """The Hub client for the configured endpoint and token (one per registry)."""
        return client.connect(self.config.endpoint, self.config.token)

    @cached_property
    def namespace(self) -> str:
        """Where repos are created: the configured namespace, else the token's owner."""
        return self.config.namespace or client.whoami(self.api)

    def repo_id(self, name: str) -> str:
        """The Hub repo of the registered model ``name``."""
        return client.repo_id_for(name, lambda: self.namespace)

    # --- registered models ----------------------------------------------------------------

    def register_model(
        self, name: str, description: str | None = None, metadata: dict[str, str] | None = None
    ) -> RegisteredModel:
        """Create the model's Hub repo (private unless configured otherwise)."""
        api, repo_id = self.api, self.repo_id(name)
        client.require_token(api)
        try:
            retry.call(f"create {repo_id}",
                       lambda: api.create_repo(repo_id, private=self.config.private))
        except HfHubHTTPError as e:
            if retry.status_of(e) == 409:
                raise EntityExistsError(f"model repo {repo_id} exists on {api.endpoint}") from e
            raise client.HubError(f"cannot create {repo_id} on {api.endpoint}: {e}") from e
        return self.get_model(name)

    def delete_model(self, name: str) -> None:
        """Delete the model's Hub repo with every version in it."""
        api, repo_id = self.api, self.repo_id(name)
        try:
            retry.call(f"delete {repo_id}", lambda: api.delete_repo(repo_id))
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
            info = retry.call(f"read {repo_id}", lambda: api.model_info(repo_id))
        except RepositoryNotFoundError as e:
            raise KeyError(f"model repo {repo_id} not found on {api.endpoint}") from e
        return self._registered(repo_id, bool(info.private))

    def list_models(
        self, name: str | None = None, metadata: dict[str, str] | None = None
    ) -> list[RegisteredModel]:
        """Model repos in the namespace (those whose name contains ``name``, if given).

        Raises:
            NotImplementedError: ``metadata`` was given (Hub repos carry none to filter on).
        """
        if metadata:
            raise NotImplementedError("the huggingface registry cannot filter models by metadata")
        found = retry.call("list models",
                           lambda: list(self.api.list_models(author=self.namespace, search=name)))
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
            **kwargs: ``metrics`` (a JSON object, written as ``metrics.json``), ``card`` (the
                :class:`hf_registry.model_card.CardInputs` fields but ``repo_id``), ``bump``
                (``minor``/``major``).

        Raises:
            ValueError: an explicit ``version``, a missing adapter directory or metrics.
            hf_registry.client.HubError: the upload or the tagging failed (no tag is left).
        """
        if version is not None:
            raise ValueError("the huggingface registry numbers versions itself; pass bump=")
        if model_source_uri is None or not Path(model_source_uri).is_dir():
            raise ValueError(f"model_source_uri must be the adapter directory: {model_source_uri}")
        metrics = kwargs.get("metrics")
        if not isinstance(metrics, dict):
            raise ValueError("register_model_version needs metrics= (the metrics.json content)")
        repo_id = self.repo_id(name)
        # a timestamp makes every registration its own commit, even of unchanged files
        provenance = {"registered_at": datetime.now(UTC).isoformat()}
        provenance |= metadata.model_dump() if metadata else {}
        card = dict(kwargs.get("card") or {})
        card["provenance"] = card.get("provenance", {}) | provenance
        published = client.publish_version(
            self.api,
            repo_id,
            Path(model_source_uri),
            metrics,
            render_model_card(CardInputs(repo_id=repo_id, **card)),
            bump=kwargs.get("bump", "minor"),
            private=self.config.private,
            message=f"Register {repo_id} ({provenance.get('zenml_run_name', 'manual')})",
        )
        return self._version(repo_id, published.version, published.revision, [])

    def delete_model_version(self, name: str, version: str) -> None:
        """Remove the version's tag and any stage tag on its commit (the commit stays)."""
        api, repo_id = self.api, self.repo_id(name)
        tags = client.list_tags(api, repo_id)
        if version not in tags or client.parse_version(version) is None:
            raise KeyError(f"{repo_id} on {api.endpoint} has no version {version}")
        for stage in client.STAGE_TAGS:
            client.clear_stage(api, repo_id, stage, version)
        client.delete_tag(api, repo_id, version)

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

        Raises:
            NotImplementedError: a description or metadata change was asked for (they live in
                the version's model card, which is immutable).
            KeyError: there is no such version.
        """
        if description is not None or metadata is not None or remove_metadata:
            raise NotImplementedError(
                f"the huggingface registry keeps a version's description and metadata in its "
                f"model card, which does not change; register a new version of {name!r}"
            )
        api, repo_id = self.api, self.repo_id(name)
        self.get_model_version(name, version)  # KeyError if there is no such version
        if stage in STAGE_TAG:
            client.set_stage(api, repo_id, STAGE_TAG[stage], version)
            for other in set(STAGE_TAG.values()) - {STAGE_TAG[stage]}:
                client.clear_stage(api, repo_id, other, version)
        elif stage is not None:  # None-stage or Archived: no stage tag points at it any more
            for tag in client.STAGE_TAGS:
                client.clear_stage(api, repo_id, tag, version)
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
        """Versions in version order (``vX.Y`` order stands in for dates), newest first with
        ``order_by_date="desc"``; filtered by model, source URI, metadata (equal values) and
        stage. A model whose repo does not exist has no versions.

        Raises:
            NotImplementedError: ``created_after``/``created_before`` (the Hub's tags carry no
                dates) or a filter this registry does not know.
            ValueError: ``order_by_date`` is not ``asc`` or ``desc``.
        """
        if created_after is not None or created_before is not None or kwargs:
            unknown = ["created_after"] * (created_after is not None) + [
                "created_before"] * (created_before is not None) + sorted(kwargs)
            raise NotImplementedError(
                f"the huggingface registry cannot filter versions by {', '.join(unknown)} "
                "(its versions are tags, which carry no dates)"
            )
        if order_by_date not in ORDERS:
            raise ValueError(f"order_by_date must be 'asc' or 'desc', not {order_by_date!r}")
        names = [name] if name else [m.name for m in self.list_models()]
        wanted = metadata.model_dump() if metadata else {}
        versions = [
            v for model in names for v in self._versions(model)
            if (stage is None or v.stage == stage)
            and (model_source_uri is None or v.model_source_uri == model_source_uri)
            and all(getattr(v.metadata, k, None) == value for k, value in wanted.items())
        ]
        if order_by_date == "desc":
            versions.reverse()
        return versions[:count] if count else versions

    def _versions(self, name: str) -> list[RegistryModelVersion]:
        repo_id = self.repo_id(name)
        try:
            listed = client.list_versions(self.api, repo_id)
        except client.ModelRepoNotFound:
            return []
        return [self._version(repo_id, tag, sha, stages) for tag, sha, stages in listed]

    def get_model_version(self, name: str, version: str) -> RegistryModelVersion:
        """The version ``version`` names: ``vX.Y``, a stage tag (``prod``) or its commit sha."""
        repo_id = self.repo_id(name)
        try:
            listed = client.list_versions(self.api, repo_id)
        except client.ModelRepoNotFound as e:
            raise KeyError(str(e)) from e
        for tag, sha, stages in listed:
            if version in (tag, *stages) or (len(version) >= 7 and sha.startswith(version)):
                return self._version(repo_id, tag, sha, stages)
        raise KeyError(f"{repo_id} on {self.config.endpoint} has no version {version}")

    def load_model_version(self, name: str, version: str, **kwargs: Any) -> Path:
        """Download a version (``vX.Y``, ``prod``, a sha); returns the local snapshot directory.

        Args:
            name: registered model name.
            version: any revision of the repo.
            **kwargs: ``cache_dir`` and ``allow_patterns`` (only these files, e.g.
                ``["metrics.json"]``) for ``snapshot_download``.
        """
        return client.download_version(
            self.api, self.repo_id(name), version, cache_dir=kwargs.get("cache_dir"),
            allow_patterns=kwargs.get("allow_patterns"),
        )

    def get_model_uri_artifact_store(self, model_version: RegistryModelVersion) -> str:
        """The version's Hub URL (the Hub is where it is stored)."""
        return model_version.model_source_uri

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
