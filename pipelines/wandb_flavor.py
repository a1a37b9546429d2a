"""The ``nizami_wandb`` experiment-tracker flavor (config only; the tracker is imported lazily).

ZenML's ``wandb`` tracker takes its key and mode from the component's configuration, so going
online meant changing a component that every stack shares (the second stack's import then
failed as "configured differently"), and the choice stuck after the key was gone. This flavor
keeps ZenML's run naming, tags, grouping and metadata and takes the key and mode from
``pipelines.tracker`` when each run starts (``pipelines/wandb_tracker.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zenml.integrations.wandb.flavors import (
    WandbExperimentTrackerConfig,
    WandbExperimentTrackerFlavor,
)
from zenml.utils.secret_utils import SecretField

if TYPE_CHECKING:
    from pipelines.wandb_tracker import NizamiWandbTracker

FLAVOR = "nizami_wandb"


class NizamiWandbConfig(WandbExperimentTrackerConfig):
    """As ZenML's, with the key optional: it comes from ``WANDB_API_KEY`` or the ZenML secret
    ``wandb`` when the run starts (a ``{{wandb.api_key}}`` reference here also works)."""

    api_key: str | None = SecretField(  # type: ignore[assignment]
        default=None,
        description="Optional W&B key; by default WANDB_API_KEY or the ZenML secret 'wandb' "
        "when the run starts, and offline without either.",
    )


class NizamiWandbFlavor(WandbExperimentTrackerFlavor):
    """``nizami_wandb``: W&B, online when a key is set when the run starts."""

    @property
    def name(self) -> str:
        """The flavor name."""
        return FLAVOR

    @property
    def config_class(self) -> type[NizamiWandbConfig]:
        """The config class."""
        return NizamiWandbConfig

    @property
    def implementation_class(self) -> type[NizamiWandbTracker]:
        """The implementation class."""
        from pipelines.wandb_tracker import NizamiWandbTracker

        return NizamiWandbTracker
