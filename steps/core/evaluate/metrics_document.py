"""The result of an evaluation, as evaluate hands it on: :class:`MetricsDocument`, ``metrics.json``.

Evaluate writes it, every registered version carries a copy, and the quality gate, the model
card, ``python -m pipelines.run`` and CI's job summary read it. ZenML stores it as an artifact
with its pydantic materializer.

Every section of a metrics document is optional *when read*: a ``metrics.json`` written by an
earlier version of the pipeline (a production version on the Hub, say) lacks the newer
sections, and the quality gate says what it could not compare. Evaluate always writes them all
(:class:`steps.core.evaluate.compare.EvalReport` is a metrics document plus the outputs only the
HTML report shows). Dumped with :meth:`MetricsDocument.to_json`, a document has no nulls
(BentoML's model metadata, which gets a copy, rejects None).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from steps.core.evaluate.uncertainty import Interval, Paired

METRICS_FILE = "metrics.json"

class Figures(BaseModel):
    """One model's figures (or tuned minus base): accuracy and format rate are fractions,
    mean output tokens a count, BLEU, chrF and ROUGE on 0-100."""

    bleu: float | None = None
    chrf: float | None = None
    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None
    format_rate: float | None = None
    accuracy: float | None = None
    strict_accuracy: float | None = None  # right and well-formed
    mean_output_tokens: float | None = None

    def get(self, name: str) -> float | None:
        """The figure called ``name`` (``"bleu"``, ``"accuracy"``…), None if it is missing."""
        return getattr(self, name, None)


class Intervals(BaseModel):
    """95 % intervals of each model's figures: figure name -> ``[low, high]``."""

    base: dict[str, Interval] = {}
    tuned: dict[str, Interval] = {}


class PerExample(BaseModel):
    """One model's per-example scores, in the order of the evaluated examples.

    The base model's answers are not kept in ``metrics.json``; a document written before a
    column existed lacks it.
    """

    answer: list[str] | None = None
    correct: list[bool] | None = None
    strict: list[bool] | None = Field(None, description="right and well-formed")
    read: list[str] | None = Field(None, description="what the grader read (\"\" if nothing)")
    why: list[str] | None = Field(None, description="why the grader said right or wrong")
    format_ok: list[bool] | None = None
    output_tokens: list[int] | None = None
    rouge1: list[float] | None = None
    rouge2: list[float] | None = None
    rougeL: list[float] | None = None


class ExampleScores(BaseModel):
    """The per-example columns of a document: ids, families, reference answers, both models."""

    id: list[str]
    family: list[str] | None = None
    reference: list[str] | None = Field(None, description="the text inside each <answer>")
    target: list[str] | None = Field(None, description="what each answer is, as the grader read it")
    base: PerExample | None = None
    tuned: PerExample


class FamilyScores(BaseModel):
    """Answer accuracy of both models on one task family, with 95 % intervals, the exact McNemar
    test of tuned vs base and its Holm-adjusted p-value (adjusted for the number of families)."""

    n: int
    base_accuracy: float
    tuned_accuracy: float
    base_interval: Interval
    tuned_interval: Interval
    delta: float | None = None
    delta_interval: Interval | None = None
    p_value: float | None = None
    holm_p_value: float | None = None
    finding: str | None = Field(
        None, description="'regression' or 'improvement' when the Holm-adjusted p < 0.05, else "
        "'no evidence of a difference'"
    )


class MetricsDocument(BaseModel):
    """``metrics.json``: figures, intervals, paired tests, families and per-example scores."""

    examples: int | None = Field(None, description="held-out examples evaluated")
    data_hash: str | None = Field(None, description="DVC md5 of the data file")
    model_revision: str | None = Field(None, description="base model @ revision + adapter")
    scored_on: str | None = None
    answer_accuracy: str | None = Field(None, description="the rule that decides 'correct'")
    sacrebleu_signature: str | None = None
    chrf_signature: str | None = None
    base: Figures = Figures()
    tuned: Figures = Figures()
    delta: Figures = Field(Figures(), description="tuned minus base")
    intervals: Intervals = Intervals()
    tuned_vs_base: dict[str, Paired] = Field({}, description="paired tests, per figure")
    families: dict[str, FamilyScores] = {}
    uncertainty: str | None = Field(None, description="how intervals and tests were computed")
    per_example: ExampleScores | None = None

    def to_json(self) -> dict[str, Any]:
        """The document as JSON values, without nulls and without sections it was read
        without (so a document read from a file dumps as it was)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_unset=True)

    def without_texts(self) -> MetricsDocument:
        """A copy without the answer texts: what fits in ZenML metadata.

        ZenML skips a metadata value over 65,535 characters of JSON; the scores stay (a later
        run can pair accuracy, format rate and ROUGE with them), the texts are in
        ``metrics.json``.
        """
        if self.per_example is None:
            return self.model_copy()
        per_example = self.per_example.model_copy(
            update={
                "reference": None,
                "target": None,
                "base": _no_answer(self.per_example.base),
                "tuned": _no_answer(self.per_example.tuned),
            }
        )
        return self.model_copy(update={"per_example": per_example})

    def write(self, path: Path) -> Path:
        """Write the document as UTF-8 JSON (Azerbaijani letters as they are) to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> MetricsDocument:
        """A ``metrics.json`` file (any version of it)."""
        return cls.model_validate_json(path.read_text(encoding="utf-8"))


def _no_answer(scores: PerExample | None) -> PerExample | None:
    texts = {"answer": None, "read": None, "why": None}
    return None if scores is None else scores.model_copy(update=texts)
