"""Standalone mode: ZenML's step entrypoint runs here, only the step *call* runs on Kaggle.

``StandaloneSubmission`` starts ``StandaloneEntrypointConfiguration`` as a local process and
follows it. That process runs in its own session: Ctrl-C (or SIGTERM) reaches only the
operator's process, which passes one SIGTERM on and waits, deaf to further signals, while the
entrypoint deletes the kernel (``stopping.py``). The entrypoint's ``KernelStepRunner`` is
ZenML's ``StepRunner`` (inputs loaded from the artifact store, outputs stored and published,
step logs, hooks, the experiment tracker) except that the loaded step's ``call_entrypoint`` is
``KernelStepCall`` (``kernel_call.py``), which runs the function in a Kaggle kernel. No ZenML
server, remote artifact store or credential is needed on Kaggle.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from zenml.client import Client
from zenml.config.step_run_info import StepRunInfo
from zenml.entrypoints.step_entrypoint_configuration import STEP_NAME_OPTION
from zenml.enums import ExecutionStatus
from zenml.orchestrators import input_utils, output_utils
from zenml.orchestrators.step_runner import StepRunner
from zenml.step_operators.step_operator_entrypoint_configuration import (
    StepOperatorEntrypointConfiguration,
)
from zenml.utils import source_utils

from kaggle_orchestrator.flavors import KAGGLE_FLAVOR
from kaggle_orchestrator.step_operators.kernel_call import KernelStepCall
from kaggle_orchestrator.step_operators.submission import Submission
from kaggle_orchestrator.step_operators.wandb_run import KernelWandbRun
from kaggle_orchestrator.stopping import signals_held, sigterm_interrupts

if TYPE_CHECKING:
    from zenml.config.step_configurations import Step
    from zenml.models import PipelineSnapshotResponse, StepRunResponse

log = logging.getLogger(__name__)
CANCEL_WAIT_S = 180  # the deletion's retries (5, backing off) fit well within it
# ZenML's W&B tracker and the project's (``nizami_wandb``: online or offline per run).
WANDB_FLAVORS = ("wandb", "nizami_wandb")


class StandaloneSubmission(Submission):
    """Runs ZenML's step entrypoint as a local process whose step call goes to Kaggle."""

    # step run id -> its entrypoint process (any operator instance of this process may follow it)
    _processes: ClassVar[dict[str, subprocess.Popen]] = {}

    @property
    def entrypoint_config_class(self) -> type[StepOperatorEntrypointConfiguration]:
        """ZenML's entrypoint with the step call sent to Kaggle."""
        return StandaloneEntrypointConfiguration

    def submit(self, info: StepRunInfo, entrypoint_command: list[str],
               environment: dict[str, str]) -> None:
        """Start the step entrypoint as a local process (it pushes and follows the kernel)."""
        root = source_utils.get_source_root()
        command = [sys.executable, *entrypoint_command[1:]]
        env = os.environ | environment | {"ZENML_CUSTOM_SOURCE_ROOT": root}
        info.force_write_logs()
        log.info("step %s: running its call in a Kaggle kernel (standalone mode)",
                 info.pipeline_step_name)
        # Its own session: a terminal's Ctrl-C reaches only this process, which passes one
        # signal on (``cancel``), never a second one during the kernel's deletion.
        self._processes[str(info.step_run_id)] = subprocess.Popen(
            command, env=env, cwd=root, start_new_session=True
        )

    def get_status(self, step_run: StepRunResponse) -> ExecutionStatus:
        """RUNNING while the local entrypoint runs; its exit code decides the end state."""
        process = self._processes.get(str(step_run.id))
        if process is None:  # not started by this process: trust the store
            return step_run.status
        code = process.poll()
        if code is None:
            return ExecutionStatus.RUNNING
        return ExecutionStatus.COMPLETED if code == 0 else ExecutionStatus.FAILED

    def wait(self, step_run: StepRunResponse) -> ExecutionStatus:
        """Block until the entrypoint exits; Ctrl-C reaches it so it can delete the kernel."""
        process = self._processes.get(str(step_run.id))
        if process is None:
            return _poll_store(step_run.id)
        try:
            with sigterm_interrupts():
                process.wait()
        except KeyboardInterrupt:
            self.cancel(step_run)
            raise
        return self.get_status(step_run)

    def cancel(self, step_run: StepRunResponse) -> None:
        """Stop the entrypoint with one SIGTERM and wait while it deletes the kernel (further
        signals are held back meanwhile); killed only if it takes over ``CANCEL_WAIT_S``."""
        process = self._processes.get(str(step_run.id))
        if process is None or process.poll() is not None:
            return
        log.warning("stopping step %s: its Kaggle kernel is being deleted", step_run.name)
        process.send_signal(signal.SIGTERM)
        with signals_held("the Kaggle kernel is being deleted"):
            try:
                process.wait(timeout=CANCEL_WAIT_S)
            except subprocess.TimeoutExpired:
                log.error("the step's process did not stop within %d s: killed; check the "
                          "Kaggle account for a running kernel", CANCEL_WAIT_S)
                process.kill()

    def cleanup(self, step_run: StepRunResponse) -> None:
        """Forget the finished process."""
        self._processes.pop(str(step_run.id), None)


