"""Offline text metrics for Azerbaijani: sacreBLEU, chrF and ROUGE with a Unicode tokenizer.

``evaluate.load("sacrebleu")`` downloads a script from the Hugging Face Hub and fails offline,
so the metrics are ``evaluate.Metric`` subclasses defined here and instantiated directly.

rouge_score's default tokenizer keeps only ``[a-z0-9]`` and splits words at every ə ğ ı ö ü ç ş
(``"səs"`` becomes ``["s", "s"]``), which inflates ROUGE on Azerbaijani text; :class:`AzRouge`
uses :func:`az_tokenize` instead.

``evaluate.Metric.__init__`` creates the (empty) directory ``<cache_dir>/<metric name>/default``,
where ``cache_dir`` defaults to ``evaluate.config.HF_METRICS_CACHE`` (``$HF_HOME/metrics``, read
when ``evaluate`` is imported). The metrics here default to ``keep_in_memory=True``, so
``compute`` writes no Arrow or lock files there; :func:`score_predictions` also passes a
temporary ``cache_dir``, so it leaves nothing behind.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Sequence

import datasets
import evaluate
from pydantic import BaseModel, ConfigDict, Field
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

log = logging.getLogger(__name__)

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

_WORD = re.compile(r"\w+")
_TURKIC_UPPER = str.maketrans({"I": "ı", "İ": "i"})

_FEATURES = datasets.Features(
    {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
)
_INPUTS = """
Args:
    predictions (`list` of `str`): system outputs, one per example.
    references (`list` of `str`): one reference per example, aligned with `predictions`.
"""


def az_tokenize(text: str) -> list[str]:
    """Lowercase with Azerbaijani (Turkic) casing and split into Unicode word tokens.

    ``I`` maps to ``ı`` and ``İ`` to ``i`` before ``str.lower()`` (which would give ``i`` and
    ``i`` + U+0307). Letters such as ə ğ ı ö ü ç ş stay inside their words; punctuation and
    whitespace separate tokens.

    Args:
        text: Any text.

    Returns:
        The lowercased word tokens, in order.
    """
    return _WORD.findall(text.translate(_TURKIC_UPPER).lower())


class AzTokenizer:
    """The tokenizer object rouge_score expects (anything with ``tokenize(text)``)."""

    def tokenize(self, text: str) -> list[str]:
        """Tokenize ``text`` with :func:`az_tokenize`."""
        return az_tokenize(text)


class _InMemoryMetric(evaluate.Metric):
    """An ``evaluate.Metric`` that keeps its inputs in memory unless told otherwise."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("keep_in_memory", True)
        super().__init__(**kwargs)


class SacreBleu(_InMemoryMetric):
    """Corpus BLEU from sacreBLEU with the ``13a`` tokenizer, one reference per example."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(
                "Corpus-level BLEU computed by sacreBLEU (tokenize='13a', exponential smoothing). "
                "Returns the score (0-100) and the sacreBLEU signature for reproducibility."
            ),
            citation=_SACREBLEU_CITATION,
            inputs_description=_INPUTS
            + """
Returns:
    score: BLEU, 0-100.
    counts, totals, precisions: n-gram statistics (n = 1..4); precisions in percent.
    bp: brevity penalty. sys_len, ref_len: token counts.
    signature: the sacreBLEU signature string.
