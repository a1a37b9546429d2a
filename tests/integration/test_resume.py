"""A train step stopped after a checkpoint resumes when the pipeline runs again (`make demo`).

The first run's train step reaches its time budget after one optimizer step: it checkpoints
and fails the run. The second run, with the same data and recipe, finds that checkpoint and
finishes from step 1; the pipeline completes and the checkpoints are cleared.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import register_stack, run_pipeline, write_config

pytestmark = pytest.mark.e2e


def _config(path: Path, checkpoints: Path, out: Path, **train) -> Path:
    return write_config(
        path, model_name="nizami-resume-test", output_dir=str(out),
        data={"max_train_examples": 48},
        train={"batch_size": 8, "checkpoint_every_steps": 4, "checkpoint_dir": str(checkpoints),
               **train},
    )


def test_a_stopped_train_step_resumes_on_the_next_run(tmp_path) -> None:
    done = register_stack("local")
    assert done.returncode == 0, done.stderr
    from zenml.client import Client

    Client().activate_stack("local")
    checkpoints = tmp_path / "checkpoints"
    stopped = _config(tmp_path / "stopped.yaml", checkpoints, tmp_path, time_budget_s=1e-6)
    with pytest.raises(RuntimeError, match="failure in step"):
        run_pipeline(stopped)
    failed = Client().list_pipeline_runs(sort_by="desc:created", size=1).items[0]
    assert "stopped at step 1 of 6" in failed.steps["train"].exception_info.message
    assert list(checkpoints.glob("*/checkpoint-1/nizami-checkpoint.json"))

    again = _config(tmp_path / "again.yaml", checkpoints, tmp_path)
    run = run_pipeline(again)

    assert run.status.value == "completed"
    train = run.steps["train"].run_metadata
    assert train["train_attempt"]["resumed_from_step"] == 1
    assert train["train_attempt"]["max_steps"] == 6
    assert train["train"]["train_steps"] == 6 and train["train"]["steps_this_attempt"] == 5
    assert not list(checkpoints.glob("*/checkpoint-*"))
