"""Held-out evaluation: batched greedy generation for the base and the tuned model, scored into
one result, :class:`EvalReport` (a :class:`~steps.core.evaluate.metrics_document.MetricsDocument`
plus the outputs only the HTML report shows).

Each model is scored on the text inside ``<answer>`` (its whole output when it wrote no tags):
answer accuracy (:mod:`steps.core.evaluate.grading.grader`), the rate of well-formed
``<think>…</think>\\n\\n<answer>…</answer>`` outputs, the mean output length in tokens, BLEU, chrF
and ROUGE. Every figure gets a 95 % interval and tuned vs base is tested paired
(:mod:`steps.core.evaluate.uncertainty`). The per-example scores are kept in the metrics document
so that a later run can compare with this one paired (the quality gate does, against production).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pydantic import BaseModel, Field

from steps.core.config import EvalConfig
from steps.core.data.dataset import ChatExample
from steps.core.data.examples import extract_answer, has_valid_format
from steps.core.evaluate.grading.grader import describe, grade
from steps.core.evaluate.metrics_document import (
    METRICS_FILE,
    ExampleScores,
    FamilyScores,
    Figures,
    Intervals,
    MetricsDocument,
    PerExample,
)
from steps.core.evaluate.text_metrics import (
    ROUGE_TYPES,
    Scores,
    rouge_per_example,
    score_predictions,
)
from steps.core.evaluate.uncertainty import (
    CONFIDENCE,
    RESAMPLES,
    Interval,
    Paired,
    bootstrap_mean,
    corpus_paired_test,
    holm,
    paired_bootstrap,
    paired_mcnemar,
    seed,
    wilson,
)
from steps.core.modeling import cpu_dtype

log = logging.getLogger(__name__)
SCORED = ("bleu", "chrf", "rouge1", "rouge2", "rougeL")
FIGURES = ("accuracy", "strict_accuracy", "format_rate", "mean_output_tokens", *SCORED)
BINARY = ("accuracy", "strict_accuracy", "format_rate")  # right/wrong: exact McNemar
# figure -> per-example column it is the mean of (BLEU and chrF are corpus-level: none)
COLUMNS = {
    "accuracy": "correct",
    "strict_accuracy": "strict",
    "format_rate": "format_ok",
    "mean_output_tokens": "output_tokens",
    **{r: r for r in ROUGE_TYPES},
}
ACCURACY_RULE = (
    "what the answer asserts vs the example's target (steps/core/evaluate/grading/grader.py): "
    "numbers as Azerbaijani writes them, context numbers (ablative, parentheses, working, yəni) "
    "skipped, convertible units accepted; entities of the target's type, longest name first, "
    "negated ones not counted; comparisons: who and how much; several candidates = a hedge = "
    "wrong; no answer (unclosed <think>, no <answer>) = wrong. strict: right and well-formed"
)
NO_FAMILY = "(none)"


class Generation(BaseModel):
    """What one model produced for the held-out prompts, in their order."""

    texts: list[str]
    output_tokens: list[int]
    seconds: float


class ModelScores(BaseModel):
    """One model's figures, their 95 % intervals and the per-example scores behind them (an
    intermediate of :func:`build_report`; the report keeps them as its document's sections)."""

    scores: Scores
    accuracy: float
    strict_accuracy: float
    format_rate: float
    mean_output_tokens: float
    generation_s: float
    intervals: dict[str, Interval]
    per_example: PerExample

    def figure(self, name: str) -> float:
        """The value of one of :data:`FIGURES`."""
        return getattr(self.scores, name) if name in SCORED else getattr(self, name)


class ExampleResult(BaseModel):
    """One held-out example as the HTML report shows it: the question, the reference, both
    models' whole outputs and what the grader made of each."""

    id: str
    question: str
    reference: str
    base_prediction: str
    tuned_prediction: str
    family: str | None = None
    target: str = ""
    base_correct: bool | None = None
    tuned_correct: bool | None = None
    base_read: str | None = None
    tuned_read: str | None = None
    base_why: str = ""
    tuned_why: str = ""


