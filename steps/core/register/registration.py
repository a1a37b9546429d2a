"""What the register step hands to package and to the command line: :class:`Registration`.

It carries the quality gate's decision (:class:`GateDecision`), the metrics document the
decision rests on and, when the stack has a model registry, where the version is kept
(:class:`RegisteredVersion`). ZenML stores it as an artifact with its pydantic materializer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from steps.core.evaluate.metrics_document import MetricsDocument


class GateDecision(BaseModel):
    """The quality gate's decision, its reason and the figures it rests on."""

    promote: bool
    reason: str
    metric: str
    candidate: float
    candidate_interval: list[float] | None = None
    production: float | None
    threshold: float
    margin: float | None = Field(None, description="the loss the gate must rule out")
    tolerance: float | None = None  # decisions before non-inferiority
    alpha: float
    comparison: str = Field(description="paired, unpaired, or none (not compared)")
    delta: float | None = None
    lower_bound: float | None = Field(
        None, description="one-sided (1 - alpha) lower bound of candidate - production"
    )
    method: str | None = None
    examples: int | None = Field(None, description="paired examples compared")
    delta_interval: list[float] | None = None
    p_value: float | None = None


class RegisteredVersion(BaseModel):
    """Where the stack's model registry keeps a registered version."""

    repo_id: str = Field(description="the registered model on the registry (Hub: owner/name)")
    version_tag: str = Field(description="the registry's version (Hub: the tag vX.Y)")
    revision: str | None = Field(None, description="the version's commit sha (Hub)")
    url: str = Field(description="where to see it")


class Registration(BaseModel):
    """What the register step decided and recorded about one new model version."""

    model: str = Field(description="ZenML Model name")
    version: str = Field(description="ZenML Model version number")
    gate: GateDecision
    metrics: MetricsDocument
    hub: RegisteredVersion | None = Field(
        None, description="the version on the stack's model registry; None without one"
    )

    def metadata(self) -> dict[str, Any]:
        """What the register step records on its run (the ZenML Model version adds the
        metrics and the data hash)."""
        out: dict[str, Any] = {"gate": self.gate.model_dump(mode="json")}
        return out | ({"hub": self.hub.model_dump(mode="json")} if self.hub else {})

    def model_version_metadata(self) -> dict[str, Any]:
        """What the ZenML Model version records: metrics (without texts), data hash, gate,
        and where the registry keeps the version."""
        metrics = self.metrics.without_texts().to_json()
        return {"metrics": metrics, "data_hash": self.metrics.data_hash} | self.metadata()
