"""The ``kaggle`` step operator (ZenML 0.98 ``submit``/``get_status``/``wait``/``cancel``).

Standalone mode: ``submit`` starts ZenML's step entrypoint on this machine with
``StandaloneEntrypointConfiguration`` (see ``standalone.py``), whose step call runs in a Kaggle
kernel; ``wait`` follows that process, which streams the kernel log into the step log.
That process runs in its own session: Ctrl-C (or SIGTERM) reaches only this one, which passes
one SIGTERM on and waits, deaf to further signals, while the process deletes the kernel
(``stopping.py``).

Server mode (``mode: server``, see ``server_mode.py``): the kernel runs ZenML's own step
entrypoint against the ZenML server; each method below hands over to ``server_mode``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, ClassVar

from zenml.enums import ExecutionStatus
from zenml.step_operators import BaseStepOperator
from zenml.utils import source_utils

from kaggle_orchestrator.flavors import KaggleStepOperatorConfig, KaggleStepOperatorSettings
from kaggle_orchestrator.step_operators import server_mode
from kaggle_orchestrator.stopping import signals_held, sigterm_interrupts

if TYPE_CHECKING:
    from zenml.config.build_configuration import BuildConfiguration
    from zenml.config.step_run_info import StepRunInfo
    from zenml.models import PipelineSnapshotBase, StepRunResponse
    from zenml.stack import StackValidator
    from zenml.step_operators.step_operator_entrypoint_configuration import (
        StepOperatorEntrypointConfiguration,
    )

log = logging.getLogger(__name__)
CANCEL_WAIT_S = 180  # the deletion's retries (5, backing off) fit well within it


class KaggleStepOperator(BaseStepOperator):
    """Runs a step's function in a private Kaggle kernel; ZenML stays on this machine."""

    _processes: ClassVar[dict[str, subprocess.Popen]] = {}

    @property
    def config(self) -> KaggleStepOperatorConfig:
        """The component config."""
        return self._config  # type: ignore[return-value]

    @property
    def settings_class(self) -> type[KaggleStepOperatorSettings]:
        """Per-step settings."""
        return KaggleStepOperatorSettings

    @property
    def entrypoint_config_class(self) -> type[StepOperatorEntrypointConfiguration]:
        """Standalone: ZenML's entrypoint with the step call sent to Kaggle. Server: ZenML's."""
        if self.config.mode == server_mode.SERVER:
            from zenml.step_operators.step_operator_entrypoint_configuration import (
                StepOperatorEntrypointConfiguration,
            )

            return StepOperatorEntrypointConfiguration
        from kaggle_orchestrator.step_operators.standalone import StandaloneEntrypointConfiguration

        return StandaloneEntrypointConfiguration

    @property
    def validator(self) -> StackValidator | None:
        """Server mode refuses a local artifact store or a local ZenML store."""
        if self.config.mode == server_mode.SERVER:
            return server_mode.stack_validator(self.name)
        return None

    def get_docker_builds(self, snapshot: PipelineSnapshotBase) -> list[BuildConfiguration]:
        """Server mode: a ``skip_build`` entry per step, so ZenML uploads the code archive."""
        return server_mode.docker_builds(self, snapshot)

    def submit(
        self, info: StepRunInfo, entrypoint_command: list[str], environment: dict[str, str]
    ) -> None:
        """Start the step entrypoint as a local process (it pushes and follows the kernel)."""
        if self.config.mode == server_mode.SERVER:
            return server_mode.submit(self, info, entrypoint_command, environment)
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
        if server_mode.is_server_submission(step_run):
            return server_mode.get_status(self, step_run)
        process = self._processes.get(str(step_run.id))
        if process is None:  # not started by this process: trust the store
            return step_run.status
        code = process.poll()
        if code is None:
            return ExecutionStatus.RUNNING
        return ExecutionStatus.COMPLETED if code == 0 else ExecutionStatus.FAILED

    def wait(self, step_run: StepRunResponse) -> ExecutionStatus:
        """Block until the entrypoint exits; Ctrl-C reaches it so it can delete the kernel."""
        if server_mode.is_server_submission(step_run):
            return server_mode.wait(self, step_run)
        process = self._processes.get(str(step_run.id))
        if process is None:
            return super().wait(step_run)
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
        if server_mode.is_server_submission(step_run):
            return server_mode.cancel(self, step_run)
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

    def cleanup_step_submission(self, step_run: StepRunResponse) -> None:
        """Forget the finished process (server mode: delete the bundle dataset)."""
        if server_mode.is_server_submission(step_run):
            return server_mode.cleanup(self, step_run)
        self._processes.pop(str(step_run.id), None)
