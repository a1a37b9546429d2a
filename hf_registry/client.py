"""The Hugging Face Hub as a model registry: plain ``huggingface_hub``, no ZenML.

A registered model is one Hub repo (private by default). A model version is ONE commit on
``main`` holding exactly the adapter, its tokenizer, ``metrics.json`` and a generated model card
(``README.md``), tagged ``vX.Y``. Stages are tags too: ``prod`` and ``staging`` point at the
commit of the version in that stage. The version tag is created only after the commit landed,
so a failed upload leaves no tag; the next free ``vX.Y`` is recomputed whenever creating the tag
hits a conflict (409), so two concurrent registrations never share a version.

Every function takes the ``HfApi`` client as a parameter (see :func:`connect`); tests pass the
real client pointed at a local Hub. Every call to the Hub goes through the retry policy of
:mod:`hf_registry.retry`; races with another writer are retried by recomputing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import httpx2
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants, get_token
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from pydantic import BaseModel

from hf_registry import retry
from hf_registry.retry import status_of

log = logging.getLogger(__name__)

VERSION_TAG = re.compile(r"^v(\d+)\.(\d+)$")
PROD_TAG = "prod"
STAGING_TAG = "staging"
STAGE_TAGS = (PROD_TAG, STAGING_TAG)
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"
KEEP_FILES = {".gitattributes"}  # created with the repo; never part of a version's snapshot
Bump = Literal["minor", "major"]


class HubError(RuntimeError):
    """A registry operation on the Hub failed; the message names endpoint, repo and revision."""


class ModelRepoNotFound(HubError):
    """The model repo does not exist (or the token cannot see it)."""


class PublishedVersion(BaseModel):
    """Where a registered version lives on the Hub."""

    endpoint: str
    repo_id: str
    version: str
    revision: str
    url: str


def _where(api: HfApi, repo_id: str, revision: str | None = None) -> str:
    at = f"@{revision}" if revision else ""
    return f"{repo_id}{at} on {api.endpoint}"


def connect(endpoint: str, token: str | None) -> HfApi:
    """The client for the registry at ``endpoint``.

    Args:
        endpoint: Hub URL (``https://huggingface.co``, an enterprise Hub, a test server).
        token: access token; ``None`` lets ``huggingface_hub`` use ``HF_TOKEN`` or a saved login.

    Raises:
        HubError: ``HF_HUB_OFFLINE`` is on, so no request could reach the registry.
    """
    if constants.is_offline_mode():
        raise HubError(
            f"HF_HUB_OFFLINE=1 blocks the model registry at {endpoint}: "
            "set HF_HUB_OFFLINE=0 to publish to (or read from) the Hub"
        )
    return HfApi(endpoint=endpoint, token=token)


def require_token(api: HfApi) -> None:
    """Fail early, with the fix, when a write would go out with no credentials at all."""
    if not (api.token or get_token()):
        raise HubError(
            f"no Hugging Face token for {api.endpoint}: set HF_TOKEN, or give the model "
            "registry a token from a ZenML secret (see README, 'Model registry')"
        )


def whoami(api: HfApi) -> str:
    """The user name the token belongs to (:class:`HubError` if the Hub does not say)."""
    try:
        return retry.call("whoami", api.whoami)["name"]
    except (httpx2.HTTPError, OSError) as e:  # HfHubHTTPError is both
        raise HubError(
            f"cannot tell whose namespace to register in on {api.endpoint} (whoami failed: {e}); "
            "set the registry's 'namespace'"
        ) from e


def repo_id_for(model_name: str, namespace: str | Callable[[], str]) -> str:
    """``model_name`` if it already is ``owner/name``, else ``<namespace>/<model_name>``.

    ``namespace`` may be a callable (e.g. the token's owner, asked only when needed).
    """
    if "/" in model_name:
        return model_name
    return f"{namespace() if callable(namespace) else namespace}/{model_name}"


# --- versions ---------------------------------------------------------------------------------


def parse_version(tag: str) -> tuple[int, int] | None:
    """``"v1.2"`` -> ``(1, 2)``; any other tag -> ``None``."""
    match = VERSION_TAG.match(tag)
    return (int(match[1]), int(match[2])) if match else None


def next_version(existing: Iterable[str], bump: Bump = "minor") -> str:
    """The tag after the highest ``vX.Y`` among ``existing``: ``vX.(Y+1)`` or ``v(X+1).0``.

    The first version of a repo is ``v1.0`` whatever ``bump`` says.
    """
    versions = [v for v in map(parse_version, existing) if v is not None]
    if not versions:
        return "v1.0"
    major, minor = max(versions)
    return f"v{major + 1}.0" if bump == "major" else f"v{major}.{minor + 1}"


def list_tags(api: HfApi, repo_id: str) -> dict[str, str]:
    """All tags of the repo: name -> commit sha.

    Raises:
        ModelRepoNotFound: the repo does not exist (or the token cannot see it).
    """
    try:
        refs = retry.call(f"list refs of {repo_id}", lambda: api.list_repo_refs(repo_id))
    except RepositoryNotFoundError as e:
        where = _where(api, repo_id)
        raise ModelRepoNotFound(f"model repo {where} not found (or no access)") from e
    return {t.name: t.target_commit for t in refs.tags}


def list_versions(api: HfApi, repo_id: str) -> list[tuple[str, str, list[str]]]:
    """Registered versions, oldest first: ``(tag, commit sha, stage tags on that commit)``.

    A stage tag on a commit that has no version tag (moved there by hand) is listed too, last,
    named by its commit sha.
    """
    tags = list_tags(api, repo_id)
    out = []
    for tag in sorted((t for t in tags if parse_version(t)), key=parse_version):
        stages = [s for s in STAGE_TAGS if tags.get(s) == tags[tag]]
        out.append((tag, tags[tag], stages))
    versioned = {sha for _, sha, _ in out}
    for sha in dict.fromkeys(tags[s] for s in STAGE_TAGS if s in tags):
        if sha not in versioned:
            out.append((sha, sha, [s for s in STAGE_TAGS if tags.get(s) == sha]))
    return out


def commit_sha(api: HfApi, repo_id: str, revision: str) -> str:
    """The commit a revision (branch, tag, sha) points at."""
    info = retry.call(f"resolve {repo_id}@{revision}",
                      lambda: api.model_info(repo_id, revision=revision))
    return info.sha


# --- publishing -------------------------------------------------------------------------------


def ensure_repo(api: HfApi, repo_id: str, private: bool = True) -> None:
    """Create the model repo if it does not exist (private unless told otherwise)."""
    try:
        retry.call(f"create {repo_id}",
                   lambda: api.create_repo(repo_id, private=private, exist_ok=True))
    except (httpx2.HTTPError, OSError) as e:  # HfHubHTTPError is both
        raise HubError(f"cannot create model repo {_where(api, repo_id)}: {e}") from e


def _snapshot_operations(
    api: HfApi, repo_id: str, head: str, files: dict[str, Path | bytes]
) -> list[CommitOperationAdd | CommitOperationDelete]:
    """Adds for ``files``, deletes for what ``head`` has beyond them (so a commit = a version)."""
    present = set(retry.call(f"list files of {repo_id}@{head}",
                             lambda: api.list_repo_files(repo_id, revision=head)))
    ops: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=content)
        for path, content in sorted(files.items())
    ]
    stale = sorted(present - set(files) - KEEP_FILES)
    ops += [CommitOperationDelete(path_in_repo=path) for path in stale]
    return ops


def version_files(folder: Path, extra: dict[str, bytes]) -> dict[str, Path | bytes]:
    """Every file under ``folder`` (relative POSIX paths) plus ``extra``, which wins on clashes."""
    files: dict[str, Path | bytes] = {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }
    return files | extra


def commit_snapshot(
    api: HfApi, repo_id: str, files: dict[str, Path | bytes], message: str, attempts: int = 5
) -> str:
    """Make ``main`` hold exactly ``files`` (plus ``.gitattributes``) in ONE commit.

    The commit is made against the head it was computed from; if someone else committed in
    between (412), it is recomputed and made again.

    Returns:
        The new commit's sha.

    Raises:
        HubError: the upload failed (nothing was tagged).
    """

    def against_head() -> str:
        head = commit_sha(api, repo_id, "main")
        ops = _snapshot_operations(api, repo_id, head, files)
        info = retry.call(
            f"commit to {repo_id}",
            lambda: api.create_commit(
                repo_id, ops, commit_message=message, parent_commit=head, revision="main"
            ),
            idempotent=False,
        )
        return info.oid

    where = _where(api, repo_id, "main")
    try:
        return retry.after_race(f"commit to {repo_id}", {412}, attempts, against_head)
    except HfHubHTTPError as e:
        raise HubError(
            f"upload of a new version to {where} failed (HTTP {status_of(e)}): {e}; "
            "no version tag was created"
        ) from e
    except (httpx2.HTTPError, OSError) as e:
        raise HubError(
            f"upload of a new version to {where} failed: {e}; no version tag was created"
        ) from e


def tag_next_version(
    api: HfApi, repo_id: str, revision: str, bump: Bump = "minor", attempts: int = 10
) -> str:
    """Tag ``revision`` with the next free ``vX.Y``; on a tag conflict (409) take the next one.

    Returns:
        The version tag.
    """
    tried: list[str] = []

    def next_free() -> str:
        tried.append(next_version(list_tags(api, repo_id), bump))
        retry.call(
            f"tag {repo_id}@{revision} {tried[-1]}",
            lambda: api.create_tag(repo_id, tag=tried[-1], revision=revision,
                                   tag_message=tried[-1]),
            idempotent=False,  # a lost answer would leave two version tags on one commit
        )
        return tried[-1]

    try:
        return retry.after_race(f"tag {repo_id}", {409}, attempts, next_free)
    except HfHubHTTPError as e:
        raise HubError(
            f"cannot tag {_where(api, repo_id, revision)} as {tried[-1]} "
            f"(HTTP {status_of(e)}): {e}"
        ) from e


def publish_version(
    api: HfApi,
    repo_id: str,
    adapter_dir: Path,
    metrics: dict,
    card: str,
    *,
    bump: Bump = "minor",
    private: bool = True,
    message: str | None = None,
) -> PublishedVersion:
    """Register ``adapter_dir`` as the next version of ``repo_id``: one commit, then the tag.

    Args:
        api: the Hub client.
        repo_id: ``owner/name``; created (private by default) if missing.
        adapter_dir: the peft adapter directory (with its tokenizer).
        metrics: the evaluation document, written as ``metrics.json``.
        card: the model card (``README.md``; replaces the one peft writes).
        bump: ``minor`` (default) or ``major``.
        private: visibility of a newly created repo.
        message: commit title.

    Raises:
        HubError: the repo could not be created, the upload or the tagging failed.
    """
    require_token(api)
    ensure_repo(api, repo_id, private)
    extra = {
        METRICS_FILE: (json.dumps(metrics, indent=2, ensure_ascii=False) + "\n").encode(),
        CARD_FILE: card.encode(),
    }
    files = version_files(adapter_dir, extra)
    revision = commit_snapshot(api, repo_id, files, message or f"Register {repo_id}")
    version = tag_next_version(api, repo_id, revision, bump)
    log.info("registered %s %s at %s (%s)", repo_id, version, revision[:12], api.endpoint)
    return PublishedVersion(
        endpoint=api.endpoint,
        repo_id=repo_id,
        version=version,
        revision=revision,
        url=f"{api.endpoint}/{repo_id}/tree/{version}",
    )


# --- stages -----------------------------------------------------------------------------------


def delete_tag(api: HfApi, repo_id: str, tag: str) -> None:
    """Delete ``tag`` (a version or a stage tag); the commit stays."""
    retry.call(f"delete tag {tag} of {repo_id}", lambda: api.delete_tag(repo_id, tag=tag))


def set_stage(api: HfApi, repo_id: str, stage: str, revision: str, attempts: int = 5) -> None:
    """Point the stage tag (``prod``/``staging``) at ``revision``, moving it if needed.

    The Hub cannot move a tag: it is deleted and re-created, again if another writer races.
    """
    if stage not in STAGE_TAGS:
        raise ValueError(f"unknown stage tag {stage!r}; expected one of {STAGE_TAGS}")
    sha = commit_sha(api, repo_id, revision)

    def move() -> None:
        current = list_tags(api, repo_id).get(stage)
        if current == sha:
            return
        if current is not None:
            delete_tag(api, repo_id, stage)
        retry.call(
            f"tag {repo_id}@{revision} {stage}",
            lambda: api.create_tag(repo_id, tag=stage, revision=sha,
                                   tag_message=f"{stage}: {revision}"),
            idempotent=False,
        )
        log.info("%s of %s -> %s (%s)", stage, repo_id, revision, sha[:12])

    try:
        retry.after_race(f"move {stage} of {repo_id}", {404, 409}, attempts, move)
    except HfHubHTTPError as e:
        raise HubError(f"cannot set {stage} to {_where(api, repo_id, revision)}: {e}") from e


def clear_stage(api: HfApi, repo_id: str, stage: str, revision: str | None = None) -> None:
    """Remove a stage tag (only if it points at ``revision``, when one is given)."""
    current = list_tags(api, repo_id).get(stage)
    if current is None:
        return
    if revision is not None and commit_sha(api, repo_id, revision) != current:
        return
    try:
        delete_tag(api, repo_id, stage)
    except HfHubHTTPError as e:
        if status_of(e) != 404:
            raise HubError(f"cannot remove {stage} from {_where(api, repo_id)}: {e}") from e


# --- reading ----------------------------------------------------------------------------------


def download_version(
    api: HfApi,
    repo_id: str,
    revision: str,
    cache_dir: Path | None = None,
    allow_patterns: list[str] | None = None,
) -> Path:
    """The files of a registered version (``vX.Y``, ``prod``, a sha) in a local directory
    (only those matching ``allow_patterns``, when given). huggingface_hub retries downloads
    itself (its ``http_backoff``).

    Raises:
        HubError: the repo or the revision does not exist, or the download failed.
    """
    try:
        return Path(api.snapshot_download(
            repo_id, revision=revision, cache_dir=cache_dir, allow_patterns=allow_patterns
        ))
    except (httpx2.HTTPError, OSError) as e:  # HfHubHTTPError is both
        raise HubError(f"cannot download {_where(api, repo_id, revision)}: {e}") from e
