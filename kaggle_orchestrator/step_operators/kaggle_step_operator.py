"""The ``kaggle`` step operator (ZenML 0.98 ``submit``/``get_status``/``wait``/``cancel``).

The operator's ``mode`` (its config, chosen once) picks one submission strategy
(``submission.py``): ``standalone.StandaloneSubmission`` (ZenML's entrypoint runs here, only
the step call runs in a Kaggle kernel) or ``server_mode.ServerSubmission`` (the kernel runs
ZenML's own entrypoint against a ZenML server). Every ZenML call below hands over to it. A
step's settings cannot choose the mode, the packages or the resume marker (the settings class
refuses them, saying what to do instead).

The strategies are imported when first needed: the kernel's ZenML instantiates this operator
too (server mode) and has neither the kaggle client nor tenacity.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from zenml.step_operators import BaseStepOperator

from kaggle_orchestrator.flavors import KaggleStepOperatorConfig, KaggleStepOperatorSettings
from kaggle_orchestrator.flavors.kaggle_step_operator_flavor import (
    MERGING_OPERATOR_CONFIG,
    SERVER,
)

if TYPE_CHECKING:
    from zenml.config.build_configuration import BuildConfiguration
    from zenml.config.step_run_info import StepRunInfo
    from zenml.enums import ExecutionStatus
    from zenml.models import PipelineSnapshotBase, StepRunResponse
    from zenml.stack import StackValidator
    from zenml.step_operators.step_operator_entrypoint_configuration import (
        StepOperatorEntrypointConfiguration,
    )

    from kaggle_orchestrator.step_operators.submission import Submission


class KaggleStepOperator(BaseStepOperator):
    """Runs a step's function in a private Kaggle kernel; ZenML stays on this machine."""

    @property
    def config(self) -> KaggleStepOperatorConfig:
        """The component config."""
        return self._config  # type: ignore[return-value]

    @property
    def settings_class(self) -> type[KaggleStepOperatorSettings]:
        """Per-step settings."""
        return KaggleStepOperatorSettings

    @cached_property
    def submission(self) -> Submission:
        """The strategy of this operator's mode, built once."""
        if self.config.mode == SERVER:
            from kaggle_orchestrator.step_operators.server_mode import ServerSubmission

            return ServerSubmission(self)
        from kaggle_orchestrator.step_operators.standalone import StandaloneSubmission

        return StandaloneSubmission(self)

    @property
    def entrypoint_config_class(self) -> type[StepOperatorEntrypointConfiguration]:
        """The entrypoint ZenML runs for a step (the strategy's)."""
        return self.submission.entrypoint_config_class

    @property
    def validator(self) -> StackValidator | None:
        """What the stack must offer (server mode: a remote artifact store and ZenML store)."""
        return self.submission.validator()

    def get_settings(self, container: Any) -> KaggleStepOperatorSettings:
        """ZenML's: the step's settings over this operator's config, whose operator-wide
        choices (``mode``...) a step's own settings may not hold."""
        token = MERGING_OPERATOR_CONFIG.set(True)
        try:
            return super().get_settings(container)  # type: ignore[return-value]
        finally:
            MERGING_OPERATOR_CONFIG.reset(token)

    def get_docker_builds(self, snapshot: PipelineSnapshotBase) -> list[BuildConfiguration]:
        """The strategy's build entries (server mode: one ``skip_build`` entry per step)."""
        return self.submission.docker_builds(snapshot)

    def submit(self, info: StepRunInfo, entrypoint_command: list[str],
               environment: dict[str, str]) -> None:
        """Start the step (standalone: a local process; server: a kernel)."""
        self.submission.submit(info, entrypoint_command, environment)

    def get_status(self, step_run: StepRunResponse) -> ExecutionStatus:
        """The submitted step's status."""
        return self.submission.get_status(step_run)

    def wait(self, step_run: StepRunResponse) -> ExecutionStatus:
        """Block until the step ended; Ctrl-C deletes the kernel first."""
        return self.submission.wait(step_run)

    def cancel(self, step_run: StepRunResponse) -> None:
        """Stop the step: its kernel is deleted."""
        self.submission.cancel(step_run)

    def cleanup_step_submission(self, step_run: StepRunResponse) -> None:
        """After the step ended (standalone: forget its process; server: delete the bundle)."""
        self.submission.cleanup(step_run)
