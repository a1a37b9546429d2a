"""The promotion rule: threshold first, then non-inferiority to production (paired): the
one-sided lower bound of candidate − production must be above −margin."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from steps.core.config import GateConfig
from steps.core.evaluate.metrics_document import MetricsDocument
from steps.core.evaluate.uncertainty import wilson
from steps.core.register import quality_gate
from steps.core.register.registration import GateDecision

N = 50
IDS = [f"az-{i:04d}" for i in range(N)]
REFERENCES = [f"Cavab {i} manatdır." for i in range(N)]
ACCURACY = GateConfig(metric="accuracy", threshold=0.5)


def decide(candidate: dict, production: dict | None, gate: GateConfig) -> GateDecision:
    """The gate on documents as ``metrics.json`` files hold them (production's may be from an
    earlier version of the pipeline, with sections missing)."""
    return quality_gate.decide(
        MetricsDocument.model_validate(candidate),
        None if production is None else MetricsDocument.model_validate(production),
        gate,
    )


def _doc(right: int, bleu: float = 30.0, ids: list[str] = IDS, per_example: bool = True,
         first_right: int = 0, n: int = N) -> dict:
    """A metrics document whose tuned model answers examples first_right..first_right+right-1
    right (and echoes the reference there, garbage elsewhere)."""
    correct = [first_right <= i < first_right + right for i in range(n)]
    references = [f"Cavab {i} manatdır." for i in range(n)]
    doc = {
        "examples": n,
        "tuned": {"accuracy": right / n, "bleu": bleu},
        "intervals": {"tuned": {"accuracy": list(wilson(right, n))}},
    }
    if per_example:
        doc["per_example"] = {
            "id": ids if n == N else [f"az-{i:04d}" for i in range(n)],
            "reference": references,
            "tuned": {
                "correct": correct,
                "answer": [
                    r if ok else "bilmirəm" for r, ok in zip(references, correct, strict=True)
                ],
            },
        }
    return doc


def test_promotes_on_a_clear_gain_over_production() -> None:
    decision = decide(_doc(40), _doc(20), ACCURACY)

    assert decision.promote
    assert decision.comparison == "paired"
    assert decision.delta == pytest.approx(0.4)
    assert decision.lower_bound > 0.2
    assert "accuracy 80.0 % [" in decision.reason and "on 50 held-out examples" in decision.reason
    assert "non-inferior to production (40.0 %)" in decision.reason
    assert "exact McNemar bound, 50 paired examples (20 won, 0 lost)" in decision.reason
    assert "> −5.0 pp (the margin)" in decision.reason


def test_holds_a_clear_loss_against_production() -> None:
    decision = decide(_doc(30), _doc(45), ACCURACY)

    assert not decision.promote
    assert decision.comparison == "paired"
    assert decision.delta == pytest.approx(-0.3)
    assert decision.lower_bound <= -0.3
    assert "not shown non-inferior to production" in decision.reason
    assert "a loss of 5.0 pp or more cannot be ruled out" in decision.reason


@pytest.mark.parametrize(("n", "promote"), [(50, False), (300, True)])
def test_equal_accuracy_with_churn_is_promoted_only_with_enough_evidence(
    n: int, promote: bool
) -> None:
    # Same accuracy, but the candidate gets a different 20 % of the examples right: at 50
    # examples a loss of 5 points cannot be ruled out, at 300 it can.
    right, churn = 3 * n // 5, n // 10
    decision = decide(_doc(right, n=n, first_right=churn), _doc(right, n=n), ACCURACY)

    assert decision.delta == 0.0
    assert decision.promote is promote
    assert (decision.lower_bound > -0.05) is promote


def test_the_margin_is_configurable() -> None:
    churned, production = _doc(28, first_right=10), _doc(30)  # -4 points, 18 discordant of 50
    assert not decide(churned, production, ACCURACY).promote
    wide = GateConfig(metric="accuracy", threshold=0.5, margin=0.25)
    decision = decide(churned, production, wide)
    assert decision.promote and decision.margin == 0.25
    assert "> −25.0 pp (the margin)" in decision.reason


def test_a_legacy_tolerance_is_the_margin() -> None:
    tolerant = GateConfig(metric="accuracy", threshold=0.5, tolerance=0.2)
    assert tolerant.effective_margin == 0.2
    assert decide(_doc(38), _doc(45), tolerant).promote  # -14 points, bound above -20
    assert not decide(_doc(30), _doc(45), tolerant).promote  # -30 points


def test_pairs_by_example_id_whatever_the_order() -> None:
    production = _doc(20)
    order = list(reversed(range(N)))
    production["per_example"] = {
        "id": [IDS[i] for i in order],
        "reference": [REFERENCES[i] for i in order],
        "tuned": {k: [v[i] for i in order] for k, v in production["per_example"]["tuned"].items()},
    }
    decision = decide(_doc(20), production, ACCURACY.model_copy(update={"threshold": 0.0}))
    assert decision.comparison == "paired" and decision.promote
    assert decision.delta == 0.0 and decision.lower_bound == 0.0


def test_below_the_threshold_holds_even_when_better_than_production() -> None:
    decision = decide(_doc(20), _doc(5), ACCURACY)

    assert not decision.promote
    assert "accuracy 40.0 % [" in decision.reason
    assert "is below the threshold 50.0 %" in decision.reason


def test_below_the_threshold_still_reports_the_comparison_with_production() -> None:
    decision = decide(_doc(20), _doc(20), ACCURACY)  # same answers as production, both 40 %

    assert not decision.promote and decision.comparison == "paired"
    assert decision.lower_bound == 0.0
    assert "is below the threshold 50.0 %; non-inferior to production (40.0 %)" in decision.reason


def test_no_production_version_promotes() -> None:
    decision = decide(_doc(30), None, ACCURACY)

    assert decision.promote and decision.comparison == "none"
    assert "no production version yet" in decision.reason
    assert decision.production is None


@pytest.mark.parametrize(
    "production",
    [_doc(45, per_example=False), _doc(45, ids=[f"other-{i}" for i in range(N)])],
    ids=["no per-example scores", "other examples"],
)
def test_falls_back_to_an_unpaired_comparison_and_says_so(production: dict) -> None:
    worse = decide(_doc(30), production, ACCURACY)
    assert not worse.promote and worse.comparison == "unpaired"
    assert "compared unpaired" in worse.reason
    assert "worse than production's 90.0 %" in worse.reason

    better = decide(_doc(48), production, ACCURACY)
    assert better.promote and "compared unpaired" in better.reason


def test_a_production_version_without_the_metric_is_not_compared() -> None:
    legacy = {"tuned": {"bleu": 40.0}}
    decision = decide(_doc(30), legacy, ACCURACY)
    assert decision.promote
    assert "production's metrics have no accuracy" in decision.reason


def test_a_legacy_bleu_config_still_gates_on_bleu() -> None:
    legacy = GateConfig(bleu_threshold=20.0)  # the first config format
    assert (legacy.metric, legacy.threshold, legacy.tolerance) == ("bleu", 20.0, 0.5)

    # BLEU decides, whatever the accuracy says.
    held = decide(_doc(50, bleu=19.99), None, legacy)
    assert not held.promote
    assert held.reason.startswith("BLEU 19.99 on 50 held-out examples is below the threshold 20")
    passed = decide(_doc(0, bleu=25.0), None, legacy)
    assert passed.promote and passed.reason.startswith("BLEU 25.00 on 50 held-out examples >= ")


def test_a_legacy_bleu_gate_pairs_with_production_through_sacrebleu() -> None:
    legacy = GateConfig(bleu_threshold=0.0, tolerance=0.5)
    good, bad = _doc(45, bleu=80.0), _doc(10, bleu=25.0)

    held = decide(bad, good, legacy)
    assert not held.promote and held.comparison == "paired"
    assert "paired bootstrap bound of corpus bleu, 10000 resamples" in held.reason
    assert held.delta < -0.5 and held.lower_bound < held.delta

    assert decide(good, bad, legacy).promote


def test_a_legacy_bleu_gate_against_a_legacy_production_uses_the_tolerance() -> None:
    legacy = GateConfig(bleu_threshold=20.0, tolerance=0.5)
    production = {"tuned": {"bleu": 25.6}}

    assert not decide(_doc(0, bleu=25.0), production, legacy).promote
    held = decide(_doc(0, bleu=25.0), production, legacy)
    assert "worse than production's 25.60 by the margin 0.50 or more" in held.reason
    assert decide(_doc(0, bleu=25.2), production, legacy).promote


def test_decision_records_its_inputs() -> None:
    decision = decide(_doc(40), _doc(20), ACCURACY)

    assert (decision.metric, decision.candidate, decision.production) == ("accuracy", 0.8, 0.4)
    assert (decision.threshold, decision.margin, decision.alpha) == (0.5, 0.05, 0.05)
    assert decision.candidate_interval == pytest.approx(list(wilson(40, N)))
    assert decision.examples == N and decision.method.startswith("exact McNemar bound")
    assert 0.0 < decision.lower_bound < decision.delta == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({"threshold": 60}, "out of range for accuracy"),
        ({"metric": "bleu", "threshold": 101}, "out of range for bleu"),
        ({"bleu_threshold": 5, "threshold": 5}, "either bleu_threshold or metric"),
        ({"bleu_threshold": 5, "metric": "accuracy"}, "either bleu_threshold or metric"),
        ({"metric": "perplexity", "threshold": 1}, "Input should be"),
        ({}, "threshold"),
        ({"threshold": 0.5, "margin": 5}, "out of range for accuracy"),
        ({"threshold": 0.5, "resamples": 1000}, "greater than or equal to 10000"),
        ({"threshold": 0.5, "margin": 0}, "greater than 0"),
    ],
)
def test_bad_gate_configs_are_rejected(gate: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GateConfig(**gate)


def test_new_gate_defaults() -> None:
    gate = GateConfig(threshold=0.6)
    assert (gate.metric, gate.effective_margin, gate.alpha) == ("accuracy", 0.05, 0.05)
    assert gate.resamples == 10_000
    assert GateConfig(metric="bleu", threshold=10).effective_margin == 5.0
