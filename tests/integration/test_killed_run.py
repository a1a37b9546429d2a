"""A run whose process was killed is marked failed by the next run, not left "running".

``python -m pipelines.run`` is started on the local stack with a long train step and killed
with SIGKILL (its whole process group, as a closed terminal would) while training. ZenML has no
one left to mark it: the store says "running". The next run's init hook
(``pipelines.run_hooks.start_of_run``) finds that the recorded process is gone and marks the run
and its running step failed, with the reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT, env, register_stack, run_pipeline, write_config

pytestmark = pytest.mark.e2e


def _running_run_of(pid: int, timeout_s: float = 600):
    from zenml.client import Client

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for run in Client().list_pipeline_runs(sort_by="desc:created", size=3,
                                               hydrate=True).items:
            owner = run.run_metadata.get("nizami_process")
            train = run.steps.get("train")
            if isinstance(owner, dict) and owner.get("pid") == pid and train is not None \
                    and train.status.value == "running":
                return run
        time.sleep(1)
    raise TimeoutError(f"no run of pid {pid} reached its train step")


def test_a_killed_run_is_marked_failed_by_the_next_run(tmp_path):
    done = register_stack("local")
    assert done.returncode == 0, done.stderr
    from zenml.client import Client

    Client().activate_stack("local")
    # Inputs of its own (max_train_examples), so that no later module finds its steps cached.
    data = {"max_train_examples": 56}
    long = write_config(tmp_path / "long.yaml", model_name="nizami-killed-test", data=data,
                        output_dir=str(tmp_path / "out"), train={"epochs": 500})
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.run", "--config", str(long)], cwd=ROOT, env=env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        killed = _running_run_of(process.pid)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert Client().get_pipeline_run(killed.id).status.value == "running"  # nobody marks it

    quick = write_config(tmp_path / "quick.yaml", model_name="nizami-killed-test", data=data,
                         output_dir=str(tmp_path / "out2"))
    assert run_pipeline(quick).status.value == "completed"
    after = Client().get_pipeline_run(killed.id)
    assert after.status.value == "failed", after.status
    reason = after.get_body().status_reason or ""
    assert f"pid {process.pid}" in reason and "gone" in reason, reason
    assert after.steps["train"].status.value == "failed"
