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
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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
