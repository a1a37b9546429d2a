"""How a ``kaggle`` step operator submits a step: one strategy object per mode.

The mode is the operator's config (``mode``), chosen once: the operator builds one
:class:`Submission` (``standalone.StandaloneSubmission`` or ``server_mode.ServerSubmission``)
and hands every ZenML call to it, with no mode check of its own. Each strategy sees the operator
only through :class:`Operator` (its name, id, config and a step's settings), never imports it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from zenml.config.build_configuration import BuildConfiguration
    from zenml.config.step_run_info import StepRunInfo
    from zenml.enums import ExecutionStatus
    from zenml.models import PipelineSnapshotBase, StepRunResponse
    from zenml.stack import StackValidator
    from zenml.step_operators.step_operator_entrypoint_configuration import (
        StepOperatorEntrypointConfiguration,
    )

    from kaggle_orchestrator.flavors import KaggleStepOperatorConfig, KaggleStepOperatorSettings


class Operator(Protocol):
    """What a strategy reads of the step operator that holds it."""

    name: str
    id: UUID

    @property
    def config(self) -> KaggleStepOperatorConfig:
        """The operator's config (mode, credentials, packages...)."""

    def get_settings(self, container: Any) -> KaggleStepOperatorSettings:
        """A step's settings, the operator's config as their defaults."""


class Submission(ABC):
    """The operator's ZenML calls, for one mode. Each method is the step operator method of
    the same name (``cleanup`` is ``cleanup_step_submission``)."""

    def __init__(self, operator: Operator) -> None:
        self.operator = operator

    @property
    @abstractmethod
    def entrypoint_config_class(self) -> type[StepOperatorEntrypointConfiguration]:
        """The entrypoint configuration ZenML runs for a step."""

    def validator(self) -> StackValidator | None:
        """What the stack must offer for this mode (None: any stack)."""
        return None

    def docker_builds(self, snapshot: PipelineSnapshotBase) -> list[BuildConfiguration]:
        """The build entries this mode needs (none by default)."""
        return []

    @abstractmethod
    def submit(self, info: StepRunInfo, entrypoint_command: list[str],
               environment: dict[str, str]) -> None:
        """Start the step."""

    @abstractmethod
    def get_status(self, step_run: StepRunResponse) -> ExecutionStatus:
        """The submitted step's status."""

    @abstractmethod
    def wait(self, step_run: StepRunResponse) -> ExecutionStatus:
        """Block until the step ended; its final status."""

    @abstractmethod
    def cancel(self, step_run: StepRunResponse) -> None:
        """Stop the step (its kernel is deleted)."""

    @abstractmethod
    def cleanup(self, step_run: StepRunResponse) -> None:
        """After the step ended, however it ended."""