class EvalReport(MetricsDocument):
    """One evaluation's result: the metrics document (``metrics.json``: figures, intervals, paired
    tests, families, per-example scores) and :attr:`outputs`, what only the HTML report shows
    (each question and both models' whole outputs), which is never written to ``metrics.json``.
    """

    outputs: list[ExampleResult] = Field(
        default_factory=list, exclude=True, description="every example as the report shows it"
    )

    def document(self) -> MetricsDocument:
        """The metrics document alone: what the evaluate step hands on and writes."""
        return MetricsDocument.model_validate(self.to_json())

    def summary(self) -> dict[str, float]:
        """Flat numbers for trackers and step metadata: figures, interval bounds, p-values."""
        out: dict[str, float] = {}
        for side in ("base", "tuned"):
            figures, intervals = getattr(self, side), getattr(self.intervals, side)
            for k in FIGURES:
                out[f"{side}/{k}"] = figures.get(k)
                if k in intervals:
                    out[f"{side}/{k}_ci_low"], out[f"{side}/{k}_ci_high"] = intervals[k]
        out |= {f"delta/{k}": self.delta.get(k) for k in FIGURES}
        out |= {f"p_value/{k}": p.p_value for k, p in self.tuned_vs_base.items()}
        return out


def _score(generation: Generation, rows: list[ChatExample]) -> ModelScores:
    answers = [extract_answer(text) for text in generation.texts]
    references = [r.answer for r in rows]
    grades = [grade(t, r.target, r.answer) for t, r in zip(generation.texts, rows, strict=True)]
    rouge = rouge_per_example(answers, references)
    per_example = PerExample(
        answer=answers,
        correct=[g.correct for g in grades],
        strict=[g.strict for g in grades],
        read=[g.read or "" for g in grades],
        why=[g.why for g in grades],
        format_ok=[has_valid_format(text) for text in generation.texts],
        output_tokens=generation.output_tokens,
        **{k: [round(100 * v, 4) for v in values] for k, values in rouge.items()},
    )
    n = len(rows)
    intervals = {
        "accuracy": wilson(sum(per_example.correct), n),
        "strict_accuracy": wilson(sum(per_example.strict), n),
        "format_rate": wilson(sum(per_example.format_ok), n),
    }
    for figure in ("mean_output_tokens", *ROUGE_TYPES):
        intervals[figure] = bootstrap_mean(getattr(per_example, COLUMNS[figure]))
    return ModelScores(
        scores=score_predictions(answers, references),
        accuracy=round(sum(per_example.correct) / n, 4),
        strict_accuracy=round(sum(per_example.strict) / n, 4),
        format_rate=round(sum(per_example.format_ok) / n, 4),
        mean_output_tokens=round(sum(generation.output_tokens) / n, 2),
        generation_s=round(generation.seconds, 2),
        intervals=intervals,
        per_example=per_example,
    )


def _families(rows: list[ChatExample], base: PerExample, tuned: PerExample) -> dict:
    """Accuracy per family with Wilson intervals, tuned vs base by the exact McNemar test with
    Holm-adjusted p-values; ordered by evidence (most examples, then most discordant pairs)."""
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row.family or NO_FAMILY, []).append(i)
    tests = {
        family: paired_mcnemar([base.correct[i] for i in idx], [tuned.correct[i] for i in idx])
        for family, idx in groups.items()
    }
    adjusted = holm({family: test.p_value for family, test in tests.items()})

    def evidence(family: str) -> tuple[int, int, str]:
        idx = groups[family]
        discordant = sum(base.correct[i] != tuned.correct[i] for i in idx)
        return -len(idx), -discordant, family

    out = {}
    for family in sorted(groups, key=evidence):
        idx, test = groups[family], tests[family]
        right = [sum(side.correct[i] for i in idx) for side in (base, tuned)]
        finding = "no evidence of a difference"
        if adjusted[family] < 0.05:
            finding = "improvement" if test.delta > 0 else "regression"
        out[family] = FamilyScores(
            n=len(idx),
            base_accuracy=round(right[0] / len(idx), 4),
            tuned_accuracy=round(right[1] / len(idx), 4),
            base_interval=wilson(right[0], len(idx)),
            tuned_interval=wilson(right[1], len(idx)),
            delta=round(test.delta, 4),
            delta_interval=test.interval,
            p_value=round(test.p_value, 4),
            holm_p_value=round(adjusted[family], 4),
            finding=finding,
        )
    return out


