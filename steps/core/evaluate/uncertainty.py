"""95 % intervals and paired tests for figures measured on a few dozen held-out examples.

- A proportion (answer accuracy, format rate) gets a Wilson score interval.
- A mean of per-example values (ROUGE, output length) gets a percentile bootstrap interval.
- BLEU and chrF are corpus-level, so their intervals and paired tests come from sacreBLEU's
  own paired bootstrap (:class:`sacrebleu.significance.PairedTest`, ``test_type="bs"``), which
  resamples sentence statistics and reports the bootstrap mean ± half the 95 % percentile range.
- Two systems on the same examples (tuned vs base, candidate vs production) are compared with a
  paired bootstrap: the same resampled example indices for both. The two-sided p-value is the
  share of resampled differences at least as far from the observed difference as the observed
  difference is from zero (the shift method; +1 smoothed like sacreBLEU's).

Resampling uses sacreBLEU's defaults, 1000 resamples and seed 12345 (``SACREBLEU_SEED``), and
draws the indices the same way, so every figure is reproducible run to run.

Right/wrong figures compared paired (answer accuracy, tuned vs base, per family, candidate vs
production) use the exact McNemar test instead: the p-value of the discordant pairs and its
inversion, an exact interval of the difference conditional on them. The quality gate's
non-inferiority bound (:func:`noninferiority_binary`; :func:`noninferiority_bootstrap` and
:func:`noninferiority_corpus` with 10,000 paired resamples for the other metrics) is the lower
end of a one-sided interval; :func:`holm` adjusts the per-family p-values for their number.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

CONFIDENCE = 0.95
RESAMPLES = 1000
Interval = tuple[float, float]


def seed() -> int:
    """The resampling seed: sacreBLEU's (``SACREBLEU_SEED``, default 12345)."""
    value = os.environ.get("SACREBLEU_SEED", "12345")
    return 12345 if value.lower() == "none" else int(value)


class Paired(BaseModel):
    """One paired comparison: ``candidate - baseline`` on the same examples."""

    delta: float
    p_value: float
    interval: Interval | None = None  # of the delta; None where the test gives none (BLEU, chrF)
    method: str


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval of a proportion ``successes / n``.

    Raises:
        ValueError: ``n`` is not positive or ``successes`` is outside ``[0, n]``.
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes}/{n}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return max(0.0, centre - half), min(1.0, centre + half)


def _indices(n: int, resamples: int) -> np.ndarray:
    return np.random.default_rng(seed()).choice(n, size=(resamples, n), replace=True)


