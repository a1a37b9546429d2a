"""The tiny pipeline on a stack with the ``huggingface`` model registry, against the local Hub.

The stack is the shipped ``stacks/huggingface.yaml``, imported by ``stacks/register.sh`` (which
registers the flavor); only its endpoint is pointed at the in-memory Hub of tests/hub_server.py
and its token comes from a ZenML secret, as the README tells users to do. The real
``huggingface_hub`` client does every Hub call. Runs share one module-scoped sequence:

1. gate passes (threshold 0)            -> v1.0, prod -> v1.0
2. same BLEU, tolerance 0.25            -> v1.1, prod moves to v1.1 (not worse than prod)
3. prod on the Hub made better (99 BLEU, no per-example scores) -> v1.2, held: the gate read
   prod's metrics.json and compared unpaired
4. the Hub answers 500 to the commit    -> register fails clearly, no new tag
5. package.from_revision: v1.0          -> only the package step reruns, on v1.0's adapter
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from helpers import register_stack, registration, run_pipeline, write_config
from hub_server import LocalHub, local_hub_fixture
from huggingface_hub import HfApi, snapshot_download

MODEL = "nizami-hf-tiny"
SECRET = "hf_registry_test"
pytestmark = pytest.mark.e2e


hub = local_hub_fixture("module")  # the pipeline runs in this process


@pytest.fixture(scope="module")
def hf_stack(hub: LocalHub) -> Iterator[None]:
    from zenml.client import Client
    from zenml.enums import StackComponentType

    done = register_stack("huggingface", timeout=600)  # registers the flavor, then the stack
    assert done.returncode == 0, done.stdout + done.stderr
    client = Client()
    previous = client.active_stack_model.name
    client.create_secret(SECRET, values={"token": hub.token})
    client.update_stack_component(
        "hf_hub", StackComponentType.MODEL_REGISTRY,
        configuration={"endpoint": hub.endpoint, "token": f"{{{{{SECRET}.token}}}}"},
    )
    client.activate_stack("huggingface")
    yield
    client.activate_stack(previous)


@pytest.fixture(scope="module")
def api(hub: LocalHub) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=hub.token)


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hf-outputs")


@pytest.fixture(scope="module")
def first_run(hf_stack, out):
    return run_pipeline(_config(out / "first.yaml", out))


@pytest.fixture(scope="module")
def second_run(first_run, out):
    config = _config(out / "second.yaml", out, gate={"tolerance": 0.25})
    return run_pipeline(config)


def _config(path: Path, out: Path, **changes) -> Path:
    # Inputs of its own (max_train_examples), so that no step of this module is a cache hit for
    # another module's run in the session's ZenML store, nor the other way round.
    return write_config(path, model_name=MODEL, output_dir=str(out),
                        data={"max_train_examples": 80}, **changes)


def _tags(api: HfApi) -> dict[str, str]:
    return {t.name: t.target_commit for t in api.list_repo_refs(f"tester/{MODEL}").tags}


def test_first_run_publishes_v1_0_and_the_gate_sets_prod(first_run, hub: LocalHub, api: HfApi):
    from zenml.client import Client
    from zenml.enums import ModelStages

    assert first_run.status.value == "completed"
    record = registration(first_run)
    repo = f"tester/{MODEL}"
    assert record.hub.repo_id == repo and record.hub.version_tag == "v1.0"
    assert record.gate.promote is True
    assert api.model_info(repo).private is True
    sha = record.hub.revision
    assert _tags(api) == {"v1.0": sha, "prod": sha}

    files = hub.state.repos[repo].commits[sha].files
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= set(files)
    metrics = first_run.steps["evaluate"].outputs["metrics"][0].load()
    assert json.loads(files["metrics.json"]) == metrics.to_json()
    card = files["README.md"].decode()
    assert metrics.data_hash in card and "promoted to `prod`" in card
    assert f'repo, revision = "{repo}", "prod"' in card
    assert hub.token not in b"".join(files.values()).decode(errors="ignore")

    version = Client().get_model_version(MODEL, ModelStages.PRODUCTION)
    assert str(version.number) == record.version
    assert version.run_metadata["hub"]["revision"] == sha
    assert version.run_metadata["hub"]["version_tag"] == "v1.0"
    assert version.run_metadata["gate"]["promote"] is True
    assert hub.token not in record.model_dump_json()


def test_second_run_is_v1_1_and_moves_prod_when_not_worse(second_run, first_run, api: HfApi):
    record = registration(second_run)
    assert second_run.steps["train"].status.value == "cached"
    assert record.hub.version_tag == "v1.1"
    first_bleu = registration(first_run).metrics.tuned.bleu
    assert record.gate.production == first_bleu  # read from the Hub's prod
    assert record.gate.comparison == "paired"  # prod's metrics.json has the answers
    assert record.gate.promote is True
    tags = _tags(api)
    assert tags["v1.1"] == record.hub.revision == tags["prod"]
    assert tags["v1.0"] == registration(first_run).hub.revision != tags["v1.1"]


def test_prod_snapshot_loads_with_peft_and_generates(
    second_run, hub: LocalHub, tiny_base_dir, tmp_path
):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = snapshot_download(
        f"tester/{MODEL}", revision="prod", endpoint=hub.endpoint, token=hub.token,
        cache_dir=tmp_path,
    )
    assert Path(folder).name == registration(second_run).hub.revision
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base_dir), folder)
    inputs = tokenizer("Bakı nəyin paytaxtıdır?", return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]


@pytest.fixture(scope="module")
def held_run(second_run, api: HfApi, out):
    """prod on the Hub is made better than anything the tiny model reaches (and, like a version
    registered before per-example scores were kept, has none), then a run."""
    from hf_registry import client

    repo = f"tester/{MODEL}"
    metrics = registration(second_run).metrics.to_json()
    better = {k: v for k, v in metrics.items() if k != "per_example"} | {"tuned": {"bleu": 99.0}}
    commit = api.upload_file(
        path_or_fileobj=json.dumps(better).encode(), path_in_repo="metrics.json",
        repo_id=repo, commit_message="a better prod, registered elsewhere",
    )
    client.set_stage(api, repo, "prod", commit.oid)
    config = _config(out / "held.yaml", out, gate={"tolerance": 0.5})
    return run_pipeline(config), commit.oid, config


def test_a_run_worse_than_the_hubs_prod_is_registered_but_not_promoted(held_run, api: HfApi):
    from zenml.client import Client

    run, better_prod, _ = held_run
    record = registration(run)
    assert record.hub.version_tag == "v1.2"
    assert record.gate.promote is False
    assert "worse than production's 99.00" in record.gate.reason
    assert "compared unpaired" in record.gate.reason
    tags = _tags(api)
    assert tags["prod"] == better_prod and tags["v1.2"] == record.hub.revision
    card = api.hf_hub_download(f"tester/{MODEL}", "README.md", revision="v1.2")
    assert "not promoted: BLEU" in Path(card).read_text()
    version = Client().get_model_version(MODEL, record.version)
    assert "production" not in str(version.stage).lower()
    assert version.run_metadata["gate"]["promote"] is False


def test_a_failed_upload_fails_the_step_clearly_and_leaves_no_tag(
    held_run, hub: LocalHub, api: HfApi, out
):
    from zenml.client import Client

    before = _tags(api)
    config = _config(out / "fail.yaml", out, gate={"tolerance": 0.75})
    hub.fail_next_commit()
    with pytest.raises(RuntimeError, match="failure in step"):
        run_pipeline(config)
    failed = Client().list_pipeline_runs(sort_by="desc:created", size=1).items[0]
    message = failed.steps["register"].exception_info.message
    assert f"tester/{MODEL}@main on {hub.endpoint}" in message
    assert "HTTP 500" in message and "no version tag was created" in message
    assert hub.token not in message
    assert _tags(api) == before
    assert "package" not in failed.steps or failed.steps["package"].status.value != "completed"


def test_package_builds_from_a_registered_version(held_run, first_run, out):
    _, _, held_config = held_run
    raw = yaml.safe_load(held_config.read_text())
    raw["package"] = raw.get("package", {}) | {"from_revision": "v1.0"}
    config = out / "from-v1.0.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))
    run = run_pipeline(config)
    assert run.steps["register"].status.value == "cached"  # no new version for a repackaging
    assert run.steps["package"].status.value == "completed"
    source = run.steps["package"].run_metadata["adapter_source"]
    assert source["version_tag"] == "v1.0"
    assert source["revision"] == registration(first_run).hub.revision


def test_the_zenml_registry_api_over_the_hub(hub: LocalHub, tmp_path: Path):
    """The BaseModelRegistry methods themselves, on a component built in code (no pipeline)."""
    import uuid
    from datetime import datetime

    from zenml.enums import StackComponentType
    from zenml.exceptions import EntityExistsError
    from zenml.model_registries.base_model_registry import ModelVersionStage as Stage

    from hf_registry.flavors import HuggingFaceModelRegistryConfig
    from hf_registry.model_registries.hf_model_registry import HuggingFaceModelRegistry

    registry = HuggingFaceModelRegistry(
        name="hf", id=uuid.uuid4(), flavor="huggingface", type=StackComponentType.MODEL_REGISTRY,
        config=HuggingFaceModelRegistryConfig(endpoint=hub.endpoint, token=hub.token),
        user=None, created=datetime.now(), updated=datetime.now(),
    )
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 4}')
    card = {"base_model": "b", "base_model_source": "tiny", "data_hash": "h", "evaluation": "",
            "training": {}, "promoted": False, "gate_reason": "manual"}

    model = registry.register_model("api-model")
    assert model.name == "tester/api-model" and model.metadata["private"] == "true"
    with pytest.raises(EntityExistsError):
        registry.register_model("api-model")
    assert [m.name for m in registry.list_models("api-")] == ["tester/api-model"]
    for bump in ("minor", "minor", "major"):
        registry.register_model_version(
            "api-model", model_source_uri=str(adapter), metrics={"tuned": {}}, card=card,
            bump=bump,
        )
    listed = registry.list_model_versions("api-model")
    assert [v.version for v in listed] == ["v1.0", "v1.1", "v2.0"]
    registry.update_model_version("api-model", "v1.1", stage=Stage.PRODUCTION)
    registry.update_model_version("api-model", "v2.0", stage=Stage.STAGING)
    assert registry.get_model_version("api-model", "prod").version == "v1.1"
    assert registry.get_latest_model_version("api-model", Stage.STAGING).version == "v2.0"
    assert [v.version for v in registry.list_model_versions("api-model", stage=Stage.PRODUCTION)
            ] == ["v1.1"]
    registry.update_model_version("api-model", "v1.1", stage=Stage.ARCHIVED)
    assert registry.get_model_version("api-model", "v1.1").stage == Stage.NONE
    folder = registry.load_model_version("api-model", "v2.0", cache_dir=tmp_path / "cache")
    assert (folder / "adapter_config.json").is_file() and (folder / "metrics.json").is_file()
    registry.delete_model_version("api-model", "v2.0")
    assert [v.version for v in registry.list_model_versions("api-model")] == ["v1.0", "v1.1"]
    with pytest.raises(KeyError):
        registry.get_model_version("api-model", "v2.0")
    with pytest.raises(ValueError, match="numbers versions itself"):
        registry.register_model_version("api-model", version="v9.0", model_source_uri=str(adapter))
    registry.delete_model("api-model")
    with pytest.raises(KeyError):
        registry.get_model("api-model")
