"""A train step stopped after a checkpoint resumes when the pipeline runs again (`make demo`).

The first run's train step reaches its time budget after one optimizer step: it checkpoints
and fails the run. The second run, with the same data and recipe, finds that checkpoint and
finishes from step 1; the pipeline completes and the checkpoints are cleared.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RUN_CONFIG = ROOT / "stacks" / "run-configs" / "local.yaml"
pytestmark = pytest.mark.e2e


def _config(path: Path, checkpoints: Path, out: Path, **train) -> Path:
    raw = yaml.safe_load((ROOT / "pipelines" / "configs" / "tiny.yaml").read_text())
    raw["model_name"] = "nizami-resume-test"
    raw["output_dir"] = str(out)
    raw["data"]["max_train_examples"] = 48
    raw["train"] |= {"batch_size": 8, "checkpoint_every_steps": 4,
                     "checkpoint_dir": str(checkpoints), **train}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def test_a_stopped_train_step_resumes_on_the_next_run(tmp_path) -> None:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "stacks/register.sh", "local"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    from zenml.client import Client

    from pipelines.training import training_pipeline

    Client().activate_stack("local")
    checkpoints = tmp_path / "checkpoints"
    stopped = _config(tmp_path / "stopped.yaml", checkpoints, tmp_path, time_budget_s=1e-6)
    with pytest.raises(RuntimeError, match="failure in step"):
        training_pipeline.with_options(config_path=str(RUN_CONFIG))(config_path=str(stopped))
    failed = Client().list_pipeline_runs(sort_by="desc:created", size=1).items[0]
    assert "stopped at step 1 of 6" in failed.steps["train"].exception_info.message
    assert list(checkpoints.glob("*/checkpoint-1/nizami-checkpoint.json"))

    again = _config(tmp_path / "again.yaml", checkpoints, tmp_path)
    run = training_pipeline.with_options(config_path=str(RUN_CONFIG))(config_path=str(again))
    run = Client().get_pipeline_run(run.id)

    assert run.status.value == "completed"
    train = run.steps["train"].run_metadata
    assert train["train_attempt"]["resumed_from_step"] == 1
    assert train["train_attempt"]["max_steps"] == 6
    assert train["train"]["train_steps"] == 6 and train["train"]["steps_this_attempt"] == 5
    assert not list(checkpoints.glob("*/checkpoint-*"))
