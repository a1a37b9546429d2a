"""CI never retrains for nothing: the Actions cache of the local ZenML store, its key, its scrub,
and the job summary's cached steps (``.github/scripts/zenml_store_cache.py``)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".github" / "scripts" / "zenml_store_cache.py"
SUMMARY = ROOT / ".github" / "scripts" / "job_summary.py"
TRAIN = ROOT / ".github" / "workflows" / "train-eval-deploy.yml"
KEY_ARGS = ("kaggle", "pipelines/configs/nizami-1.7b.yaml", "stacks/run-configs/kaggle.yaml")
# What a checkout holds that matters here (copied, so that edits do not touch the repository).
COPIED = ["pyproject.toml", "steps", "pipelines", "kaggle_orchestrator", "stacks", "data",
          "dvc.yaml", "dvc.lock", "params.yaml", ".dvc/config", "bento", "docs", "README.md",
          "tests/unit/test_config.py", ".github"]


def _module():
    spec = importlib.util.spec_from_file_location("zenml_store_cache", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "nizami.jsonl", "kaggle")
    for name in COPIED:
        source, target = ROOT / name, tmp_path / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return tmp_path


def _key(root: Path, *args: str) -> str:
    """The key as the workflow computes it: the script, run in a subprocess."""
    done = subprocess.run([sys.executable, str(SCRIPT), "key", "--root", str(root),
                           "--stack", args[0], "--config", args[1], "--run-config", args[2]],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


@pytest.mark.parametrize("edit", [
    "steps/core/train/process.py",          # a helper of train: ZenML's own cache key misses it
    "steps/train.py",
    "pipelines/configs/nizami-1.7b.yaml",
    "data/nizami.jsonl.dvc",           # new data
    "pyproject.toml",                  # a new pin
    "kaggle_orchestrator/kernel_entry.py",
    "stacks/run-configs/kaggle.yaml",
])
def test_the_key_changes_when_an_input_of_train_changes(checkout: Path, edit: str) -> None:
    before = _key(checkout, *KEY_ARGS)
    _append(checkout / edit, "\n# changed\n")
    assert _key(checkout, *KEY_ARGS) != before


@pytest.mark.parametrize("edit", [
    "README.md", "docs/secrets.md", "docs/benchmarks.md", "bento/service.py",
    "tests/unit/test_config.py", ".github/workflows/train-eval-deploy.yml",
])
def test_the_key_stays_when_only_docs_or_serving_code_change(checkout: Path, edit: str) -> None:
    before = _key(checkout, *KEY_ARGS)
    _append(checkout / edit, "\n# changed\n")
    (checkout / "docs" / "new-page.md").write_text("# new\n")
    assert _key(checkout, *KEY_ARGS) == before


def test_the_key_names_the_stack_and_both_configs(checkout: Path) -> None:
    key = _key(checkout, *KEY_ARGS)
    assert key.startswith("zenml-store-v1-kaggle-")
    assert _key(checkout, "local", *KEY_ARGS[1:]) != key
    assert _key(checkout, KEY_ARGS[0], "pipelines/configs/demo.yaml", KEY_ARGS[2]) != key
    assert _key(checkout, *KEY_ARGS[:2], "stacks/run-configs/local.yaml") != key


def test_the_key_covers_the_code_train_runs() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in _module().train_input_files(ROOT)}
    for needed in ("steps/core/train/process.py", "steps/train.py", "pipelines/training.py",
                   "kaggle_orchestrator/kernel_entry.py", "data/nizami.jsonl.dvc",
                   "pyproject.toml", "stacks/run-configs/kaggle.yaml"):
        assert needed in files, needed
    assert not any(f.startswith(("bento/", "docs/", "tests/")) or f.endswith(".md")
                   for f in files)


def _steps(doc: dict) -> list[dict]:
    return [s for job in doc["jobs"].values() for s in job["steps"]]


def test_the_workflow_restores_only_the_exact_key_and_saves_a_scrubbed_store() -> None:
    steps = _steps(yaml.safe_load(TRAIN.read_text()))
    names = [s.get("name", s.get("uses", "")) for s in steps]
    (key,) = [s for s in steps if "zenml_store_cache.py key" in s.get("run", "")]
    (restore,) = [s for s in steps if s.get("uses", "").startswith("actions/cache/restore@")]
    (save,) = [s for s in steps if s.get("uses", "").startswith("actions/cache/save@")]
    (scrub,) = [s for s in steps if "zenml_store_cache.py scrub" in s.get("run", "")]
    (pipeline,) = [s for s in steps if "pipelines.run" in s.get("run", "")]
    for name in ("--stack \"$STACK\"", "--config \"$CONFIG\"", "--run-config \"$RUN_CONFIG\""):
        assert name in key["run"].replace("\\\n", " ").replace("  ", " ")
    assert "restore-keys" not in restore["with"]  # a store for other inputs is never used
    assert restore["with"]["key"] == save["with"]["key"] == "${{ steps.store-key.outputs.key }}"
    assert restore["with"]["path"] == save["with"]["path"] == "${{ runner.temp }}/zenml"
    # Only without a team server (which caches by itself), after a successful run that did not
    # start from a restored store, and after the secrets are gone.
    for step in (key, restore):
        assert step["if"] == "steps.store.outputs.server != 'true'"
    for step in (scrub, save):
        assert "steps.store.outputs.server != 'true'" in step["if"]
        assert "steps.pipeline.outcome == 'success'" in step["if"]
        assert "steps.restore-store.outputs.cache-hit != 'true'" in step["if"]
    assert pipeline["id"] == "pipeline"
    order = [names.index(s.get("name", s.get("uses"))) for s in (restore, pipeline, scrub, save)]
    assert order == sorted(order)
    for secret in ("WANDB_API_KEY", "HF_TOKEN", "KAGGLE_API_TOKEN", "KAGGLE_KEY"):
        assert f"--secret-env {secret}" in scrub["run"] and secret in scrub["env"]


def test_the_job_summary_gets_the_steps_and_the_store() -> None:
    steps = _steps(yaml.safe_load(TRAIN.read_text()))
    (summary,) = [s for s in steps if "job_summary.py" in s.get("run", "")]
    assert "--steps outputs/steps.json" in summary["run"]
    assert '--store "$store"' in summary["run"]


def test_package_is_never_cached_where_ci_runs() -> None:
    """Its bento lives in the runner's BentoML store, which no cache restores."""
    for name in ("kaggle", "kaggle-eval-on-kaggle", "team"):
        raw = yaml.safe_load((ROOT / "stacks" / "run-configs" / f"{name}.yaml").read_text())
        assert raw["steps"]["package"]["enable_cache"] is False, name


