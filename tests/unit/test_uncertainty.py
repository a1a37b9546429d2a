"""95 % intervals and paired tests on constructed data where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from steps.core.evaluate.uncertainty import (
    bootstrap_mean,
    corpus_paired_test,
    paired_bootstrap,
    wilson,
)


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Reference values: Wilson (1927) score interval, z = 1.959964 (e.g. statsmodels
        # proportion_confint(method="wilson"), R's prop.test(correct = FALSE)).
        (8, 50, 0.0834, 0.2851),
        (0, 50, 0.0, 0.0713),
        (50, 50, 0.9287, 1.0),
        (5, 10, 0.2366, 0.7634),
    ],
)
def test_wilson_matches_reference_values(successes: int, n: int, low: float, high: float) -> None:
    assert wilson(successes, n) == pytest.approx((low, high), abs=1e-4)


def test_wilson_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson(6, 5)
    with pytest.raises(ValueError):
        wilson(0, 0)


def test_wilson_covers_the_true_rate_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)
    hits = sum(low <= 0.3 <= high for low, high in (
        wilson(int(rng.binomial(50, 0.3)), 50) for _ in range(2000)
    ))
    assert 0.92 <= hits / 2000 <= 0.98


def test_bootstrap_interval_of_a_mean_is_reproducible_and_sensible() -> None:
    values = [0.0] * 25 + [10.0] * 25  # mean 5, standard error ~0.71
    low, high = bootstrap_mean(values)
    assert low < 5.0 < high
    assert 3.0 < low and high < 7.0
    assert bootstrap_mean(values) == (low, high)  # seeded like sacreBLEU
    assert bootstrap_mean([4.0] * 10) == (4.0, 4.0)


def test_paired_bootstrap_finds_a_clear_gain_and_its_size() -> None:
    base = [1] * 10 + [0] * 40  # 20 %
    tuned = [1] * 35 + [0] * 15  # 70 %, right wherever base was right
    result = paired_bootstrap(base, tuned)
    assert result.delta == pytest.approx(0.5)
    assert result.p_value < 0.01
    low, high = result.interval
    assert low < 0.5 < high and low > 0.3


def test_paired_bootstrap_sees_no_difference_in_identical_or_balanced_systems() -> None:
    same = [1, 0, 1, 1, 0] * 10
    assert paired_bootstrap(same, same).p_value == 1.0
    # Each model right on a different half: equal accuracy, the swaps cancel out.
    half = [1] * 25 + [0] * 25
    result = paired_bootstrap(half, half[::-1])
    assert result.delta == 0.0 and result.p_value > 0.5


def test_paired_bootstrap_is_not_fooled_by_a_small_difference() -> None:
    base = [1] * 20 + [0] * 30
    tuned = [1] * 22 + [0] * 28  # +2 of 50: well within the noise
    assert paired_bootstrap(base, tuned).p_value > 0.1


def test_paired_bootstrap_needs_aligned_inputs() -> None:
    with pytest.raises(ValueError, match="equally long"):
        paired_bootstrap([1, 0], [1])


REFERENCES = ["Qalıq 7 manatdır.", "Sahil şəhəri Bakıdır.", "3 gün sonra cümə olacaq."] * 10


def test_corpus_test_uses_sacrebleu_and_finds_a_better_system() -> None:
    worse = ["7", "Bakı", "bilmirəm"] * 10
    results = corpus_paired_test(worse, REFERENCES, REFERENCES)
    for name in ("bleu", "chrf"):
        result = results[name]
        assert result.candidate == pytest.approx(100.0)
        assert result.baseline < 50.0
        low, high = result.baseline_interval
        assert low <= result.baseline <= high
        assert result.paired.delta > 50 and result.paired.p_value < 0.01
        assert "sacreBLEU" in result.paired.method


def test_corpus_test_on_identical_systems_reports_no_difference() -> None:
    same = ["7", "Bakı", "bilmirəm"] * 10
    result = corpus_paired_test(same, same, REFERENCES)["bleu"]
    assert result.paired.delta == 0.0
    assert result.paired.p_value == 1.0


def test_clopper_pearson_lower_bound_matches_its_definition() -> None:
    from steps.core.evaluate.uncertainty import _binomial_tail, clopper_pearson_lower

    for successes, n in [(1, 1), (5, 10), (30, 60), (59, 60)]:
        p = clopper_pearson_lower(successes, n, 0.05)
        assert _binomial_tail(successes, n, p) == pytest.approx(0.05, abs=1e-6)
    assert clopper_pearson_lower(0, 10, 0.05) == 0.0
    # known value: 5 of 10, one-sided 95 % -> 0.2224 (Beta(0.05; 5, 6))
    assert clopper_pearson_lower(5, 10, 0.05) == pytest.approx(0.2224, abs=1e-4)


def test_mcnemar_bound_and_p_value() -> None:
    from steps.core.evaluate.uncertainty import (
        mcnemar_lower_bound,
        mcnemar_p_value,
        noninferiority_binary,
        paired_mcnemar,
    )

    assert mcnemar_lower_bound(0, 0, 300) == 0.0  # identical answers: exactly no difference
    assert mcnemar_lower_bound(0, 15, 50) == pytest.approx(-0.3)  # every discordant pair lost
    # 30 won, 30 lost of 300: the normal approximation gives about -1.645 * sqrt(60) / 300
    assert mcnemar_lower_bound(30, 30, 300) == pytest.approx(-0.0425, abs=0.005)
    assert mcnemar_p_value(0, 6) == pytest.approx(2 / 64)  # two-sided exact binomial
    assert mcnemar_p_value(3, 3) == 1.0
    base, cand = [True] * 20 + [False] * 30, [False] * 5 + [True] * 25 + [False] * 20
    test = paired_mcnemar(base, cand)
    assert test.delta == pytest.approx(0.1) and test.interval[0] < 0.1 < test.interval[1]
    assert noninferiority_binary(base, cand).lower_bound < 0.1
    with pytest.raises(ValueError, match="equally long"):
        paired_mcnemar([True], [True, False])


def test_holm_adjusts_for_the_number_of_tests() -> None:
    from steps.core.evaluate.uncertainty import holm

    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
    assert holm({"only": 0.02}) == {"only": 0.02}
