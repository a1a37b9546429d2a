"""The Hugging Face Hub as a model registry, with no ZenML in sight.

A registered model is one Hub repo (private by default). A model version is ONE commit on
``main`` holding exactly the adapter, its tokenizer, ``metrics.json`` and a generated model card
(``README.md``), tagged ``vX.Y``. Stages are tags too: ``prod`` and ``staging`` point at the
commit of the version in that stage. The version tag is created only after the commit landed,
so a failed upload leaves no tag; the next free ``vX.Y`` is recomputed whenever creating the tag
hits a conflict (409), so two concurrent registrations never share a version.

Every function takes the ``HfApi`` client as a parameter (see :func:`connect`); tests pass the
real client pointed at a local Hub.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants, get_token
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from pydantic import BaseModel

from steps.core.config import LoraSettings, ModelConfig, TrainConfig

log = logging.getLogger(__name__)

VERSION_TAG = re.compile(r"^v(\d+)\.(\d+)$")
PROD_TAG = "prod"
STAGING_TAG = "staging"
STAGE_TAGS = (PROD_TAG, STAGING_TAG)
METRICS_FILE = "metrics.json"
METRIC_NAMES = ("bleu", "chrf", "rouge1", "rouge2", "rougeL")
CARD_FILE = "README.md"
KEEP_FILES = {".gitattributes"}  # created with the repo; never part of a version's snapshot
Bump = Literal["minor", "major"]


class HubError(RuntimeError):
    """A registry operation on the Hub failed; the message names endpoint, repo and revision."""


class PublishedVersion(BaseModel):
    """Where a registered version lives on the Hub."""

    endpoint: str
    repo_id: str
    version: str
    revision: str
    url: str


class CardInputs(BaseModel):
    """What the generated model card says about one version."""

    repo_id: str
    base_model: str
    base_model_source: str = "hub"
    base_model_revision: str | None = None
    data_hash: str
    metrics: dict[str, Any]
    training: dict[str, Any]
    gate: dict[str, Any]
    provenance: dict[str, str] = {}


def _where(api: HfApi, repo_id: str, revision: str | None = None) -> str:
    at = f"@{revision}" if revision else ""
    return f"{repo_id}{at} on {api.endpoint}"


def http_status(error: Exception) -> int | None:
    """The HTTP status of a ``huggingface_hub`` error, if it carries a response."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


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


def repo_id_for(api: HfApi, model_name: str, namespace: str | None) -> str:
    """``model_name`` if it already is ``owner/name``, else ``<namespace or token owner>/name``."""
    if "/" in model_name:
        return model_name
    if namespace is None:
        try:
            namespace = api.whoami()["name"]
        except (HfHubHTTPError, OSError) as e:
            raise HubError(
                f"cannot tell whose namespace to register {model_name!r} in on {api.endpoint} "
                f"(whoami failed: {e}); set the registry's 'namespace'"
            ) from e
    return f"{namespace}/{model_name}"


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
    """All tags of the repo: name -> commit sha."""
    try:
        refs = api.list_repo_refs(repo_id)
    except RepositoryNotFoundError as e:
        raise HubError(f"model repo {_where(api, repo_id)} not found (or no access)") from e
    return {t.name: t.target_commit for t in refs.tags}


def list_versions(api: HfApi, repo_id: str) -> list[tuple[str, str, list[str]]]:
    """Registered versions, oldest first: ``(tag, commit sha, stage tags on that commit)``."""
    tags = list_tags(api, repo_id)
    out = []
    for tag in sorted((t for t in tags if parse_version(t)), key=parse_version):
        stages = [s for s in STAGE_TAGS if tags.get(s) == tags[tag]]
        out.append((tag, tags[tag], stages))
    return out


# --- publishing -------------------------------------------------------------------------------


def ensure_repo(api: HfApi, repo_id: str, private: bool = True) -> None:
    """Create the model repo if it does not exist (private unless told otherwise)."""
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
    except (HfHubHTTPError, OSError) as e:
        raise HubError(f"cannot create model repo {_where(api, repo_id)}: {e}") from e


