"""The promotion rule: when does a new model version become production?

A candidate is promoted when its ``gate.metric`` (default: answer accuracy) on the held-out set
is at least ``gate.threshold`` and it is not significantly worse than the current production
version. "Significantly worse" is decided on the same examples, paired: held back when the
candidate loses more than ``gate.tolerance`` and a paired bootstrap gives p < ``gate.alpha``
(sacreBLEU's paired bootstrap for BLEU and chrF). When production's metrics have no per-example
scores for those examples (a version registered before they were stored, or evaluated on other
data), the comparison falls back to the point estimates (held back when worse by more than the
tolerance) and the reason says so.
"""

from __future__ import annotations

from steps.core.config import FRACTION_METRICS, GateConfig
from steps.core.documents import GateDecision, MetricsDocument, PerExample
from steps.core.uncertainty import Paired, corpus_paired_test, paired_bootstrap

LABELS = {"accuracy": "accuracy", "format_rate": "format rate", "bleu": "BLEU", "chrf": "chrF",
          "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
COLUMNS = {"accuracy": "correct", "format_rate": "format_ok", "rouge1": "rouge1",
           "rouge2": "rouge2", "rougeL": "rougeL"}


def _fmt(metric: str, value: float, points: bool = False) -> str:
    """A value of ``metric`` as text; a difference of fractions in percentage points."""
    if metric in FRACTION_METRICS:
        return f"{100 * value:.1f} {'pp' if points else '%'}"
    return f"{value:.2f}"


def _aligned(
    candidate: MetricsDocument, production: MetricsDocument
) -> tuple[list[int], PerExample, PerExample] | None:
    """Indices of production's examples in the candidate's order and both sides' per-example
    scores, or None if the examples differ."""
    mine, theirs = candidate.per_example, production.per_example
    if mine is None or theirs is None or sorted(mine.id) != sorted(theirs.id):
        return None
    where = {example_id: i for i, example_id in enumerate(theirs.id)}
    return [where[example_id] for example_id in mine.id], mine.tuned, theirs.tuned


def paired_with_production(
    metric: str, candidate: MetricsDocument, production: MetricsDocument
) -> Paired | None:
    """``candidate - production`` on ``metric``, paired by example; None if not possible.

    Pairing needs both documents' ``per_example`` on the same example ids (and, for BLEU and
    chrF, the answers and the references, which ``metrics.json`` keeps).
    """
    aligned = _aligned(candidate, production)
    if aligned is None:
        return None
    order, mine, theirs = aligned
    if metric in COLUMNS:
        column = COLUMNS[metric]
        ours, baseline = getattr(mine, column), getattr(theirs, column)
        if ours is None or baseline is None:
            return None
        return paired_bootstrap([baseline[i] for i in order], ours)
    references = candidate.per_example.reference if candidate.per_example else None
    if theirs.answer is None or mine.answer is None or not references:
        return None
    tests = corpus_paired_test([theirs.answer[i] for i in order], mine.answer, references)
    return tests[metric].paired


def _span(metric: str, interval: list[float] | tuple[float, float] | None, points=False) -> str:
    if not interval:
        return ""
    return f"[{_fmt(metric, interval[0], points)}, {_fmt(metric, interval[1], points)}]"


def _versus_production(
    candidate: MetricsDocument,
    production: MetricsDocument,
    gate: GateConfig,
    value: float,
    prod_value: float,
) -> dict:
    """The comparison with production: paired when possible, else on point estimates."""
    metric, tolerance = gate.metric, _fmt(gate.metric, gate.tolerance, points=True)
    paired = paired_with_production(metric, candidate, production)
    if paired is None:
        worse = value < prod_value - gate.tolerance
        how = ("compared unpaired (production's metrics have no per-example scores for these "
               f"examples): {'worse' if worse else 'not worse'} than production's "
               f"{_fmt(metric, prod_value)} by more than the tolerance {tolerance}")
        return {"promote": not worse, "text": how, "comparison": "unpaired",
                "delta": value - prod_value}
    worse = paired.delta < -gate.tolerance and paired.p_value < gate.alpha
    sign = "+" if paired.delta >= 0 else "-"
    spread = f", 95 % CI {_span(metric, paired.interval, True)}" if paired.interval else ""
    verdict = (f"significantly worse than production (loss > tolerance {tolerance}, "
               f"p < {gate.alpha:g})" if worse else "not significantly worse than production")
    how = (f"{verdict}; paired difference vs production's {_fmt(metric, prod_value)}: "
           f"{sign}{_fmt(metric, abs(paired.delta), True)}{spread}, "
           f"p = {paired.p_value:.3f} ({paired.method})")
    return {"promote": not worse, "text": how, "comparison": "paired", "delta": paired.delta,
            "p_value": paired.p_value,
            "delta_interval": None if paired.interval is None else list(paired.interval)}


def decide(
    candidate: MetricsDocument, production: MetricsDocument | None, gate: GateConfig
) -> GateDecision:
    """Decide on promotion from the candidate's and production's metrics documents.

    Args:
        candidate: The new version's ``metrics.json`` content.
        production: The current production version's, or None if there is none.
        gate: Metric, threshold, tolerance and significance level.

    Raises:
        ValueError: the candidate's document has no value for the gate's metric.
    """
    metric, name = gate.metric, LABELS[gate.metric]
    value = candidate.tuned.get(metric)
    if value is None:
        raise ValueError(f"the candidate's metrics document has no tuned {metric} to gate on")
    interval = candidate.intervals.tuned.get(metric)
    interval = None if interval is None else list(interval)
    prod_value = None if production is None else production.tuned.get(metric)
    common = {"metric": metric, "candidate": value, "candidate_interval": interval,
              "production": prod_value, "threshold": gate.threshold,
              "tolerance": gate.tolerance, "alpha": gate.alpha}
    shown = f"{name} {_fmt(metric, value)} {_span(metric, interval)}".rstrip()
    threshold = _fmt(metric, gate.threshold)
    if value < gate.threshold:
        reason = f"{shown} is below the threshold {threshold}"
        return GateDecision(promote=False, reason=reason, comparison="none", **common)
    passed = f"{shown} >= threshold {threshold}"
    if production is None or prod_value is None:
        why = ("no production version yet" if production is None
               else f"production's metrics have no {name}: not compared")
        return GateDecision(promote=True, reason=f"{passed}; {why}", comparison="none", **common)
    outcome = _versus_production(candidate, production, gate, value, prod_value)
    text = outcome.pop("text")
    reason = f"{passed}; {text}" if outcome["promote"] else f"{shown}: {text}"
    return GateDecision(reason=reason, **outcome, **common)
