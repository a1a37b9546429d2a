"""hf_registry/client.py: versions, tags, model cards and failures, with the real
``huggingface_hub`` client against the in-memory Hub in tests/hub_server.py (no mocks of the
client)."""

from __future__ import annotations

import email.utils
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from hub_server import LocalHub, local_hub_fixture
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError
from zenml.model_registries.base_model_registry import (
    BaseModelRegistryConfig,
    ModelRegistryModelMetadata,
    ModelVersionStage,
)

from hf_registry import client, retry
from hf_registry.flavors import HuggingFaceModelRegistryConfig
from hf_registry.model_card import CardInputs, render_model_card
from hf_registry.model_registries.hf_model_registry import HuggingFaceModelRegistry
from steps.core.config import LoraSettings, ModelConfig, TrainConfig
from steps.core.evaluate.metrics_document import MetricsDocument
from steps.core.register.registration import GateDecision
from steps.register import card_inputs

REPO = "tester/nizami-unit"
METRICS = {
    "examples": 25,
    "data_hash": "0123abcd",
    "sacrebleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
    "base": {"bleu": 1.5, "chrf": 10.0, "format_rate": 0.0},
    "tuned": {"bleu": 7.25, "chrf": 21.0, "format_rate": 0.8},
    "delta": {"bleu": 5.75, "chrf": 11.0},
}


local_hub = local_hub_fixture("module")


@pytest.fixture
def api(local_hub: LocalHub) -> HfApi:
    return client.connect(local_hub.endpoint, local_hub.token)


@pytest.fixture
def repo(api: HfApi, local_hub: LocalHub, request: pytest.FixtureRequest) -> Iterator[str]:
    repo_id = f"{local_hub.user}/{request.node.name.replace('_', '-')[:60]}"
    yield repo_id
    local_hub.state.repos.pop(repo_id, None)


def _adapter(root: Path, marker: str = "a", extra: str | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "adapter_config.json").write_text(json.dumps({"r": 8, "marker": marker}))
    (root / "adapter_model.safetensors").write_bytes(marker.encode() * 512)
    (root / "tokenizer.json").write_text('{"model": {}}')
    (root / "README.md").write_text("peft's own card, replaced by ours")
    if extra:
        (root / extra).write_text("only in this version")
    return root


def _card_inputs(base_model: ModelConfig, promote: bool, reason: str) -> dict:
    """What the register step passes to the registry, from the step module's own function."""
    decision = GateDecision(promote=promote, reason=reason, metric="bleu", candidate=7.25,
                            production=None, threshold=5.0, tolerance=0.0, alpha=0.05,
                            comparison="none")
    return card_inputs(base_model, LoraSettings(), TrainConfig(),
                       MetricsDocument.model_validate(METRICS), decision)


def _registry_card() -> dict:
    return {"base_model": "b", "base_model_source": "tiny", "data_hash": "h", "evaluation": "",
            "training": {}, "promoted": False, "gate_reason": "manual"}


def _card(repo_id: str, promote: bool = True) -> str:
    base = ModelConfig(source="hub", name="Qwen/Qwen3-1.7B", revision="main")
    reason = "BLEU 7.25 >= threshold 5.00; no production version yet"
    return render_model_card(CardInputs(repo_id=repo_id, **_card_inputs(base, promote, reason)))


def _tags(api: HfApi, repo_id: str) -> dict[str, str]:
    return client.list_tags(api, repo_id)


def test_next_version_numbering() -> None:
    assert client.next_version([]) == "v1.0"
    assert client.next_version([], bump="major") == "v1.0"
    tags = ["v1.0", "v1.9", "v1.10", "prod", "staging", "v0.12", "v2", "v1.2.3", "x1.11"]
    assert client.next_version(tags) == "v1.11"
    assert client.next_version(tags, bump="major") == "v2.0"
    assert client.parse_version("v3.4") == (3, 4) and client.parse_version("prod") is None


