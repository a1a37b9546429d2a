"""The ``kaggle`` step-operator flavor (zenml + pydantic only; never imports the kaggle client)."""

from kaggle_orchestrator.flavors.kaggle_step_operator_flavor import (
    KAGGLE_FLAVOR,
    KaggleStepOperatorConfig,
    KaggleStepOperatorFlavor,
    KaggleStepOperatorSettings,
)

__all__ = [
    "KAGGLE_FLAVOR",
    "KaggleStepOperatorConfig",
    "KaggleStepOperatorFlavor",
    "KaggleStepOperatorSettings",
]
