"""The GitHub Actions workflows: actionlint-clean, the rules the train workflow must keep, and the
job-summary script it runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
TRAIN = WORKFLOWS / "train-eval-deploy.yml"
CI = WORKFLOWS / "ci.yml"
SUMMARY = ROOT / ".github" / "scripts" / "job_summary.py"
ON_MAIN_PUSH = ("github.event_name == 'push'", "github.ref == 'refs/heads/main'")
SECRET = re.compile(r"\bsecrets\.")
PUBLISH = re.compile(r"docker push\b|--push\b|--opt push\b|docker buildx push\b")


def _workflow_files() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def _load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in doc:  # YAML 1.1 reads the key `on` as the boolean true
        doc["on"] = doc.pop(True)
    return doc


def _steps(doc: dict) -> Iterator[dict]:
    for job in doc["jobs"].values():
        yield from job.get("steps", [])


def _strings(node: object, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Every string in the document with the keys/indices leading to it."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, (*path, i))
    elif isinstance(node, str):
        yield path, node


def _actionlint() -> Path:
    beside_python = Path(sys.executable).parent / "actionlint"
    if beside_python.exists():
        return beside_python
    found = shutil.which("actionlint")
    if found is None:
        pytest.fail("the actionlint binary is missing: it is a dev dependency (make install)")
    return Path(found)


def test_both_workflows_exist() -> None:
    assert TRAIN in _workflow_files()
    assert CI in _workflow_files()


@pytest.mark.parametrize("workflow", _workflow_files(), ids=lambda p: p.name)
def test_actionlint_is_clean(workflow: Path) -> None:
    # shellcheck (a dev dependency) beside python lets actionlint check the run: scripts too.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        [str(_actionlint()), "-no-color", str(workflow.relative_to(ROOT))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"actionlint:\n{result.stdout}{result.stderr}"


def test_train_runs_on_pushes_to_main_but_not_for_docs() -> None:
    push = _load(TRAIN)["on"]["push"]

    assert push["branches"] == ["main"]
    assert "docs/**" in push["paths-ignore"]
    assert "**.md" in push["paths-ignore"]


def test_train_dispatch_defaults_exist_and_match_the_push_fallbacks() -> None:
    doc = _load(TRAIN)
    inputs = doc["on"]["workflow_dispatch"]["inputs"]

    assert inputs["config"]["default"] == "pipelines/configs/nizami-1.7b.yaml"
    for name, env in (("config", "CONFIG"), ("run_config", "RUN_CONFIG")):
        default = inputs[name]["default"]
        assert (ROOT / default).is_file(), f"default {name} {default} does not exist"
        assert f"'{default}'" in doc["env"][env], f"env.{env} must fall back to {default}"


def test_two_pushes_never_train_at_once() -> None:
    concurrency = _load(TRAIN)["concurrency"]

    # One fixed group for the whole repository: a per-ref group would let runs of two refs overlap.
    assert concurrency["group"] and "${{" not in concurrency["group"]
    assert concurrency["cancel-in-progress"] is False


@pytest.mark.parametrize("workflow", _workflow_files(), ids=lambda p: p.name)
def test_secrets_reach_steps_only_through_env_or_with(workflow: Path) -> None:
    doc = _load(workflow)
    for path, text in _strings(doc):
        if SECRET.search(text):
            assert len(path) >= 2 and path[-2] in ("env", "with"), f"secret in {path}: {text}"
    for step in _steps(doc):
        script = step.get("run", "")
        assert not SECRET.search(script), f"a run: script names a secret: {script}"
        # Any ${{ }} pasted into a script is a script-injection path; values go through env.
        assert "${{" not in script, f"an expression inside a run: script: {script}"


def test_pipeline_step_gets_every_credential_from_env() -> None:
    (step,) = [s for s in _steps(_load(TRAIN)) if "pipelines.run" in s.get("run", "")]
    names = {
        "KAGGLE_API_TOKEN",
        "KAGGLE_USERNAME",
        "KAGGLE_KEY",
        "WANDB_API_KEY",
        "HF_TOKEN",
        "ZENML_STORE_URL",
        "ZENML_STORE_API_KEY",
    }

    for name in names:
        assert step["env"][name] == f"${{{{ secrets.{name} }}}}"
    assert '--config "$CONFIG"' in step["run"]
    assert '--run-config "$RUN_CONFIG"' in step["run"]


def test_ghcr_login_and_push_happen_only_for_pushes_to_main() -> None:
    doc = _load(TRAIN)
    steps = list(_steps(doc))
    logins = [s for s in steps if s.get("uses", "").startswith("docker/login-action")]
    pushes = [s for s in steps if "docker push" in s.get("run", "")]

    assert logins and pushes
    for step in logins + pushes:
        assert all(part in step.get("if", "") for part in ON_MAIN_PUSH), step
    for step in steps:  # nothing else may publish: the build itself only loads the image
        if step not in pushes:
            assert not PUBLISH.search(step.get("run", "")), step
    assert logins[0]["with"]["registry"] == "ghcr.io"
    assert doc["jobs"]["train-eval-deploy"]["permissions"]["packages"] == "write"


def test_images_are_built_and_smoke_tested_by_make_images_code_with_the_actions_cache() -> None:
    """The workflow builds through bento/container.py (what `make image` runs), with Buildx and
    the Actions cache as builder arguments, and checks the CPU image before any push."""
    steps = list(_steps(_load(TRAIN)))
    uses = [s.get("uses", "") for s in steps]
    runs = [s.get("run", "") for s in steps]
    (build,) = [r for r in runs if "python -m bento.container --bento" in r]
    (smoke,) = [i for i, r in enumerate(runs) if "bento.container --smoke-only" in r]
    (push,) = [i for i, r in enumerate(runs) if "docker push" in r]

    assert not any("bentoml containerize" in r for r in runs)  # BentoML's build hides failures
    assert any(u.startswith("docker/setup-buildx-action@") for u in uses)
    assert any(u.startswith("crazy-max/ghaction-github-runtime@") for u in uses)
    assert "--cache-from=type=gha" in build and "--cache-to=type=gha,mode=max" in build
    assert build.count("python -m bento.container --bento") == 2  # the GPU and the CPU image
    assert smoke < push


def test_metrics_report_and_summary_leave_the_runner() -> None:
    steps = list(_steps(_load(TRAIN)))
    uploaded = "\n".join(
        s["with"]["path"] for s in steps if s.get("uses", "").startswith("actions/upload-artifact")
    )
    (summary,) = [s for s in steps if "job_summary.py" in s.get("run", "")]

    assert "outputs/metrics.json" in uploaded
    assert "outputs/eval_report.html" in uploaded
    assert '>> "$GITHUB_STEP_SUMMARY"' in summary["run"]
    assert summary["if"] == "${{ !cancelled() }}"


def test_ci_runs_lint_and_the_test_suite() -> None:
    doc = _load(CI)
    (job,) = doc["jobs"].values()
    runs = [s.get("run", "") for s in job["steps"]]
    (python,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python")]

    assert "pull_request" in doc["on"] and "push" in doc["on"]
    assert job["timeout-minutes"] == 60
    assert "make lint" in runs and "make test" in runs
    # 3.11 last (the project's python3); 3.12 for the emulator's Kaggle-like environment
    assert python["with"]["python-version"].split() == ["3.12", "3.11"]
    assert python["with"]["cache"] == "pip"
    (cache,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/cache")]
    assert cache["with"]["path"] == "~/.cache/nizami/kaggle-image"
    assert "kaggle_emulator/image.py" in cache["with"]["key"]
    # torch's CPU wheel comes from `make install`, not from a job-wide index
    assert "PIP_EXTRA_INDEX_URL" not in doc.get("env", {})


# --- .github/scripts/job_summary.py --------------------------------------------------------

METRICS = {
    "examples": 50,
    "data_hash": "f268584c3344743d38e3f9b60e40e69a",
    "sacrebleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
    "base": {
        "bleu": 1.5061,
        "chrf": 23.5744,
        "rouge1": 20.8458,
        "rouge2": 9.621,
        "rougeL": 20.3569,
        "format_rate": 0.0,
    },
    "tuned": {
        "bleu": 27.7887,
        "chrf": 49.5679,
        "rouge1": 50.9312,
        "rouge2": 23.0403,
        "rougeL": 50.1231,
        "format_rate": 0.94,
    },
    "delta": {
        "bleu": 26.2826,
        "chrf": 25.9935,
        "rouge1": 30.0854,
        "rouge2": 13.4193,
        "rougeL": 29.7662,
    },
}
PROMOTED = {
    "model": "nizami-1.7b",
    "version": "3",
    "gate": {"promote": True, "reason": "BLEU 27.79 >= threshold 20.00; no production version yet"},
}
HELD = {
    "model": "nizami-1.7b",
    "version": "4",
    "gate": {"promote": False, "reason": "BLEU 7.79 is below the threshold 20.00"},
}
IMAGE = "ghcr.io/azlab/nizami-1.7b:3"


def _summary(tmp_path: Path, metrics: dict | None, registration: dict | None, *args: str) -> str:
    paths = {}
    for name, doc in (("metrics", metrics), ("registration", registration)):
        paths[name] = tmp_path / f"{name}.json"
        if doc is not None:
            paths[name].write_text(json.dumps(doc), encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            str(SUMMARY),
            "--metrics",
            str(paths["metrics"]),
            "--registration",
            str(paths["registration"]),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_summary_table_has_both_models_and_the_delta(tmp_path: Path) -> None:
    out = _summary(tmp_path, METRICS, PROMOTED, "--image", IMAGE, "--pushed", "true")

    assert "| metric | base | tuned | Δ (tuned − base) |" in out
    assert "| BLEU | 1.51 | 27.79 | +26.28 |" in out
    assert "| chrF | 23.57 | 49.57 | +25.99 |" in out
    assert "| ROUGE-1 | 20.85 | 50.93 | +30.09 |" in out
    assert "| ROUGE-2 | 9.62 | 23.04 | +13.42 |" in out
    assert "| ROUGE-L | 20.36 | 50.12 | +29.77 |" in out
    assert "| format_rate | 0.0% | 94.0% | +94.0 pp |" in out
    assert "50 held-out examples" in out and "tok:13a" in out


def test_summary_names_the_gate_decision_version_and_image(tmp_path: Path) -> None:
    out = _summary(
        tmp_path,
        METRICS,
        PROMOTED,
        "--image",
        IMAGE,
        "--pushed",
        "true",
        "--config",
        "pipelines/configs/nizami-1.7b.yaml",
        "--run-config",
        "stacks/run-configs/local.yaml",
    )

    assert "`nizami-1.7b` v3" in out
    assert "**promoted** to `production`: BLEU 27.79 >= threshold 20.00; no production" in out
    assert f"`{IMAGE}` (pushed to GHCR)" in out
    assert "`pipelines/configs/nizami-1.7b.yaml`" in out
    assert "`stacks/run-configs/local.yaml`" in out


def test_summary_of_a_held_version_and_an_unpushed_image(tmp_path: Path) -> None:
    out = _summary(
        tmp_path, METRICS, HELD, "--image", "ghcr.io/azlab/nizami-1.7b:4", "--pushed", "false"
    )

    assert "`nizami-1.7b` v4" in out
    assert "**not promoted** (held): BLEU 7.79 is below the threshold 20.00" in out
    assert "`ghcr.io/azlab/nizami-1.7b:4` (built; not pushed" in out
    assert "pushed to GHCR" not in out


def test_summary_computes_a_missing_delta(tmp_path: Path) -> None:
    metrics = {k: v for k, v in METRICS.items() if k != "delta"}

    out = _summary(tmp_path, metrics, PROMOTED)

    assert "| BLEU | 1.51 | 27.79 | +26.28 |" in out
    assert "**Image:** not built" in out


def test_summary_after_a_failed_run_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text("{not json", encoding="utf-8")

    out = _summary(tmp_path, None, None)

    assert "could not be read" in out  # the broken metrics.json
    assert "registration.json` was not written" in out
    assert "**Image:** not built" in out