def _snapshot_operations(
    api: HfApi, repo_id: str, head: str, files: dict[str, Path | bytes]
) -> list[CommitOperationAdd | CommitOperationDelete]:
    """Adds for ``files``, deletes for what ``head`` has beyond them (so a commit = a version)."""
    present = set(api.list_repo_files(repo_id, revision=head))
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
    between (412), it is recomputed and retried.

    Returns:
        The new commit's sha.

    Raises:
        HubError: the upload failed (nothing was tagged).
    """
    for attempt in range(1, attempts + 1):
        try:
            head = api.model_info(repo_id, revision="main").sha
            ops = _snapshot_operations(api, repo_id, head, files)
            info = api.create_commit(
                repo_id, ops, commit_message=message, parent_commit=head, revision="main"
            )
            return info.oid
        except HfHubHTTPError as e:
            if http_status(e) == 412 and attempt < attempts:
                log.info("main of %s moved during the upload; retrying (%d)", repo_id, attempt)
                continue
            raise HubError(
                f"upload of a new version to {_where(api, repo_id, 'main')} failed "
                f"(HTTP {http_status(e)}): {e}; no version tag was created"
            ) from e
        except OSError as e:
            raise HubError(
                f"upload of a new version to {_where(api, repo_id, 'main')} failed: {e}; "
                "no version tag was created"
            ) from e
    raise AssertionError("unreachable")


def tag_next_version(
    api: HfApi, repo_id: str, revision: str, bump: Bump = "minor", attempts: int = 10
) -> str:
    """Tag ``revision`` with the next free ``vX.Y``; on a tag conflict (409) take the next one.

    Returns:
        The version tag.
    """
    for attempt in range(1, attempts + 1):
        version = next_version(list_tags(api, repo_id), bump)
        try:
            api.create_tag(repo_id, tag=version, revision=revision, tag_message=version)
            return version
        except HfHubHTTPError as e:
            if http_status(e) == 409 and attempt < attempts:
                log.info("%s of %s was taken concurrently; trying the next", version, repo_id)
                continue
            raise HubError(
                f"cannot tag {_where(api, repo_id, revision)} as {version} "
                f"(HTTP {http_status(e)}): {e}"
            ) from e
    raise AssertionError("unreachable")


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


def set_stage(api: HfApi, repo_id: str, stage: str, revision: str, attempts: int = 5) -> None:
    """Point the stage tag (``prod``/``staging``) at ``revision``, moving it if needed.

    The Hub cannot move a tag: it is deleted and re-created, retried if another writer races.
    """
    if stage not in STAGE_TAGS:
        raise ValueError(f"unknown stage tag {stage!r}; expected one of {STAGE_TAGS}")
    sha = api.model_info(repo_id, revision=revision).sha
    for attempt in range(1, attempts + 1):
        current = list_tags(api, repo_id).get(stage)
        if current == sha:
            return
        try:
            if current is not None:
                api.delete_tag(repo_id, tag=stage)
            api.create_tag(repo_id, tag=stage, revision=sha, tag_message=f"{stage}: {revision}")
            log.info("%s of %s -> %s (%s)", stage, repo_id, revision, sha[:12])
            return
        except HfHubHTTPError as e:
            if http_status(e) in (404, 409) and attempt < attempts:
                continue  # another writer moved it in between
            raise HubError(f"cannot set {stage} to {_where(api, repo_id, revision)}: {e}") from e


def clear_stage(api: HfApi, repo_id: str, stage: str, revision: str | None = None) -> None:
    """Remove a stage tag (only if it points at ``revision``, when one is given)."""
    current = list_tags(api, repo_id).get(stage)
    if current is None:
        return
    if revision is not None and api.model_info(repo_id, revision=revision).sha != current:
        return
    try:
        api.delete_tag(repo_id, tag=stage)
    except HfHubHTTPError as e:
        if http_status(e) != 404:
            raise HubError(f"cannot remove {stage} from {_where(api, repo_id)}: {e}") from e


# --- reading ----------------------------------------------------------------------------------


def read_metrics(api: HfApi, repo_id: str, revision: str = PROD_TAG) -> dict | None:
    """``metrics.json`` of ``repo_id`` at ``revision``; ``None`` if repo, revision or file is
    missing (e.g. no ``prod`` yet)."""
    with tempfile.TemporaryDirectory(prefix="nizami-hub-") as cache:
        try:
            path = api.hf_hub_download(repo_id, METRICS_FILE, revision=revision, cache_dir=cache)
        except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
            return None
        except (HfHubHTTPError, OSError) as e:
            raise HubError(
                f"cannot read {METRICS_FILE} of {_where(api, repo_id, revision)}: {e}"
            ) from e
        return json.loads(Path(path).read_text(encoding="utf-8"))


def download_version(
    api: HfApi, repo_id: str, revision: str, cache_dir: Path | None = None
) -> Path:
    """The files of a registered version (``vX.Y``, ``prod``, a sha) in a local directory."""
    try:
        return Path(api.snapshot_download(repo_id, revision=revision, cache_dir=cache_dir))
    except (HfHubHTTPError, OSError) as e:
        raise HubError(f"cannot download {_where(api, repo_id, revision)}: {e}") from e


# --- the model card ---------------------------------------------------------------------------


def card_fields(
    base_model: ModelConfig, lora: LoraSettings, recipe: TrainConfig, metrics: dict, gate: dict
) -> dict[str, Any]:
    """The :class:`CardInputs` fields a pipeline run knows (the registry adds ``repo_id``)."""
    return {
        "base_model": base_model.name,
        "base_model_source": base_model.source,
        "base_model_revision": base_model.revision,
        "data_hash": metrics["data_hash"],
        "metrics": metrics,
        "training": {"lora": lora.model_dump(mode="json"), "train": recipe.model_dump(mode="json")},
        "gate": gate,
    }


def _metrics_table(metrics: dict) -> str:
    rows = ["| metric | base | tuned | delta | 95 % CI base; tuned | paired p |",
            "|---|---:|---:|---:|---|---:|"]
    base, tuned, delta = (metrics.get(k, {}) for k in ("base", "tuned", "delta"))
    ci, tests = metrics.get("intervals", {}), metrics.get("tuned_vs_base", {})
    for name in ("accuracy", "format_rate", "mean_output_tokens", *METRIC_NAMES):
        if name not in tuned:
            continue
        cells = [base.get(name), tuned.get(name), delta.get(name)]
        spans = [ci.get(side, {}).get(name) for side in ("base", "tuned")]
        p = tests.get(name, {}).get("p_value")
        rows.append(f"| {name} | " + " | ".join("" if c is None else f"{c:.4g}" for c in cells)
                    + " | " + "; ".join(f"[{s[0]:.4g}, {s[1]:.4g}]" for s in spans if s)
                    + f" | {'' if p is None else f'{p:.3g}'} |")
    families = metrics.get("families", {})
    if families:
        rows += ["", "| task family | n | base accuracy | tuned accuracy |", "|---|---:|---:|---:|"]
        rows += [f"| {k} | {f['n']} | {f['base_accuracy']:.0%} | {f['tuned_accuracy']:.0%} |"
                 for k, f in families.items()]
    return "\n".join(rows)


def render_model_card(card: CardInputs) -> str:
    """The version's ``README.md``: what it is, how good it is, how to load it."""
    front: dict[str, Any] = {"library_name": "peft", "language": ["az"]}
    if card.base_model_source == "hub":  # the Hub validates base_model as a repo id
        front["base_model"] = card.base_model
    front["tags"] = ["lora", "peft", "azerbaijani", "chain-of-thought", "zenml"]
    gate = card.gate
    verdict = "promoted to `prod`" if gate.get("promote") else "not promoted"
    revision = f" (revision `{card.base_model_revision}`)" if card.base_model_revision else ""
    provenance = "\n".join(f"- {k}: `{v}`" for k, v in sorted(card.provenance.items()))
    signature = card.metrics.get("sacrebleu_signature", "n/a")
    training = yaml.safe_dump(card.training, sort_keys=False, allow_unicode=True).strip()
    name = card.repo_id.split("/")[-1]
    return f"""---
{yaml.safe_dump(front, sort_keys=False).strip()}
---

# {name}

A LoRA adapter for `{card.base_model}`{revision}, fine-tuned on Azerbaijani chain-of-thought
data (answers as `<think>…</think>` then `<answer>…</answer>`). Each registered version is one
commit tagged `vX.Y`; `prod` marks the version that passed the quality gate.

## Data

- DVC data hash: `{card.data_hash}`
- held-out examples: {card.metrics.get("examples", "n/a")}

## Evaluation (held-out set)

{_metrics_table(card.metrics)}

sacreBLEU signature: `{signature}`. Accuracy: {card.metrics.get("answer_accuracy", "n/a")}.
Full numbers, intervals and per-example scores: `{METRICS_FILE}`.

## Quality gate

{verdict}: {gate.get("reason", "n/a")}

## Training configuration

```yaml
{training}
```

## How to load it

```python
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

repo, revision = "{card.repo_id}", "prod"  # or a version tag such as "v1.0"
tokenizer = AutoTokenizer.from_pretrained(repo, revision=revision)
base = AutoModelForCausalLM.from_pretrained("{card.base_model}")
model = PeftModel.from_pretrained(base, repo, revision=revision)
```

## Provenance

{provenance or "- n/a"}
"""