def test_first_version_is_one_private_commit_tagged_v1_0(
    api: HfApi, local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    adapter = _adapter(tmp_path / "adapter")
    published = client.publish_version(api, repo, adapter, METRICS, _card(repo))

    assert published.version == "v1.0" and published.repo_id == repo
    assert _tags(api, repo) == {"v1.0": published.revision}
    assert api.model_info(repo).private is True
    state = local_hub.state.repos[repo]
    assert len(state.commits) == 2  # the repo's initial commit + the version
    files = state.commits[published.revision].files
    assert set(files) == {
        ".gitattributes",
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "README.md",
        "metrics.json",
    }
    assert json.loads(files["metrics.json"]) == METRICS
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    assert files["adapter_model.safetensors"] == weights
    assert files["README.md"].decode() == _card(repo)
    assert local_hub.token not in b"".join(files.values()).decode(errors="ignore")


def test_versions_go_minor_then_major_and_each_commit_is_a_snapshot(
    api: HfApi, repo: str, tmp_path: Path
) -> None:
    first = _adapter(tmp_path / "a", "a", extra="old.txt")
    v10 = client.publish_version(api, repo, first, METRICS, "a")
    v11 = client.publish_version(api, repo, _adapter(tmp_path / "b", "b"), METRICS, "b")
    v20 = client.publish_version(
        api, repo, _adapter(tmp_path / "c", "c"), METRICS, "c", bump="major"
    )
    v21 = client.publish_version(api, repo, _adapter(tmp_path / "d", "d"), METRICS, "d")

    assert [v.version for v in (v10, v11, v20, v21)] == ["v1.0", "v1.1", "v2.0", "v2.1"]
    assert len({v.revision for v in (v10, v11, v20, v21)}) == 4
    assert "old.txt" in api.list_repo_files(repo, revision="v1.0")
    assert "old.txt" not in api.list_repo_files(repo, revision="v1.1")  # stale file removed
    assert [v[0] for v in client.list_versions(api, repo)] == ["v1.0", "v1.1", "v2.0", "v2.1"]


class _RacingApi(HfApi):
    """The real client; right after it lists the tags, "another run" takes the next version."""

    raced = False

    def list_repo_refs(self, repo_id, **kwargs):  # type: ignore[no-untyped-def]
        refs = super().list_repo_refs(repo_id, **kwargs)
        if not self.raced:
            self.raced = True
            taken = client.next_version([t.name for t in refs.tags])
            super().create_tag(repo_id, tag=taken, revision="main")
        return refs  # stale: does not show the tag just taken


def test_a_tag_conflict_takes_the_next_free_version(
    api: HfApi, local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    client.publish_version(api, repo, _adapter(tmp_path / "a", "a"), METRICS, "a")
    racing = _RacingApi(endpoint=local_hub.endpoint, token=local_hub.token)
    mine = client.publish_version(racing, repo, _adapter(tmp_path / "b", "b"), METRICS, "b")
    assert racing.raced
    assert mine.version == "v1.2"  # v1.1 went to the other run (409), so this one is v1.2
    assert _tags(api, repo)["v1.2"] == mine.revision


def test_concurrent_registrations_never_share_a_version(
    local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    api = client.connect(local_hub.endpoint, local_hub.token)
    client.ensure_repo(api, repo)
    results: dict[int, client.PublishedVersion] = {}
    errors: list[BaseException] = []

    def register(i: int) -> None:
        try:
            mine = client.connect(local_hub.endpoint, local_hub.token)
            adapter = _adapter(tmp_path / f"run{i}", f"run{i}")
            results[i] = client.publish_version(mine, repo, adapter, METRICS, f"card {i}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(r.version for r in results.values()) == ["v1.0", "v1.1", "v1.2", "v1.3"]
    tags = _tags(api, repo)
    for i, published in results.items():
        assert tags[published.version] == published.revision
        files = local_hub.state.repos[repo].commits[published.revision].files
        assert files["README.md"] == f"card {i}".encode()  # each tag on its own run's commit


def test_a_failed_upload_leaves_no_tag_and_says_where(
    api: HfApi, local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    first = client.publish_version(api, repo, _adapter(tmp_path / "a", "a"), METRICS, "a")
    local_hub.fail_next_commit()
    with pytest.raises(client.HubError) as failed:
        client.publish_version(api, repo, _adapter(tmp_path / "b", "b"), METRICS, "b")
    message = str(failed.value)
    assert repo in message and local_hub.endpoint in message and "HTTP 500" in message
    assert "no version tag was created" in message
    assert local_hub.token not in message
    assert _tags(api, repo) == {"v1.0": first.revision}
    assert api.model_info(repo, revision="main").sha == first.revision


def _prod_metrics(api: HfApi, repo: str, cache: Path) -> dict:
    folder = client.download_version(api, repo, client.PROD_TAG, cache_dir=cache,
                                     allow_patterns=[client.METRICS_FILE])
    assert [p.name for p in folder.iterdir()] == [client.METRICS_FILE]  # only what was asked
    return json.loads((folder / client.METRICS_FILE).read_text())


def test_stage_tags_move_and_prod_metrics_are_read_back(
    api: HfApi, repo: str, tmp_path: Path
) -> None:
    with pytest.raises(client.ModelRepoNotFound):  # no repo yet
        client.list_tags(api, repo)
    v10 = client.publish_version(api, repo, _adapter(tmp_path / "a", "a"), METRICS, "a")
    assert client.PROD_TAG not in _tags(api, repo)  # no prod yet
    better = METRICS | {"tuned": {"bleu": 9.0}}
    v11 = client.publish_version(api, repo, _adapter(tmp_path / "b", "b"), better, "b")

    client.set_stage(api, repo, client.PROD_TAG, "v1.0")
    assert _tags(api, repo)["prod"] == v10.revision
    assert _prod_metrics(api, repo, tmp_path / "c1")["tuned"]["bleu"] == 7.25
    client.set_stage(api, repo, client.PROD_TAG, "v1.1")
    client.set_stage(api, repo, client.STAGING_TAG, "v1.0")
    tags = _tags(api, repo)
    assert tags["prod"] == v11.revision and tags["staging"] == v10.revision
    assert _prod_metrics(api, repo, tmp_path / "c2")["tuned"]["bleu"] == 9.0
    assert dict((t, s) for t, _, s in client.list_versions(api, repo)) == {
        "v1.0": ["staging"],
        "v1.1": ["prod"],
    }
    client.clear_stage(api, repo, client.STAGING_TAG, "v1.1")  # not on v1.1: stays
    assert "staging" in _tags(api, repo)
    client.clear_stage(api, repo, client.STAGING_TAG, "v1.0")
    assert "staging" not in _tags(api, repo)
    with pytest.raises(ValueError, match="unknown stage"):
        client.set_stage(api, repo, "production", "v1.0")


def test_download_a_version_and_name_the_revision_when_missing(
    api: HfApi, local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    v10 = client.publish_version(api, repo, _adapter(tmp_path / "a", "a"), METRICS, "a")
    folder = client.download_version(api, repo, "v1.0", cache_dir=tmp_path / "cache")
    assert folder.name == v10.revision
    assert json.loads((folder / "adapter_config.json").read_text())["marker"] == "a"
    with pytest.raises(client.HubError, match=f"{repo}@v9.9 on {local_hub.endpoint}"):
        client.download_version(api, repo, "v9.9", cache_dir=tmp_path / "cache")


def test_model_card_says_what_how_good_and_how_to_load() -> None:
    card = _card("tester/nizami")
    front = yaml.safe_load(card.split("---")[1])
    assert front["base_model"] == "Qwen/Qwen3-1.7B" and front["library_name"] == "peft"
    for expected in (
        "0123abcd",  # data hash
        "| bleu | 1.5 | 7.25 | 5.75 |",
        "tok:13a",
        "promoted to `prod`: BLEU 7.25 >= threshold",
        "r: 16",  # training config
        "learning_rate: 0.0002",
        'repo, revision = "tester/nizami", "prod"',
        "PeftModel.from_pretrained(base, repo, revision=revision)",
        'AutoModelForCausalLM.from_pretrained("Qwen/Qwen3-1.7B")',
    ):
        assert expected in card, expected
    tiny = _card_inputs(ModelConfig(source="tiny", name="tiny-qwen3", tiny={}), False, "below")
    tiny_card = render_model_card(CardInputs(repo_id="t/x", **tiny))
    assert "base_model" not in yaml.safe_load(tiny_card.split("---")[1])  # not a Hub repo id
    assert "not promoted: below" in tiny_card


def test_offline_mode_and_missing_token_fail_with_the_fix(
    local_hub: LocalHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(client.HubError, match="HF_HUB_OFFLINE=1 blocks the model registry at"):
        client.connect(local_hub.endpoint, local_hub.token)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    anonymous = client.connect(local_hub.endpoint, None)
    with pytest.raises(client.HubError, match="no Hugging Face token for .*set HF_TOKEN"):
        client.publish_version(anonymous, "tester/x", tmp_path, METRICS, "card")


def test_repo_id_defaults_to_the_token_owner(api: HfApi) -> None:
    assert client.repo_id_for("nizami", lambda: client.whoami(api)) == "tester/nizami"
    assert client.repo_id_for("nizami", "my-org") == "my-org/nizami"
    assert client.repo_id_for("someone/nizami", "my-org") == "someone/nizami"


def test_config_knobs_for_the_registry(tmp_path: Path) -> None:
    from steps.core.config import ConfigError, load_config

    minimal = {
        "base_model": {"source": "tiny", "name": "t", "tiny": {}},
        "gate": {"bleu_threshold": 1},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(minimal))
    assert load_config(path).registry.bump == "minor"
    assert load_config(path).package.from_revision is None
    knobs = {"registry": {"bump": "major"}, "package": {"from_revision": "prod"}}
    path.write_text(yaml.safe_dump(minimal | knobs))
    config = load_config(path)
    assert config.registry.bump == "major" and config.package.from_revision == "prod"
    path.write_text(yaml.safe_dump(minimal | {"registry": {"bump": "patch"}}))
    with pytest.raises(ConfigError, match="registry.bump"):
        load_config(path)


def test_flavor_is_light_and_keeps_the_token_secret() -> None:
    """Registering the flavor imports neither the Hub client nor torch; the token is a
    ZenML secret field (masked, resolvable from ``{{secret.key}}``)."""
    import subprocess
    import sys

    probe = (
        "import sys, hf_registry.flavors.hf_model_registry_flavor as f; "
        "heavy = {'huggingface_hub', 'torch', 'hf_registry.client', 'steps'} & set(sys.modules); "
        "assert not heavy, heavy; "
        "print(f.HuggingFaceModelRegistryFlavor().name)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "huggingface"

    from zenml.utils.secret_utils import is_secret_field

    fields = HuggingFaceModelRegistryConfig.model_fields
    assert is_secret_field(fields["token"])
    config = HuggingFaceModelRegistryConfig()
    assert config.private is True and config.endpoint == "https://huggingface.co"
    own = set(fields) - set(BaseModelRegistryConfig.model_fields)
    assert own == {"endpoint", "token", "namespace", "private"}
    assert all(fields[name].description for name in own), "every field shows in the dashboard"


# --- the retry policy ---------------------------------------------------------------------------


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "BACKOFF_S", 0.01)
    monkeypatch.setattr(retry, "MAX_RETRIES", 2)


@pytest.mark.usefixtures("quick_retries")
def test_a_429_waits_what_retry_after_says_in_either_form(
    api: HfApi, local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    client.publish_version(api, repo, _adapter(tmp_path / "a", "a"), METRICS, "a")
    before = local_hub.requests_to("GET", f"{repo}/refs")
    local_hub.fail_next("GET", f"{repo}/refs", 429, {"Retry-After": "1"})
    started = time.monotonic()
    assert set(client.list_tags(api, repo)) == {"v1.0"}
    assert time.monotonic() - started >= 1.0
    when = email.utils.formatdate(time.time() + 2, usegmt=True)  # second granularity: >= 1 s
    local_hub.fail_next("GET", f"{repo}/refs", 503, {"Retry-After": when})
    started = time.monotonic()
    assert set(client.list_tags(api, repo)) == {"v1.0"}
    assert time.monotonic() - started >= 1.0
    assert local_hub.requests_to("GET", f"{repo}/refs") == before + 4


@pytest.mark.usefixtures("quick_retries")
def test_retries_are_bounded_and_a_commit_answered_500_is_not_repeated(
    api: HfApi, local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    client.publish_version(api, repo, _adapter(tmp_path / "a", "a"), METRICS, "a")
    before = local_hub.requests_to("GET", f"{repo}/refs")
    local_hub.fail_next("GET", f"{repo}/refs", 502, count=5)
    with pytest.raises(HfHubHTTPError) as exhausted:
        client.list_tags(api, repo)
    assert retry.status_of(exhausted.value) == 502
    assert local_hub.requests_to("GET", f"{repo}/refs") == before + 3  # 1 + MAX_RETRIES
    local_hub.state.faults.clear()

    commits = local_hub.requests_to("POST", "/commit/main")
    local_hub.fail_next_commit()
    with pytest.raises(client.HubError, match="HTTP 500"):
        client.publish_version(api, repo, _adapter(tmp_path / "b", "b"), METRICS, "b")
    assert local_hub.requests_to("POST", "/commit/main") == commits + 1  # it may have landed
    local_hub.fail_next("POST", "/commit/main", 429)  # 429: surely not applied, so retried
    again = client.publish_version(api, repo, _adapter(tmp_path / "c", "c"), METRICS, "c")
    assert again.version == "v1.1"


# --- the ZenML registry API -------------------------------------------------------------------


def _registry(local_hub: LocalHub, **config: object) -> HuggingFaceModelRegistry:
    from zenml.enums import StackComponentType

    return HuggingFaceModelRegistry(
        name="hf", id=uuid.uuid4(), flavor="huggingface", type=StackComponentType.MODEL_REGISTRY,
        config=HuggingFaceModelRegistryConfig(endpoint=local_hub.endpoint,
                                              token=local_hub.token, **config),
        user=None, created=datetime.now(), updated=datetime.now(),
    )


def test_one_client_per_registry_and_whoami_at_most_once(
    local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    registry = _registry(local_hub)
    name = repo.split("/")[1]
    assert registry.api is registry.api
    whoami = local_hub.requests_to("GET", "/api/whoami-v2")
    for bump in ("minor", "major"):
        registry.register_model_version(name, model_source_uri=str(_adapter(tmp_path / bump)),
                                        metrics=METRICS, card=_registry_card(), bump=bump)
    assert [v.version for v in registry.list_model_versions(name)] == ["v1.0", "v2.0"]
    assert registry.get_model_version(name, "v2.0").registered_model.name == repo
    assert local_hub.requests_to("GET", "/api/whoami-v2") == whoami + 1
    named = _registry(local_hub, namespace=local_hub.user)
    named.list_model_versions(name)
    assert local_hub.requests_to("GET", "/api/whoami-v2") == whoami + 1  # not asked at all


def test_list_model_versions_honours_its_filters_or_refuses_them(
    local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    registry, name = _registry(local_hub), repo.split("/")[1]
    assert registry.list_model_versions(name) == []  # no repo yet: no versions
    assert registry.get_latest_model_version(name, ModelVersionStage.PRODUCTION) is None
    for i in range(3):
        registry.register_model_version(name, model_source_uri=str(_adapter(tmp_path / f"{i}")),
                                        metrics=METRICS, card=_registry_card())
    registry.update_model_version(name, "v1.1", stage=ModelVersionStage.PRODUCTION)
    listed = registry.list_model_versions(name)
    assert [v.version for v in listed] == ["v1.0", "v1.1", "v1.2"]
    newest_first = registry.list_model_versions(name, order_by_date="desc", count=2)
    assert [v.version for v in newest_first] == ["v1.2", "v1.1"]
    production = registry.list_model_versions(name, stage=ModelVersionStage.PRODUCTION)
    assert [v.version for v in production] == ["v1.1"]
    assert registry.get_latest_model_version(name, ModelVersionStage.PRODUCTION).version == "v1.1"
    by_uri = registry.list_model_versions(name, model_source_uri=listed[0].model_source_uri)
    assert [v.version for v in by_uri] == ["v1.0"]
    by_revision = registry.list_model_versions(
        name, metadata=ModelRegistryModelMetadata(revision=listed[2].metadata.revision)
    )
    assert [v.version for v in by_revision] == ["v1.2"]
    with pytest.raises(NotImplementedError, match="created_after.*carry no dates"):
        registry.list_model_versions(name, created_after=datetime.now())
    with pytest.raises(NotImplementedError, match="by color"):
        registry.list_model_versions(name, color="red")
    with pytest.raises(ValueError, match="order_by_date must be 'asc' or 'desc'"):
        registry.list_model_versions(name, order_by_date="newest")
    with pytest.raises(NotImplementedError, match="model card"):
        registry.update_model_version(name, "v1.0", description="better")