def build_report(
    rows: list[ChatExample],
    base: Generation,
    tuned: Generation,
    data_hash: str | None = None,
    model_revision: str | None = None,
) -> EvalReport:
    """Score both models' outputs on ``rows``, with intervals, paired tests and families.

    Args:
        rows: The held-out examples, in the order of the generations.
        base: The base model's outputs.
        tuned: The tuned model's outputs.
        data_hash: The DVC hash of the data, recorded in the document.
        model_revision: What was evaluated (base model @ revision + adapter), recorded too.
    """
    base_scores, tuned_scores = _score(base, rows), _score(tuned, rows)
    b, t = base_scores.per_example, tuned_scores.per_example
    corpus = corpus_paired_test(b.answer, t.answer, [r.answer for r in rows])
    paired = {
        f: (paired_mcnemar if f in BINARY else paired_bootstrap)(getattr(b, c), getattr(t, c))
        for f, c in COLUMNS.items()
    }
    for name, comparison in corpus.items():
        base_scores.intervals[name] = comparison.baseline_interval
        tuned_scores.intervals[name] = comparison.candidate_interval
        paired[name] = comparison.paired
    outputs = [
        ExampleResult(
            id=r.id, question=r.question, reference=r.reference, family=r.family,
            target=describe(r.target), base_prediction=base.texts[i],
            tuned_prediction=tuned.texts[i], base_correct=b.correct[i],
            tuned_correct=t.correct[i], base_read=b.read[i], tuned_read=t.read[i],
            base_why=b.why[i], tuned_why=t.why[i],
        )
        for i, r in enumerate(rows)
    ]  # fmt: skip
    return _report(
        base_scores, tuned_scores, outputs, {f: paired[f] for f in FIGURES},
        _families(rows, b, t), data_hash, model_revision,
    )


def _generate(model, tokenizer, prompts: list[str], cfg: EvalConfig) -> Generation:
    from steps.core.evaluate.generation import decode, generate_ids

    started = time.perf_counter()
    ids = generate_ids(model, tokenizer, prompts, cfg.batch_size, cfg.max_new_tokens)
    return Generation(texts=decode(tokenizer, ids), output_tokens=list(map(len, ids)),
                      seconds=time.perf_counter() - started)


def evaluate_models(
    base_dir: Path,
    adapter_dir: Path,
    rows: list[ChatExample],
    cfg: EvalConfig,
    dtype: str = "float32",
    data_hash: str | None = None,
    model_revision: str | None = None,
) -> EvalReport:
    """Generate on ``rows`` with the base model, then with the adapter merged in, and score.

    Args:
        base_dir: The base model's directory.
        adapter_dir: The LoRA adapter.
        rows: The held-out examples (the first ``cfg.max_examples`` are used).
        cfg: Batch size, token budget.
        dtype: Weights' dtype for generation (see :func:`generation_dtype`).
        data_hash: The DVC hash of the data, recorded in the report.
        model_revision: What was evaluated, recorded in the report.
    """
    from peft import PeftModel

    from steps.core.modeling import load_model, load_tokenizer

    rows = rows[: cfg.max_examples] if cfg.max_examples else rows
    if not rows:
        raise ValueError("no held-out examples to evaluate")
    tokenizer = load_tokenizer(base_dir)
    prompts = [r.prompt for r in rows]
    model = load_model(base_dir, dtype)
    base = _generate(model, tokenizer, prompts, cfg)
    tuned_model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    tuned = _generate(tuned_model, tokenizer, prompts, cfg)
    return build_report(rows, base, tuned, data_hash, model_revision)