def _percentiles(values: np.ndarray, confidence: float) -> Interval:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean(
    values: Sequence[float], resamples: int = RESAMPLES, confidence: float = CONFIDENCE
) -> Interval:
    """Percentile bootstrap interval of the mean of per-example ``values``."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values to resample")
    return _percentiles(data[_indices(data.size, resamples)].mean(axis=1), confidence)


def paired_bootstrap(
    baseline: Sequence[float],
    candidate: Sequence[float],
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
) -> Paired:
    """Paired bootstrap of ``mean(candidate) - mean(baseline)`` over the same examples.

    Raises:
        ValueError: The sequences are empty or differ in length.
    """
    a, b = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    if a.size == 0 or a.shape != b.shape:
        raise ValueError(f"need two equally long, non-empty sequences, got {a.size} and {b.size}")
    observed = float((b - a).mean())
    deltas = (b - a)[_indices(a.size, resamples)].mean(axis=1)
    extreme = int(np.sum(np.abs(deltas - observed) >= abs(observed) - 1e-12))
    return Paired(
        delta=observed,
        p_value=min(1.0, (extreme + 1) / (resamples + 1)),
        interval=_percentiles(deltas, confidence),
        method=f"paired bootstrap, {resamples} resamples",
    )


class CorpusComparison(BaseModel):
    """sacreBLEU's paired bootstrap for one corpus metric: both systems' intervals and the test."""

    baseline: float
    candidate: float
    baseline_interval: Interval
    candidate_interval: Interval
    paired: Paired


def corpus_paired_test(
    baseline: Sequence[str],
    candidate: Sequence[str],
    references: Sequence[str],
    resamples: int = RESAMPLES,
) -> dict[str, CorpusComparison]:
    """BLEU (13a) and chrF of two systems, with intervals and sacreBLEU's paired bootstrap test.

    Returns:
        ``{"bleu": ..., "chrf": ...}``; scores on sacreBLEU's 0-100 scale.
    """
    metrics = {"bleu": BLEU(tokenize="13a"), "chrf": CHRF()}
    test = PairedTest(
        [("baseline", list(baseline)), ("candidate", list(candidate))],
        metrics=metrics,
        references=[list(references)],
        test_type="bs",
        n_samples=resamples,
    )
    _, results = test()
    out = {}
    for key, name in zip(metrics, [k for k in results if k != "System"], strict=True):
        base, cand = results[name]
        out[key] = CorpusComparison(
            baseline=base.score,
            candidate=cand.score,
            baseline_interval=_around(base.mean, base.ci),
            candidate_interval=_around(cand.mean, cand.ci),
            paired=Paired(
                delta=cand.score - base.score,
                # sacreBLEU gives a zero difference p = 1/(resamples + 1) on purpose (it counts
                # resamples *above* it); reported here as no evidence of a difference.
                p_value=1.0 if cand.score == base.score else float(cand.p_value),
                method=f"sacreBLEU paired bootstrap, {resamples} resamples",
            ),
        )
    return out


def _around(mean: float | None, half_width: float | None) -> Interval:
    if mean is None or half_width is None:
        return (float("nan"), float("nan"))
    return max(0.0, float(mean - half_width)), float(mean + half_width)


# ------------------------------------------------------------- paired proportions, non-inferiority


def _binomial_tail(successes: int, n: int, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(n, p)."""
    if successes <= 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    logs = [
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        + k * math.log(p) + (n - k) * math.log1p(-p)
        for k in range(successes, n + 1)
    ]  # fmt: skip
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


@lru_cache(maxsize=65536)
def clopper_pearson_lower(successes: int, n: int, alpha: float) -> float:
    """One-sided exact (Clopper-Pearson) lower bound of a proportion: the p at which
    P(X >= successes) = alpha (0 when there is no success)."""
    if successes == 0:
        return 0.0
    low, high = 0.0, 1.0
    for _ in range(60):  # bisection: P(X >= s) grows with p
        mid = (low + high) / 2
        if _binomial_tail(successes, n, mid) < alpha:
            low = mid
        else:
            high = mid
    return low


def _discordant(baseline: Sequence[bool], candidate: Sequence[bool]) -> tuple[int, int, int]:
    """``(won, lost, n)``: examples only the candidate gets right, only the baseline does, all."""
    if len(baseline) == 0 or len(baseline) != len(candidate):
        raise ValueError(f"need two equally long, non-empty sequences, got {len(baseline)} and "
                         f"{len(candidate)}")  # fmt: skip
    won = sum(bool(c) and not bool(b) for b, c in zip(baseline, candidate, strict=True))
    lost = sum(bool(b) and not bool(c) for b, c in zip(baseline, candidate, strict=True))
    return won, lost, len(baseline)


def mcnemar_lower_bound(won: int, lost: int, n: int, alpha: float = 0.05) -> float:
    """Exact one-sided (1 - alpha) lower bound of the paired difference of two proportions.

    Conditional on the ``won + lost`` discordant pairs, ``won`` is Binomial(m, π) and the
    difference is ``(m / n)(2π − 1)``; the bound puts π at its one-sided Clopper-Pearson lower
    bound (the exact McNemar test inverted). No discordant pair: the difference is exactly 0.
    """
    m = won + lost
    if m == 0:
        return 0.0
    return (m / n) * (2 * clopper_pearson_lower(won, m, alpha) - 1)


def mcnemar_p_value(won: int, lost: int) -> float:
    """Two-sided exact McNemar p-value (binomial test of the discordant pairs at 1/2)."""
    m = won + lost
    if m == 0:
        return 1.0
    return min(1.0, 2 * _binomial_tail(max(won, lost), m, 0.5))


