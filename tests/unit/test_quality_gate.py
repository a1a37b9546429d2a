"""The promotion rule: threshold first, then not worse than production beyond the tolerance."""

from __future__ import annotations

import pytest

from steps.core.config import GateConfig
from steps.core.quality_gate import decide

GATE = GateConfig(bleu_threshold=20.0, tolerance=0.5)


def test_below_threshold_holds() -> None:
    decision = decide(19.99, None, GATE)

    assert not decision.promote
    assert "below the threshold" in decision.reason
    assert "19.99" in decision.reason
    assert "20.00" in decision.reason


def test_below_threshold_holds_even_when_better_than_production() -> None:
    decision = decide(15.0, 10.0, GATE)

    assert not decision.promote
    assert "threshold" in decision.reason


def test_no_production_promotes() -> None:
    decision = decide(20.0, None, GATE)

    assert decision.promote
    assert "no production version" in decision.reason
    assert "20.00" in decision.reason
    assert decision.production_bleu is None


def test_worse_than_production_beyond_tolerance_holds() -> None:
    decision = decide(25.0, 25.6, GATE)

    assert not decision.promote
    assert "worse than production" in decision.reason
    for number in ("25.00", "25.60", "0.50"):
        assert number in decision.reason


@pytest.mark.parametrize("candidate", [25.1, 25.5, 26.0, 30.0])
def test_within_tolerance_or_better_promotes(candidate: float) -> None:
    decision = decide(candidate, 25.6, GATE)

    assert decision.promote
    assert "production has 25.60" in decision.reason
    assert "tolerance 0.50" in decision.reason
    assert f"{candidate:.2f}" in decision.reason


def test_zero_tolerance_holds_any_regression() -> None:
    gate = GateConfig(bleu_threshold=0.0, tolerance=0.0)

    assert decide(10.0, 10.0, gate).promote
    assert not decide(9.99, 10.0, gate).promote


def test_decision_records_its_inputs() -> None:
    decision = decide(21.0, 22.0, GATE)

    assert (decision.candidate_bleu, decision.production_bleu) == (21.0, 22.0)
    assert (decision.threshold, decision.tolerance) == (20.0, 0.5)