def generation_dtype(cfg: EvalConfig, model_dtype: str, device: str,
                     flags: frozenset[str] | None = None, parameters: int | None = None) -> str:
    """``cfg.dtype``; for ``auto`` the model's dtype on a GPU, on a CPU (``flags``) that of
    :func:`steps.core.modeling.cpu_dtype` for ``parameters`` (never fp16: slow on CPUs), logged."""
    if cfg.dtype != "auto" or device == "cuda":
        return model_dtype if cfg.dtype == "auto" else cfg.dtype
    dtype, why = cpu_dtype(flags, parameters)
    log.info("evaluate: generating in %s on this CPU (%s)", dtype, why)
    return dtype


def _rounded(p: Paired) -> Paired:
    interval = None if p.interval is None else (round(p.interval[0], 4), round(p.interval[1], 4))
    return p.model_copy(
        update={"delta": round(p.delta, 4), "p_value": round(p.p_value, 4), "interval": interval}
    )


def _figures(scores: ModelScores) -> Figures:
    return Figures(**{k: scores.figure(k) for k in FIGURES})


def _intervals(scores: ModelScores) -> dict[str, tuple[float, float]]:
    return {k: (round(scores.intervals[k][0], 4), round(scores.intervals[k][1], 4))
            for k in FIGURES if k in scores.intervals}


def _report(
    base: ModelScores,
    tuned: ModelScores,
    outputs: list[ExampleResult],
    tuned_vs_base: dict[str, Paired],
    families: dict[str, FamilyScores],
    data_hash: str | None,
    model_revision: str | None,
) -> EvalReport:
    """The report: the content of ``metrics.json`` (figures, intervals, paired tests, families,
    per example) and the outputs the HTML report shows.

    ``per_example`` keeps the reference answers and the tuned model's answers (the quality gate
    pairs BLEU and chrF with them when this version is production), not the base model's.
    """
    base_columns = base.per_example.model_copy(update={"answer": None})
    deltas = {k: round(tuned.figure(k) - base.figure(k), 4) for k in FIGURES}
    return EvalReport(
        outputs=outputs,
        examples=len(outputs),
        data_hash=data_hash,
        model_revision=model_revision,
        scored_on="text inside <answer> vs reference answer",
        answer_accuracy=ACCURACY_RULE,
        sacrebleu_signature=tuned.scores.bleu_signature,
        chrf_signature=tuned.scores.chrf_signature,
        base=_figures(base),
        tuned=_figures(tuned),
        delta=Figures(**deltas),
        intervals=Intervals(base=_intervals(base), tuned=_intervals(tuned)),
        tuned_vs_base={k: _rounded(p) for k, p in tuned_vs_base.items()},
        families=families,
        uncertainty=(
            f"{CONFIDENCE:.0%} intervals: Wilson for accuracy, strict accuracy and format rate; "
            f"sacreBLEU's bootstrap (mean ± half the percentile range) for BLEU and chrF; "
            f"percentile bootstrap for the others. Differences: exact McNemar test and its exact "
            f"interval for accuracy, strict accuracy and format rate (per family too, p-values "
            f"Holm-adjusted for the number of families); paired bootstrap ({RESAMPLES} "
            f"resamples, seed {seed()}; sacreBLEU's paired test for BLEU and chrF) for the rest."
        ),
        per_example=ExampleScores(
            id=[e.id for e in outputs],
            family=[e.family or NO_FAMILY for e in outputs],
            reference=[extract_answer(e.reference) for e in outputs],
            target=[e.target for e in outputs],
            base=base_columns,
            tuned=tuned.per_example,
        ),
    )


def publish_metrics(
    document: MetricsDocument, html: str, output_dir: Path, run_name: str
) -> Path:
    """Write ``metrics.json`` and ``eval_report.html`` into ``<output_dir>/<run_name>/`` and
    the latest copies into ``output_dir``; returns the run's ``metrics.json``."""
    for folder in (output_dir, output_dir / run_name):
        document.write(folder / METRICS_FILE)
        (folder / "eval_report.html").write_text(html, encoding="utf-8")
    return output_dir / run_name / METRICS_FILE
