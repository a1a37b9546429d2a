"""The promotion rule: when does a new model version become production?

A candidate is promoted when its ``gate.metric`` (default: answer accuracy) on the held-out set
is at least ``gate.threshold`` AND it is shown not to be worse than the current production
version by ``margin`` or more (non-inferiority): on the same examples, paired, the lower bound
of the one-sided (1 - ``alpha``) interval of candidate minus production must be above
``-margin``. Right/wrong metrics use the exact McNemar bound; ROUGE a paired bootstrap and BLEU
and chrF a paired bootstrap of the corpus score, both with ``gate.resamples`` (>= 10,000).

"Not significantly worse" (the rule before) promotes whenever the evidence is too thin to see
a loss; non-inferiority holds a version back until the evidence rules the loss out. What the
gate can see at a given held-out size is in docs/evaluation.md (power table; bench/gate_power.py).

When production's metrics have no per-example scores for these examples (a version registered
before they were stored, or evaluated on other data), the comparison falls back to the point
estimates (held back when worse by the margin or more) and the reason says so.
"""

from __future__ import annotations

from steps.core.config import FRACTION_METRICS, GateConfig
from steps.core.evaluate.metrics_document import MetricsDocument, PerExample
from steps.core.evaluate.uncertainty import (
    NonInferiority,
    noninferiority_binary,
    noninferiority_bootstrap,
    noninferiority_corpus,
)
from steps.core.register.registration import GateDecision

LABELS = {"accuracy": "accuracy", "strict_accuracy": "strict accuracy",
          "format_rate": "format rate", "bleu": "BLEU", "chrf": "chrF", "rouge1": "ROUGE-1",
          "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}  # fmt: skip
COLUMNS = {"accuracy": "correct", "strict_accuracy": "strict", "format_rate": "format_ok",
           "rouge1": "rouge1", "rouge2": "rouge2", "rougeL": "rougeL"}  # fmt: skip
BINARY = ("accuracy", "strict_accuracy", "format_rate")


def _fmt(metric: str, value: float, points: bool = False, signed: bool = False) -> str:
    """A value of ``metric`` as text; a difference of fractions in percentage points."""
    sign = "+" if signed else ""
    if metric in FRACTION_METRICS:
        return f"{100 * value:{sign}.1f} {'pp' if points else '%'}".replace("-", "−")
    return f"{value:{sign}.2f}"


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
    candidate: MetricsDocument, production: MetricsDocument, gate: GateConfig
) -> NonInferiority | None:
    """``candidate - production`` on ``gate.metric``, paired by example, with its one-sided
    lower bound; None if the documents cannot be paired.

    Pairing needs both documents' ``per_example`` on the same example ids (and, for BLEU and
    chrF, the answers and the references, which ``metrics.json`` keeps).
    """
    metric = gate.metric
    aligned = _aligned(candidate, production)
    if aligned is None:
        return None
    order, mine, theirs = aligned
    if metric in COLUMNS:
        ours, baseline = getattr(mine, COLUMNS[metric]), getattr(theirs, COLUMNS[metric])
        if ours is None or baseline is None:
            return None
        baseline = [baseline[i] for i in order]
        if metric in BINARY:
            return noninferiority_binary(baseline, ours, gate.alpha)
        return noninferiority_bootstrap(baseline, ours, gate.alpha, gate.resamples)
    references = candidate.per_example.reference if candidate.per_example else None
    if theirs.answer is None or mine.answer is None or not references:
        return None
    baseline_answers = [theirs.answer[i] for i in order]
    return noninferiority_corpus(
        metric, baseline_answers, mine.answer, references, gate.alpha, gate.resamples
    )


def _span(metric: str, interval: list[float] | tuple[float, float] | None) -> str:
    if not interval:
        return ""
    return f"[{_fmt(metric, interval[0])}, {_fmt(metric, interval[1])}]"


def _versus_production(
    candidate: MetricsDocument, production: MetricsDocument, gate: GateConfig,
    value: float, prod_value: float,
) -> dict:  # fmt: skip
    """The comparison with production: non-inferiority when paired, else point estimates."""
    metric, margin = gate.metric, gate.effective_margin
    shown_margin = _fmt(metric, margin, points=True)
    paired = paired_with_production(candidate, production, gate)
    if paired is None:
        worse = value <= prod_value - margin
        how = ("compared unpaired (production's metrics have no per-example scores for these "
               f"examples): {'worse' if worse else 'not worse'} than production's "
               f"{_fmt(metric, prod_value)} by the margin {shown_margin} or more")  # fmt: skip
        return {"promote": not worse, "text": how, "comparison": "unpaired",
                "delta": value - prod_value}  # fmt: skip
    promote = paired.lower_bound > -margin
    level = f"{100 * (1 - gate.alpha):g} %"
    figures = (
        f"candidate − production {_fmt(metric, paired.delta, True, True)}, one-sided {level} "
        f"lower bound {_fmt(metric, paired.lower_bound, True, True)} "
        f"{'>' if promote else '≤'} −{shown_margin} (the margin)"
    )
    if promote:
        how = (f"non-inferior to production ({_fmt(metric, prod_value)}): {figures}; "
               f"{paired.method}")  # fmt: skip
    else:
        how = (
            f"not shown non-inferior to production ({_fmt(metric, prod_value)}): {figures}: "
            f"a loss of {shown_margin} or more cannot be ruled out; {paired.method}"
        )
    examples = None if candidate.per_example is None else len(candidate.per_example.id)
    return {"promote": promote, "text": how, "comparison": "paired", "delta": paired.delta,
            "lower_bound": paired.lower_bound, "method": paired.method,
            "examples": examples}  # fmt: skip


def decide(
    candidate: MetricsDocument, production: MetricsDocument | None, gate: GateConfig
) -> GateDecision:
    """Decide on promotion from the candidate's and production's metrics documents.

    Args:
        candidate: The new version's ``metrics.json`` content.
        production: The current production version's, or None if there is none.
        gate: Metric, threshold, margin and one-sided level.

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
              "margin": gate.effective_margin, "alpha": gate.alpha}  # fmt: skip
    n = f" on {candidate.examples} held-out examples" if candidate.examples else ""
    shown = f"{name} {_fmt(metric, value)} {_span(metric, interval)}".rstrip() + n
    threshold = _fmt(metric, gate.threshold)
    below = value < gate.threshold
    verdict = f"{shown} is below the threshold {threshold}" if below else (
        f"{shown} >= threshold {threshold}"
    )  # fmt: skip
    if production is None or prod_value is None:
        why = ("no production version yet" if production is None
               else f"production's metrics have no {name}: not compared")  # fmt: skip
        return GateDecision(promote=not below, reason=f"{verdict}; {why}", comparison="none",
                            **common)  # fmt: skip
    outcome = _versus_production(candidate, production, gate, value, prod_value)
    text = outcome.pop("text")
    outcome["promote"] = outcome["promote"] and not below
    return GateDecision(reason=f"{verdict}; {text}", **outcome, **common)