def _poll_store(step_run_id: UUID) -> ExecutionStatus:
    """A step run this process did not start: its status in the ZenML store, once final."""
    delay = 1.0
    while True:
        status = Client().get_run_step(step_run_id, hydrate=False).status
        if status.is_finished or status == ExecutionStatus.RETRYING:
            return status
        time.sleep(delay)
        delay = min(delay * 2, 16.0)


class KernelStepRunner(StepRunner):
    """ZenML's step runner with the step call sent to a Kaggle kernel."""

    def _load_step(self):
        instance = super()._load_step()
        name = self._step.config.step_operator
        operator = (self._stack.step_operators.get(name) if isinstance(name, str)
                    else self._stack.step_operator)
        if operator is None or operator.flavor != KAGGLE_FLAVOR:
            raise RuntimeError(
                f"step {self._step.config.name}: step operator {name!r} of stack "
                f"'{self._stack.name}' is not a kaggle step operator"
            )
        settings = operator.get_settings(self._step)
        instance.call_entrypoint = KernelStepCall(
            self._step, instance.entrypoint, operator.config, settings, self._kernel_wandb_run()
        )
        return instance

    def _kernel_wandb_run(self) -> KernelWandbRun | None:
        """The kernel's W&B run, if the step uses a ``wandb`` tracker; the tracker then opens
        no run of its own here and links the step to the kernel's (see ``wandb_run.py``)."""
        tracker = self._stack.experiment_tracker
        if tracker is None or tracker.flavor not in WANDB_FLAVORS:
            return None
        if not self._step.config.uses_experiment_tracker(tracker.name):
            return None
        run = KernelWandbRun.for_step(tracker, self._step_run_info, {})
        tracker.prepare_step_run = lambda info: None  # this process's stack instance only
        tracker.get_step_run_metadata = lambda info: run.metadata()
        return run

    def run(self, *, step_run_info: StepRunInfo, **kwargs: Any) -> None:
        """ZenML's ``run``; keeps ``step_run_info`` for ``_load_step``."""
        self._step_run_info = step_run_info
        super().run(step_run_info=step_run_info, **kwargs)


class StandaloneEntrypointConfiguration(StepOperatorEntrypointConfiguration):
    """ZenML's step-operator entrypoint, run on this machine, with ``KernelStepRunner``."""

    def prepare_code_environment(self) -> None:
        """The code is this checkout: no ``/app`` chdir, no download."""
        root = source_utils.get_source_root()
        if root not in sys.path:
            sys.path.insert(0, root)

    def _run_step(self, step: Step, snapshot: PipelineSnapshotResponse) -> None:
        """As ZenML's, with ``KernelStepRunner`` in place of ``StepRunner``."""
        step_run = self.step_run
        pipeline_run = Client().get_pipeline_run(step_run.pipeline_run_id)
        info = StepRunInfo(
            config=step.config, spec=step.spec, snapshot=snapshot, step_run=step_run,
            pipeline=snapshot.pipeline_configuration, run_name=pipeline_run.name,
            pipeline_step_name=self.entrypoint_args[STEP_NAME_OPTION], run_id=pipeline_run.id,
            step_run_id=step_run.id, force_write_logs=lambda: None,
        )
        stack = Client().active_stack
        input_utils.resolve_step_inputs(step=step, pipeline_run=pipeline_run)
        uris = output_utils.prepare_output_artifact_uris(step_run=step_run, stack=stack, step=step)
        with sigterm_interrupts():  # the operator's cancel (SIGTERM) stops it as Ctrl-C does
            KernelStepRunner(step=step, stack=stack).run(
                pipeline_run=pipeline_run, step_run=step_run, input_artifacts=step_run.inputs,
                output_artifact_uris=uris, step_run_info=info,
            )
