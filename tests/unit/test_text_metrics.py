"""Offline Azerbaijani metrics: tokenization, hand-computed ROUGE, sacreBLEU cross-checks."""

from __future__ import annotations

import socket
from pathlib import Path

import evaluate
import evaluate.config
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from steps.core.evaluate.text_metrics import (
    AzRouge,
    ChrF,
    SacreBleu,
    Scores,
    az_tokenize,
    score_predictions,
)

AZ_PREDICTIONS = [
    "Xəstəliyin əsas əlamətləri yüksək qızdırma və öskürəkdir.",
    "Bakı Azərbaycanın paytaxtı və ən böyük şəhəridir.",
    "Çay hər gün səhər içilir.",
]
AZ_REFERENCES = [
    "Xəstəliyin əsas əlamətləri yüksək qızdırma, öskürək və ümumi zəiflikdir.",
    "Bakı Azərbaycanın paytaxtı və ən böyük şəhəridir.",
    "Çay adətən hər gün səhər və axşam içilir.",
]


@pytest.fixture(autouse=True)
def metrics_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point evaluate's default metrics cache (read at import time) at a tmp dir."""
    cache = tmp_path / "hf_metrics"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(evaluate.config, "HF_METRICS_CACHE", cache)
    return cache


def rouge(prediction: str, reference: str) -> dict[str, float]:
    return AzRouge().compute(predictions=[prediction], references=[reference])


# --- az_tokenize ----------------------------------------------------------------------------


def test_az_tokenize_keeps_azerbaijani_letters_inside_words() -> None:
    assert az_tokenize("Xəstəliyin əsas əlamətləri yüksək qızdırma") == [
        "xəstəliyin",
        "əsas",
        "əlamətləri",
        "yüksək",
        "qızdırma",
    ]


def test_az_tokenize_splits_on_punctuation() -> None:
    assert az_tokenize("Çay, şəkər; göz-qaş!") == ["çay", "şəkər", "göz", "qaş"]


def test_az_tokenize_dotted_capital_i() -> None:
    assert az_tokenize("İstilik") == az_tokenize("istilik") == ["istilik"]


def test_az_tokenize_dotless_capital_i() -> None:
    assert az_tokenize("IŞIQ") == ["ışıq"]
    assert az_tokenize("ƏĞIÖÜÇŞ") == ["əğıöüçş"]


# --- ROUGE --------------------------------------------------------------------------------------


def test_default_rouge_tokenizer_trap() -> None:
    """rouge_score's ASCII tokenizer turns 'səs çəkdi' into ['s', 's', 'kdi']: false overlap."""
    default = rouge_scorer.RougeScorer(["rouge1"]).score("süs çökdü", "səs çəkdi")
    assert default["rouge1"].fmeasure == pytest.approx(2 / 3)

    assert rouge("səs çəkdi", "süs çökdü") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_rouge_ignores_turkic_case() -> None:
    scores = score_predictions(["İstilik artdı"], ["istilik artdı"])
    assert (scores.rouge1, scores.rouge2, scores.rougeL) == (100.0, 100.0, 100.0)


def test_rouge_partial_overlap_by_hand() -> None:
    # prediction: bakı gözəl şəhərdir (3 tokens), reference: bakı çox gözəl şəhərdir (4 tokens)
    # rouge1: 3 shared unigrams -> P = 3/3, R = 3/4, F = 2PR/(P+R) = 6/7
    # rouge2: prediction bigrams {bakı gözəl, gözəl şəhərdir}, reference bigrams
    #         {bakı çox, çox gözəl, gözəl şəhərdir}; 1 shared -> P = 1/2, R = 1/3, F = 2/5
    # rougeL: LCS = bakı gözəl şəhərdir (3) -> P = 3/3, R = 3/4, F = 6/7
    scores = rouge("bakı gözəl şəhərdir", "bakı çox gözəl şəhərdir")
    assert scores["rouge1"] == pytest.approx(6 / 7)
    assert scores["rouge2"] == pytest.approx(2 / 5)
    assert scores["rougeL"] == pytest.approx(6 / 7)


def test_rouge_l_follows_word_order() -> None:
    # Same bag of words, different order: rouge1 = 1; no shared bigram; LCS = 2 of 3 -> F = 2/3.
    scores = rouge("gözəl bakı şəhərdir", "bakı gözəl şəhərdir")
    assert scores["rouge1"] == pytest.approx(1.0)
    assert scores["rouge2"] == pytest.approx(0.0)
    assert scores["rougeL"] == pytest.approx(2 / 3)


