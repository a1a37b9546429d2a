"""The promotion rule: when does a new model version become production?"""

from __future__ import annotations

from pydantic import BaseModel

from steps.core.config import GateConfig


class GateDecision(BaseModel):
    promote: bool
    reason: str
    candidate_bleu: float
    production_bleu: float | None
    threshold: float
    tolerance: float


def decide(candidate_bleu: float, production_bleu: float | None, gate: GateConfig) -> GateDecision:
    """Promote when BLEU >= threshold and BLEU >= production BLEU - tolerance.

    Args:
        candidate_bleu: held-out BLEU of the new version.
        production_bleu: BLEU of the current production version, or None if there is none.
        gate: threshold and tolerance.
    """
    common = {
        "candidate_bleu": candidate_bleu,
        "production_bleu": production_bleu,
        "threshold": gate.bleu_threshold,
        "tolerance": gate.tolerance,
    }
    if candidate_bleu < gate.bleu_threshold:
        reason = f"BLEU {candidate_bleu:.2f} is below the threshold {gate.bleu_threshold:.2f}"
        return GateDecision(promote=False, reason=reason, **common)
    if production_bleu is not None and candidate_bleu < production_bleu - gate.tolerance:
        reason = (
            f"BLEU {candidate_bleu:.2f} is worse than production's {production_bleu:.2f} "
            f"by more than the tolerance {gate.tolerance:.2f}"
        )
        return GateDecision(promote=False, reason=reason, **common)
    versus = (
        "no production version yet"
        if production_bleu is None
        else f"production has {production_bleu:.2f} (tolerance {gate.tolerance:.2f})"
    )
    reason = f"BLEU {candidate_bleu:.2f} >= threshold {gate.bleu_threshold:.2f}; {versus}"
    return GateDecision(promote=True, reason=reason, **common)
