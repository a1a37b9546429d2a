"""The real ``huggingface_hub`` client against the in-memory fake Hub in ``tests/hub_server.py``.

This pins down that the fake speaks enough of the Hub API for a registry built on repos, commits
and tags: private repo, one-commit folder uploads, tags (create, delete, move), refs, model_info
at a tag, snapshot downloads at a tag, auth on writes, 409 on an existing tag, and an injected
commit failure that leaves the refs alone.

``hub_server`` is imported as a top-level module: tests/ has no __init__.py, and the ``cint``
package installs a top-level ``tests`` package in site-packages that would win over a namespace
``tests`` anyway. pytest ("prepend" import mode) puts tests/ on sys.path to import
tests/conftest.py, which sits in a folder without __init__.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_server import LocalHub, local_hub_fixture
from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

pytestmark = pytest.mark.e2e

REPO = "tester/adapter"


hub = local_hub_fixture()


def _adapter_dir(root: Path, metrics: dict) -> Path:
    root.mkdir(parents=True)
    (root / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16}))
    (root / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 8)
    (root / "metrics.json").write_text(json.dumps(metrics))
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".cache" not in p.parts
    }


def _refs(api: HfApi) -> tuple[dict[str, str], dict[str, str]]:
    refs = api.list_repo_refs(REPO)
    return (
        {b.name: b.target_commit for b in refs.branches},
        {t.name: t.target_commit for t in refs.tags},
    )


def test_registry_flow_against_local_hub(hub: LocalHub, tmp_path: Path) -> None:
    api = HfApi(endpoint=hub.endpoint, token=hub.token)
    anonymous = HfApi(endpoint=hub.endpoint, token=False)

    url = api.create_repo(REPO, private=True)
    assert url.repo_id == REPO
    assert api.model_info(REPO).private is True
    with pytest.raises(RepositoryNotFoundError):
        anonymous.model_info(REPO)  # private: invisible without a token

    # First version: the whole folder in one commit.
    v1 = _adapter_dir(tmp_path / "v1", {"eval_loss": 1.5})
    commit_count_before = len(hub.state.repos[REPO].commits)
    c1 = api.upload_folder(repo_id=REPO, folder_path=v1, commit_message="adapter v1")
    assert len(hub.state.repos[REPO].commits) == commit_count_before + 1
    api.create_tag(REPO, tag="v1.0", revision=c1.oid)

    branches, tags = _refs(api)
    assert branches == {"main": c1.oid}
    assert tags == {"v1.0": c1.oid}
    assert api.model_info(REPO, revision="v1.0").sha == c1.oid
    siblings = {s.rfilename for s in api.model_info(REPO, revision="v1.0").siblings or []}
    assert set(_files(v1)) <= siblings

    # Second version changes only metrics.json.
    v2 = tmp_path / "v2"
    _adapter_dir(v2, {"eval_loss": 0.9})
    c2 = api.upload_folder(repo_id=REPO, folder_path=v2, commit_message="adapter v2")
    assert c2.oid != c1.oid
    api.create_tag(REPO, tag="v1.1")  # main
    # "prod" moves from v1.0 to v1.1: delete then re-create.
    api.create_tag(REPO, tag="prod", revision="v1.0")
    assert _refs(api)[1]["prod"] == c1.oid
    api.delete_tag(REPO, tag="prod")
    assert "prod" not in _refs(api)[1]
    api.create_tag(REPO, tag="prod", revision=c2.oid)
    branches, tags = _refs(api)
    assert branches == {"main": c2.oid}
    assert tags == {"v1.0": c1.oid, "v1.1": c2.oid, "prod": c2.oid}
    assert api.model_info(REPO, revision="prod").sha == c2.oid

    # Downloads at a tag, a moved tag and a commit sha.
    cache = tmp_path / "cache"
    kwargs = {"endpoint": hub.endpoint, "token": hub.token, "cache_dir": cache}
    at_v1 = Path(snapshot_download(REPO, revision="v1.0", **kwargs))
    at_prod = Path(snapshot_download(REPO, revision="prod", **kwargs))
    at_sha = Path(snapshot_download(REPO, revision=c1.oid, **kwargs))
    assert at_v1.name == c1.oid and at_prod.name == c2.oid
    expected_v1 = {".gitattributes": _files(at_v1)[".gitattributes"], **_files(v1)}
    assert _files(at_v1) == expected_v1
    assert _files(at_sha) == expected_v1
    assert {k: v for k, v in _files(at_prod).items() if k != ".gitattributes"} == _files(v2)
    one = api.hf_hub_download(REPO, "metrics.json", revision="v1.0", cache_dir=tmp_path / "c2")
    assert Path(one).read_bytes() == (v1 / "metrics.json").read_bytes()

    # An existing tag is a conflict.
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_tag(REPO, tag="v1.0", revision=c2.oid)
    assert conflict.value.response.status_code == 409
    assert _refs(api)[1]["v1.0"] == c1.oid

    # Writes need a token.
    with pytest.raises(HfHubHTTPError) as unauthorized:
        anonymous.create_tag(REPO, tag="nope", revision=c2.oid)
    assert unauthorized.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError):
        anonymous.upload_folder(repo_id=REPO, folder_path=v2, commit_message="nope")

    # A failed commit changes nothing.
    before = _refs(api)
    v3 = _adapter_dir(tmp_path / "v3", {"eval_loss": 0.1})
    hub.fail_next_commit()
    with pytest.raises(HfHubHTTPError) as failed:
        api.upload_folder(repo_id=REPO, folder_path=v3, commit_message="adapter v3")
    assert failed.value.response.status_code == 500
    assert _refs(api) == before
    # ...and only the next one: the server works again afterwards.
    c3 = api.upload_folder(repo_id=REPO, folder_path=v3, commit_message="adapter v3")
    assert _refs(api)[0] == {"main": c3.oid}