def test_rouge_averages_f_over_examples() -> None:
    result = AzRouge().compute(
        predictions=["bakı gözəl şəhərdir", "səs çəkdi"],
        references=["bakı çox gözəl şəhərdir", "səs çəkdi"],
    )
    assert result["rouge1"] == pytest.approx((6 / 7 + 1) / 2)
    assert result["rouge2"] == pytest.approx((2 / 5 + 1) / 2)


# --- sacreBLEU / chrF ---------------------------------------------------------------------------


def test_identical_corpora_score_100() -> None:
    scores = score_predictions(AZ_REFERENCES, AZ_REFERENCES)
    assert scores.bleu == pytest.approx(100.0)
    assert scores.chrf == pytest.approx(100.0)
    assert scores.rouge1 == scores.rouge2 == scores.rougeL == pytest.approx(100.0)
    assert scores.n == 3


def test_bleu_matches_sacrebleu_corpus_bleu() -> None:
    expected = sacrebleu.corpus_bleu(AZ_PREDICTIONS, [AZ_REFERENCES], tokenize="13a")
    result = SacreBleu().compute(predictions=AZ_PREDICTIONS, references=AZ_REFERENCES)
    assert 0 < result["score"] < 100
    assert result["score"] == pytest.approx(expected.score)
    assert result["counts"] == expected.counts
    assert score_predictions(AZ_PREDICTIONS, AZ_REFERENCES).bleu == pytest.approx(expected.score)


def test_chrf_matches_sacrebleu_corpus_chrf() -> None:
    expected = sacrebleu.corpus_chrf(AZ_PREDICTIONS, [AZ_REFERENCES])
    result = ChrF().compute(predictions=AZ_PREDICTIONS, references=AZ_REFERENCES)
    assert 0 < result["score"] < 100
    assert result["score"] == pytest.approx(expected.score)


def test_signatures() -> None:
    scores = score_predictions(AZ_PREDICTIONS, AZ_REFERENCES)
    assert "tok:13a" in scores.bleu_signature
    assert "nrefs:1" in scores.bleu_signature
    assert f"version:{sacrebleu.__version__}" in scores.bleu_signature
    assert "nc:6" in scores.chrf_signature


def test_empty_prediction_scores_zero() -> None:
    scores = score_predictions(["", AZ_REFERENCES[1]], ["boş cavab", AZ_REFERENCES[1]])
    assert scores.rouge1 == pytest.approx(50.0)
    assert 0 < scores.bleu < 100
    assert scores.n == 2


def test_scores_round_trip_as_json() -> None:
    scores = score_predictions(AZ_PREDICTIONS, AZ_REFERENCES)
    assert Scores.model_validate_json(scores.model_dump_json()) == scores


# --- input validation ---------------------------------------------------------------------------


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="2 predictions vs 1 references"):
        score_predictions(["a", "b"], ["a"])


def test_empty_input_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        score_predictions([], [])


def test_single_string_is_rejected() -> None:
    with pytest.raises(TypeError, match="predictions must be a sequence"):
        score_predictions("bakı", ["bakı"])  # type: ignore[arg-type]


# --- offline ------------------------------------------------------------------------------------


def test_metrics_run_offline_without_evaluate_load(
    monkeypatch: pytest.MonkeyPatch, metrics_cache: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("metrics must not open network connections")

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("metrics must not use evaluate.load")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(evaluate, "load", no_load)

    scores = score_predictions(AZ_PREDICTIONS, AZ_REFERENCES)

    assert scores.n == 3
    # score_predictions uses its own temporary cache dir: nothing lands in evaluate's default.
    assert not metrics_cache.exists()


def test_direct_instantiation_writes_only_an_empty_cache_dir(metrics_cache: Path) -> None:
    """evaluate.Metric.__init__ creates <cache>/<name>/default; in-memory compute adds nothing."""
    SacreBleu().compute(predictions=AZ_PREDICTIONS, references=AZ_REFERENCES)
    written = sorted(p.relative_to(metrics_cache).as_posix() for p in metrics_cache.rglob("*"))
    assert written == ["sacre_bleu", "sacre_bleu/default"]