""",
            features=_FEATURES,
            homepage="https://github.com/mjpost/sacrebleu",
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
            reference_urls=["https://aclanthology.org/W18-6319"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict:
        bleu = BLEU(tokenize="13a")
        result = bleu.corpus_score(list(predictions), [list(references)])
        return {
            "score": result.score,
            "counts": result.counts,
            "totals": result.totals,
            "precisions": result.precisions,
            "bp": result.bp,
            "sys_len": result.sys_len,
            "ref_len": result.ref_len,
            "signature": str(bleu.get_signature()),
        }


class ChrF(_InMemoryMetric):
    """Corpus chrF (character 6-grams, beta 2) from sacreBLEU, one reference per example."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(
                "Corpus-level chrF computed by sacreBLEU (char_order=6, word_order=0, beta=2). "
                "Character n-grams make it robust to Azerbaijani suffixes. Returns the score "
                "(0-100) and the sacreBLEU signature."
            ),
            citation=_CHRF_CITATION,
            inputs_description=_INPUTS
            + """
Returns:
    score: chrF, 0-100.
    char_order, word_order, beta: the chrF parameters used.
    signature: the sacreBLEU signature string.
""",
            features=_FEATURES,
            homepage="https://github.com/mjpost/sacrebleu",
            codebase_urls=["https://github.com/mjpost/sacrebleu"],
            reference_urls=["https://aclanthology.org/W15-3049"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict:
        chrf = CHRF()
        result = chrf.corpus_score(list(predictions), [list(references)])
        return {
            "score": result.score,
            "char_order": result.char_order,
            "word_order": result.word_order,
            "beta": result.beta,
            "signature": str(chrf.get_signature()),
        }


class AzRouge(_InMemoryMetric):
    """ROUGE-1/2/L F-measure with :func:`az_tokenize`, averaged over examples (0-1)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(
                "ROUGE-1, ROUGE-2 and ROUGE-L F-measure from rouge_score, tokenized with an "
                "Azerbaijani-aware Unicode word tokenizer (Turkic I/İ casing, no stemming) "
                "instead of rouge_score's ASCII-only default. Each value is the mean of the "
                "per-example F-measures, in [0, 1]."
            ),
            citation=_ROUGE_CITATION,
            inputs_description=_INPUTS
            + """
Returns:
    rouge1, rouge2, rougeL: mean F-measure over examples, in [0, 1].
""",
            features=_FEATURES,
            homepage="https://github.com/google-research/google-research/tree/master/rouge",
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
            reference_urls=["https://aclanthology.org/W04-1013"],
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        per_example = rouge_per_example(predictions, references)
        return {name: sum(v) / len(v) if v else 0.0 for name, v in per_example.items()}


def rouge_per_example(
    predictions: Sequence[str], references: Sequence[str]
) -> dict[str, list[float]]:
    """ROUGE-1/2/L F-measure of each example (in [0, 1]) with :func:`az_tokenize`.

    Args:
        predictions: System outputs.
        references: One reference per prediction, in the same order.

    Returns:
        ``{"rouge1": [...], "rouge2": [...], "rougeL": [...]}``, one value per example.
    """
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False, tokenizer=AzTokenizer())
    out: dict[str, list[float]] = {rouge_type: [] for rouge_type in ROUGE_TYPES}
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)  # rouge_score's order: (target, prediction)
        for rouge_type in ROUGE_TYPES:
            out[rouge_type].append(scores[rouge_type].fmeasure)
    return out


class Scores(BaseModel):
    """Scores of one system on one held-out set, all on a 0-100 scale.

    ``rouge1``, ``rouge2`` and ``rougeL`` are the mean per-example F-measures times 100, so that
    every score shares BLEU's scale. ``bleu`` and ``chrf`` are corpus-level. No upper bound is
    enforced: sacreBLEU can return 100.00000000000004 for identical corpora.
    """

    model_config = ConfigDict(frozen=True)

    bleu: float = Field(ge=0)
    chrf: float = Field(ge=0)
    rouge1: float = Field(ge=0)
    rouge2: float = Field(ge=0)
    rougeL: float = Field(ge=0)
    n: int = Field(ge=1, description="number of scored examples")
    bleu_signature: str
    chrf_signature: str


def score_predictions(predictions: Sequence[str], references: Sequence[str]) -> Scores:
    """Score predictions against references with sacreBLEU (13a), chrF and Azerbaijani ROUGE.

    Runs fully offline: the metrics are instantiated directly (no ``evaluate.load``), kept in
    memory, and given a temporary cache directory that is removed on return.

    Args:
        predictions: System outputs; empty strings are allowed and score zero.
        references: One reference per prediction, in the same order.

    Returns:
        The scores on a 0-100 scale, the number of examples and the sacreBLEU signatures.

    Raises:
        TypeError: If either argument is a single string instead of a sequence of strings.
        ValueError: If the inputs are empty or their lengths differ.
    """
    for name, value in (("predictions", predictions), ("references", references)):
        if isinstance(value, str):
            raise TypeError(f"{name} must be a sequence of strings, not a single string")
    if len(predictions) != len(references):
        raise ValueError(
            f"predictions and references differ in length: "
            f"{len(predictions)} predictions vs {len(references)} references"
        )
    if not predictions:
        raise ValueError("nothing to score: predictions and references are empty")

    predictions, references = list(predictions), list(references)
    with tempfile.TemporaryDirectory(prefix="nizami-metrics-") as cache_dir:
        bleu, chrf, rouge = (
            metric(cache_dir=cache_dir).compute(predictions=predictions, references=references)
            for metric in (SacreBleu, ChrF, AzRouge)
        )

    scores = Scores(
        bleu=bleu["score"],
        chrf=chrf["score"],
        rouge1=100 * rouge["rouge1"],
        rouge2=100 * rouge["rouge2"],
        rougeL=100 * rouge["rougeL"],
        n=len(predictions),
        bleu_signature=bleu["signature"],
        chrf_signature=chrf["signature"],
    )
    log.info(
        "scored %d examples: BLEU %.2f chrF %.2f ROUGE-1/2/L %.2f/%.2f/%.2f",
        scores.n,
        scores.bleu,
        scores.chrf,
        scores.rouge1,
        scores.rouge2,
        scores.rougeL,
    )
    return scores


_SACREBLEU_CITATION = """\
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    address = "Belgium, Brussels",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/W18-6319",
    pages = "186--191",
}
"""

_CHRF_CITATION = """\
@inproceedings{popovic-2015-chrf,
    title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
    author = "Popovi{\\'c}, Maja",
    booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
    year = "2015",
    address = "Lisbon, Portugal",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/W15-3049",
    pages = "392--395",
}
"""

_ROUGE_CITATION = """\
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    year = "2004",
    address = "Barcelona, Spain",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/W04-1013",
    pages = "74--81",
}
"""