def test_needles_find_a_value_inside_base64() -> None:
    import base64

    occurs = _module().occurs
    value = "f3a9c0de1b2a4c6e8d0f1a2b3c4d5e6f"
    for prefix in ("", "x", "xy", '{"api_key": "'):
        encoded = base64.b64encode(f"{prefix}{value}tail".encode())
        assert occurs(value, b"junk" + encoded + b"junk"), prefix
    assert not occurs(value, base64.b64encode(b"another value entirely, long enough"))


def test_summary_says_which_steps_were_cached(tmp_path: Path) -> None:
    steps = {"run": "r", "status": "completed", "steps": {
        "load_data": "cached", "train": "cached", "evaluate": "cached", "register": "cached",
        "package": "completed"}}
    (tmp_path / "steps.json").write_text(json.dumps(steps))
    done = subprocess.run(
        [sys.executable, str(SUMMARY), "--metrics", str(tmp_path / "m.json"), "--registration",
         str(tmp_path / "r.json"), "--steps", str(tmp_path / "steps.json"),
         "--store", "local, restored from the Actions cache"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    out = done.stdout
    assert "| train | **cached** |" in out and "| package | completed |" in out
    assert "**Cached steps:** load_data, train, evaluate, register; train was a cache hit: " \
           "nothing ran on Kaggle" in out
    assert "**ZenML store:** local, restored from the Actions cache" in out


def test_summary_of_a_run_that_trained(tmp_path: Path) -> None:
    steps = {"steps": {"load_data": "completed", "train": "completed"}}
    (tmp_path / "steps.json").write_text(json.dumps(steps))
    out = subprocess.run(
        [sys.executable, str(SUMMARY), "--steps", str(tmp_path / "steps.json"),
         "--metrics", str(tmp_path / "m.json"), "--registration", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert "**Cached steps:** none" in out and "nothing ran on Kaggle" not in out


@pytest.mark.slow
def test_scrub_leaves_no_secret_in_the_store(tmp_path: Path) -> None:
    """A real local ZenML store with a W&B secret in it (a team's, made on purpose): after the
    scrub no file of the store holds the value, and the scrub says so by its exit status."""
    value = os.urandom(16).hex()
    env = {**os.environ, "ZENML_CONFIG_PATH": str(tmp_path / "zenml"),
           "ZENML_ANALYTICS_OPT_IN": "false", "WANDB_API_KEY": value}
    env.pop("ZENML_STORE_URL", None)
    create = ("import os\nfrom zenml.client import Client\n"
              "Client().create_secret('wandb', values={'api_key': os.environ['WANDB_API_KEY']})")
    subprocess.run([sys.executable, "-c", create], env=env, check=True, timeout=300,
                   capture_output=True, cwd=tmp_path)
    occurs = _module().occurs
    stored = [p for p in (tmp_path / "zenml").rglob("*") if p.is_file()
              and occurs(value, p.read_bytes())]
    assert stored  # base64 in SQLite, not encrypted: what would have gone into the cache
    done = subprocess.run([sys.executable, str(SCRIPT), "scrub", "--store",
                           str(tmp_path / "zenml"), "--secret-env", "WANDB_API_KEY"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not [p for p in (tmp_path / "zenml").rglob("*") if p.is_file()
                and occurs(value, p.read_bytes())]
