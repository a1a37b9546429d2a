"""What every run of the training pipeline does first (its ``on_init`` and ``on_start`` hooks).

1. W&B online or offline for this run (``pipelines.tracker.current``), said once.
2. Runs on this machine that were killed (Ctrl-C twice, ``kill -9``, a closed laptop) stay
   "running" in the ZenML store for ever, since nothing was left to mark them. Each run records
   the process that drives it (host, pid, start time: ``on_init`` runs there, before any step,
   and hands it to the step processes it starts through the environment); the next run on the
   same host marks the runs whose process is gone as failed, with the reason, so the dashboard
   and ``zenml pipeline runs list`` tell the truth. (A resumable train step resumes from its
   checkpoints on that next run, as before.)
"""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import Any

log = logging.getLogger(__name__)
PROCESS_KEY = "nizami_process"
DRIVER_ENV = "NIZAMI_RUN_DRIVER"
UNFINISHED = ("initializing", "provisioning", "running")


def this_process() -> dict[str, Any]:
    """Who drives this run: enough to tell later whether that process still exists."""
    import psutil

    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": psutil.Process().create_time()}


def is_alive(owner: dict[str, Any]) -> bool:
    """Whether the process ``owner`` (from :func:`this_process`, on this host) still runs."""
    import psutil

    try:
        return abs(psutil.Process(int(owner["pid"])).create_time() - owner["started"]) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, TypeError, ValueError):
        return False


def mark_dead_runs_failed(client: Any, current_run_id: object) -> list[str]:
    """Mark this host's unfinished runs whose driving process is gone as failed; their names."""
    from zenml.enums import ExecutionStatus
    from zenml.models import PipelineRunUpdate, StepRunUpdate

    host, marked = socket.gethostname(), []
    for status in UNFINISHED:
        for run in client.list_pipeline_runs(status=status, size=100, hydrate=True).items:
            owner = run.run_metadata.get(PROCESS_KEY)
            if run.id == current_run_id or not isinstance(owner, dict):
                continue
            if owner.get("host") != host or is_alive(owner):
                continue
            reason = (f"its process (pid {owner.get('pid')} on {host}) is gone: killed or "
                      "interrupted; marked failed by the next run")
            for step in run.steps.values():
                if step.status.value in UNFINISHED:
                    client.zen_store.update_run_step(
                        step.id, StepRunUpdate(status=ExecutionStatus.FAILED))
            client.zen_store.update_run(
                run.id, PipelineRunUpdate(status=ExecutionStatus.FAILED, status_reason=reason))
            log.warning("run %s was left '%s': %s", run.name, status, reason)
            marked.append(run.name)
    return marked


def driver_started() -> None:
    """``on_init``: runs in the process that drives the run, before its first step."""
    try:
        os.environ[DRIVER_ENV] = json.dumps(this_process())
    except Exception as error:  # noqa: BLE001 bookkeeping must never fail the run
        log.warning("run driver not recorded: %s", error)


def step_started() -> None:
    """``on_start`` of every step (in the step's process): W&B's mode for the run, and, once per
    run, its driver recorded and this host's killed runs marked. Never fails the step."""
    from zenml import get_step_context, log_metadata
    from zenml.client import Client

    from pipelines import tracker

    run = get_step_context().pipeline_run
    client = Client()
    try:
        stack_tracker = client.active_stack.experiment_tracker
        if stack_tracker is not None and hasattr(stack_tracker, "decision"):
            tracker.current(run.id, getattr(stack_tracker.config, "api_key", None))
        if PROCESS_KEY in client.get_pipeline_run(run.id).run_metadata:
            return
        driver = json.loads(os.environ.get(DRIVER_ENV) or "null") or this_process()
        log_metadata(metadata={PROCESS_KEY: driver}, run_id_name_or_prefix=run.id)
        mark_dead_runs_failed(client, run.id)
    except Exception as error:  # noqa: BLE001 bookkeeping must never fail the run
        log.warning("run bookkeeping skipped: %s", error)
