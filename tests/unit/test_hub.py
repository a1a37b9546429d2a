"""steps/core/hub.py: versions, tags, model cards and failures, with the real ``huggingface_hub``
client against the in-memory Hub in tests/hub_server.py (no mocks of the client)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hub_server import LocalHub
from huggingface_hub import HfApi, constants

from steps.core import hub
from steps.core.config import LoraSettings, ModelConfig, TrainConfig

REPO = "tester/nizami-unit"
METRICS = {
    "examples": 25,
    "data_hash": "0123abcd",
    "sacrebleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
    "base": {"bleu": 1.5, "chrf": 10.0, "format_rate": 0.0},
    "tuned": {"bleu": 7.25, "chrf": 21.0, "format_rate": 0.8},
    "delta": {"bleu": 5.75, "chrf": 11.0},
}


@pytest.fixture(scope="module")
def local_hub() -> Iterator[LocalHub]:
    with pytest.MonkeyPatch.context() as mp:
        # tests/conftest.py sets HF_HUB_OFFLINE=1, read at import into this constant; the
        # client must reach the local endpoint (and never try Xet, which the fake lacks).
        mp.setattr(constants, "HF_HUB_OFFLINE", False)
        mp.setattr(constants, "HF_HUB_DISABLE_XET", True)
        with LocalHub() as server:
            yield server


@pytest.fixture
def api(local_hub: LocalHub) -> HfApi:
    return hub.connect(local_hub.endpoint, local_hub.token)


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


def _card(repo_id: str, promote: bool = True) -> str:
    fields = hub.card_fields(
        ModelConfig(source="hub", name="Qwen/Qwen3-1.7B", revision="main"),
        LoraSettings(),
        TrainConfig(),
        METRICS,
        {"promote": promote, "reason": "BLEU 7.25 >= threshold 5.00; no production version yet"},
    )
    return hub.render_model_card(hub.CardInputs(repo_id=repo_id, **fields))


def _tags(api: HfApi, repo_id: str) -> dict[str, str]:
    return hub.list_tags(api, repo_id)


def test_next_version_numbering() -> None:
    assert hub.next_version([]) == "v1.0"
    assert hub.next_version([], bump="major") == "v1.0"
    tags = ["v1.0", "v1.9", "v1.10", "prod", "staging", "v0.12", "v2", "v1.2.3", "x1.11"]
    assert hub.next_version(tags) == "v1.11"
    assert hub.next_version(tags, bump="major") == "v2.0"
    assert hub.parse_version("v3.4") == (3, 4) and hub.parse_version("prod") is None


def test_first_version_is_one_private_commit_tagged_v1_0(
    api: HfApi, local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    adapter = _adapter(tmp_path / "adapter")
    published = hub.publish_version(api, repo, adapter, METRICS, _card(repo))

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
    v10 = hub.publish_version(api, repo, first, METRICS, "a")
    v11 = hub.publish_version(api, repo, _adapter(tmp_path / "b", "b"), METRICS, "b")
    v20 = hub.publish_version(api, repo, _adapter(tmp_path / "c", "c"), METRICS, "c", bump="major")
    v21 = hub.publish_version(api, repo, _adapter(tmp_path / "d", "d"), METRICS, "d")

    assert [v.version for v in (v10, v11, v20, v21)] == ["v1.0", "v1.1", "v2.0", "v2.1"]
    assert len({v.revision for v in (v10, v11, v20, v21)}) == 4
    assert "old.txt" in api.list_repo_files(repo, revision="v1.0")
    assert "old.txt" not in api.list_repo_files(repo, revision="v1.1")  # stale file removed
    assert [v[0] for v in hub.list_versions(api, repo)] == ["v1.0", "v1.1", "v2.0", "v2.1"]


class _RacingApi(HfApi):
    """The real client; right after it lists the tags, "another run" takes the next version."""

    raced = False

    def list_repo_refs(self, repo_id, **kwargs):  # type: ignore[no-untyped-def]
        refs = super().list_repo_refs(repo_id, **kwargs)
        if not self.raced:
            self.raced = True
            taken = hub.next_version([t.name for t in refs.tags])
            super().create_tag(repo_id, tag=taken, revision="main")
        return refs  # stale: does not show the tag just taken


def test_a_tag_conflict_takes_the_next_free_version(
    api: HfApi, local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    hub.publish_version(api, repo, _adapter(tmp_path / "a", "a"), METRICS, "a")
    racing = _RacingApi(endpoint=local_hub.endpoint, token=local_hub.token)
    mine = hub.publish_version(racing, repo, _adapter(tmp_path / "b", "b"), METRICS, "b")
    assert racing.raced
    assert mine.version == "v1.2"  # v1.1 went to the other run (409), so this one is v1.2
    assert _tags(api, repo)["v1.2"] == mine.revision


def test_concurrent_registrations_never_share_a_version(
    local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    api = hub.connect(local_hub.endpoint, local_hub.token)
    hub.ensure_repo(api, repo)
    results: dict[int, hub.PublishedVersion] = {}
    errors: list[BaseException] = []

    def register(i: int) -> None:
        try:
            mine = hub.connect(local_hub.endpoint, local_hub.token)
            adapter = _adapter(tmp_path / f"run{i}", f"run{i}")
            results[i] = hub.publish_version(mine, repo, adapter, METRICS, f"card {i}")
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
    first = hub.publish_version(api, repo, _adapter(tmp_path / "a", "a"), METRICS, "a")
    local_hub.fail_next_commit()
    with pytest.raises(hub.HubError) as failed:
        hub.publish_version(api, repo, _adapter(tmp_path / "b", "b"), METRICS, "b")
    message = str(failed.value)
    assert repo in message and local_hub.endpoint in message and "HTTP 500" in message
    assert "no version tag was created" in message
    assert local_hub.token not in message
    assert _tags(api, repo) == {"v1.0": first.revision}
    assert api.model_info(repo, revision="main").sha == first.revision


def test_stage_tags_move_and_prod_metrics_are_read_back(
    api: HfApi, repo: str, tmp_path: Path
) -> None:
    assert hub.read_metrics(api, repo) is None  # no repo yet
    v10 = hub.publish_version(api, repo, _adapter(tmp_path / "a", "a"), METRICS, "a")
    assert hub.read_metrics(api, repo) is None  # no prod yet
    better = METRICS | {"tuned": {"bleu": 9.0}}
    v11 = hub.publish_version(api, repo, _adapter(tmp_path / "b", "b"), better, "b")

    hub.set_stage(api, repo, hub.PROD_TAG, "v1.0")
    assert _tags(api, repo)["prod"] == v10.revision
    assert hub.read_metrics(api, repo)["tuned"]["bleu"] == 7.25
    hub.set_stage(api, repo, hub.PROD_TAG, "v1.1")
    hub.set_stage(api, repo, hub.STAGING_TAG, "v1.0")
    tags = _tags(api, repo)
    assert tags["prod"] == v11.revision and tags["staging"] == v10.revision
    assert hub.read_metrics(api, repo)["tuned"]["bleu"] == 9.0
    assert dict((t, s) for t, _, s in hub.list_versions(api, repo)) == {
        "v1.0": ["staging"],
        "v1.1": ["prod"],
    }
    hub.clear_stage(api, repo, hub.STAGING_TAG, "v1.1")  # not on v1.1: stays
    assert "staging" in _tags(api, repo)
    hub.clear_stage(api, repo, hub.STAGING_TAG, "v1.0")
    assert "staging" not in _tags(api, repo)
    with pytest.raises(ValueError, match="unknown stage"):
        hub.set_stage(api, repo, "production", "v1.0")


def test_download_a_version_and_name_the_revision_when_missing(
    api: HfApi, local_hub: LocalHub, repo: str, tmp_path: Path
) -> None:
    v10 = hub.publish_version(api, repo, _adapter(tmp_path / "a", "a"), METRICS, "a")
    folder = hub.download_version(api, repo, "v1.0", cache_dir=tmp_path / "cache")
    assert folder.name == v10.revision
    assert json.loads((folder / "adapter_config.json").read_text())["marker"] == "a"
    with pytest.raises(hub.HubError, match=f"{repo}@v9.9 on {local_hub.endpoint}"):
        hub.download_version(api, repo, "v9.9", cache_dir=tmp_path / "cache")


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
    tiny = hub.card_fields(
        ModelConfig(source="tiny", name="tiny-qwen3", tiny={}), LoraSettings(), TrainConfig(),
        METRICS, {"promote": False, "reason": "below"},
    )
    tiny_card = hub.render_model_card(hub.CardInputs(repo_id="t/x", **tiny))
    assert "base_model" not in yaml.safe_load(tiny_card.split("---")[1])  # not a Hub repo id
    assert "not promoted: below" in tiny_card


def test_offline_mode_and_missing_token_fail_with_the_fix(
    local_hub: LocalHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(hub.HubError, match="HF_HUB_OFFLINE=1 blocks the model registry at"):
        hub.connect(local_hub.endpoint, local_hub.token)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    anonymous = hub.connect(local_hub.endpoint, None)
    with pytest.raises(hub.HubError, match="no Hugging Face token for .*set HF_TOKEN"):
        hub.publish_version(anonymous, "tester/x", tmp_path, METRICS, "card")


def test_repo_id_defaults_to_the_token_owner(api: HfApi) -> None:
    assert hub.repo_id_for(api, "nizami", None) == "tester/nizami"
    assert hub.repo_id_for(api, "nizami", "my-org") == "my-org/nizami"
    assert hub.repo_id_for(api, "someone/nizami", "my-org") == "someone/nizami"


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
        "import sys, steps.registry.flavor as f; "
        "heavy = {'huggingface_hub', 'torch', 'steps.core.hub'} & set(sys.modules); "
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

    from steps.registry.flavor import HuggingFaceModelRegistryConfig

    fields = HuggingFaceModelRegistryConfig.model_fields
    assert is_secret_field(fields["token"])
    config = HuggingFaceModelRegistryConfig()
    assert config.private is True and config.endpoint == "https://huggingface.co"