def paired_mcnemar(
    baseline: Sequence[bool], candidate: Sequence[bool], confidence: float = CONFIDENCE
) -> Paired:
    """``mean(candidate) - mean(baseline)`` of right/wrong on the same examples: exact McNemar
    p-value and the exact two-sided interval (each side at (1 - confidence) / 2)."""
    won, lost, n = _discordant(baseline, candidate)
    tail = (1 - confidence) / 2
    low = mcnemar_lower_bound(won, lost, n, tail)
    high = 0.0 - mcnemar_lower_bound(lost, won, n, tail)  # 0.0 - x: never -0.0
    return Paired(
        delta=(won - lost) / n,
        p_value=mcnemar_p_value(won, lost),
        interval=(low, high),
        method=f"exact McNemar ({won} won, {lost} lost of {n})",
    )


class NonInferiority(BaseModel):
    """Candidate minus baseline on the same examples, with its one-sided lower bound."""

    delta: float
    lower_bound: float  # of the one-sided (1 - alpha) interval
    alpha: float
    method: str
    won: int | None = None
    lost: int | None = None


def noninferiority_binary(
    baseline: Sequence[bool], candidate: Sequence[bool], alpha: float = 0.05
) -> NonInferiority:
    """Exact McNemar-based one-sided lower bound of ``candidate - baseline`` (right/wrong)."""
    won, lost, n = _discordant(baseline, candidate)
    return NonInferiority(
        delta=(won - lost) / n, lower_bound=mcnemar_lower_bound(won, lost, n, alpha), alpha=alpha,
        method=f"exact McNemar bound, {n} paired examples ({won} won, {lost} lost)",
        won=won, lost=lost,
    )  # fmt: skip


def noninferiority_bootstrap(
    baseline: Sequence[float], candidate: Sequence[float], alpha: float = 0.05,
    resamples: int = 10_000,
) -> NonInferiority:  # fmt: skip
    """Paired percentile-bootstrap one-sided lower bound of ``mean(candidate - baseline)``."""
    a, b = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    if a.size == 0 or a.shape != b.shape:
        raise ValueError(f"need two equally long, non-empty sequences, got {a.size} and {b.size}")
    deltas = (b - a)[_indices(a.size, resamples)].mean(axis=1)
    return NonInferiority(
        delta=float((b - a).mean()), lower_bound=float(np.percentile(deltas, 100 * alpha)),
        alpha=alpha, method=f"paired bootstrap bound, {resamples} resamples of {a.size} examples",
    )  # fmt: skip


def noninferiority_corpus(
    metric: str, baseline: Sequence[str], candidate: Sequence[str], references: Sequence[str],
    alpha: float = 0.05, resamples: int = 10_000,
) -> NonInferiority:  # fmt: skip
    """BLEU or chrF: paired bootstrap of the corpus score difference from sacreBLEU's sentence
    statistics (the same resampled sentences for both systems)."""
    scorer = BLEU(tokenize="13a") if metric == "bleu" else CHRF()
    refs = [list(references)]
    stats = [np.asarray(scorer._extract_corpus_statistics(list(h), refs), dtype=float)
             for h in (baseline, candidate)]  # fmt: skip
    scores = [scorer._compute_score_from_stats(list(s.sum(axis=0))).score for s in stats]
    deltas = [
        scorer._compute_score_from_stats(list(stats[1][idx].sum(axis=0))).score
        - scorer._compute_score_from_stats(list(stats[0][idx].sum(axis=0))).score
        for idx in _indices(len(refs[0]), resamples)
    ]
    return NonInferiority(
        delta=scores[1] - scores[0], lower_bound=float(np.percentile(deltas, 100 * alpha)),
        alpha=alpha, method=f"paired bootstrap bound of corpus {metric}, {resamples} resamples",
    )  # fmt: skip


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values (family-wise error over all the tests given)."""
    order = sorted(p_values, key=p_values.get)
    adjusted, running = {}, 0.0
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[key]))
        adjusted[key] = running
    return adjusted
