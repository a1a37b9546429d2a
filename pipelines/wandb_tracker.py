"""The ``nizami_wandb`` tracker: ZenML's W&B tracker with the mode and key of this run.

See ``pipelines/wandb_flavor.py`` for why, and ``pipelines/tracker.py`` for the decision.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from zenml.integrations.wandb.experiment_trackers import WandbExperimentTracker

from pipelines.tracker import Decision, current
from pipelines.wandb_flavor import NizamiWandbConfig

if TYPE_CHECKING:
    from zenml.config.step_run_info import StepRunInfo

log = logging.getLogger(__name__)


class NizamiWandbTracker(WandbExperimentTracker):
    """ZenML's W&B tracker with the mode and key of this run (``pipelines.tracker``)."""

    _saved_key: str | None = None

    @property
    def config(self) -> NizamiWandbConfig:
        """The component config."""
        return self._config  # type: ignore[return-value]

    def decision(self, info: StepRunInfo) -> Decision:
        """The online/offline decision of ``info``'s run (made once per run)."""
        return current(info.run_id, self.config.api_key)

    def prepare_step_run(self, info: StepRunInfo) -> None:
        """Open the step's W&B run, online with this run's key or offline."""
        from zenml.integrations.wandb.experiment_trackers.run_initialization import (
            build_wandb_initialization,
        )

        decision = self.decision(info)
        kwargs = build_wandb_initialization(config=self.config, settings=self.get_settings(info),
                                            info=info)
        kwargs["settings"] = {**kwargs.get("settings", {}),
                              "mode": "online" if decision.online else "offline"}
        self._saved_key = os.environ.get("WANDB_API_KEY")
        if decision.online:
            os.environ["WANDB_API_KEY"] = decision.key or ""
        self._initialize_wandb(info=info, **kwargs)

    def cleanup_step_run(self, info: StepRunInfo, step_failed: bool) -> None:
        """Finish the run; the user's own ``WANDB_API_KEY`` is left as it was."""
        import wandb

        wandb.finish(exit_code=1 if step_failed else 0)
        if self._saved_key is None:
            os.environ.pop("WANDB_API_KEY", None)
        else:
            os.environ["WANDB_API_KEY"] = self._saved_key
