"""Held-out evaluation: batched greedy generation for the base and the tuned model."""

from __future__ import annotations

import html
import json
import logging
import time
from pathlib import Path

from pydantic import BaseModel

from steps.core.config import EvalConfig
from steps.core.data import extract_answer, has_valid_format
from steps.core.dataset import ChatExample
from steps.core.generation import generate
from steps.core.metrics import Scores, score_predictions
from steps.core.modeling import load_model, load_tokenizer

log = logging.getLogger(__name__)
SCORED = ("bleu", "chrf", "rouge1", "rouge2", "rougeL")


class ExampleResult(BaseModel):
    id: str
    question: str
    reference: str
    base_prediction: str
    tuned_prediction: str


class ModelScores(BaseModel):
    scores: Scores
    format_rate: float
    generation_s: float


class EvalReport(BaseModel):
    base: ModelScores
    tuned: ModelScores
    examples: list[ExampleResult]

    def deltas(self) -> dict[str, float]:
        return {
            k: round(getattr(self.tuned.scores, k) - getattr(self.base.scores, k), 4)
            for k in SCORED
        }

    def summary(self) -> dict[str, float]:
        """Flat numbers for trackers and step metadata."""
        out = {f"base/{k}": getattr(self.base.scores, k) for k in SCORED}
        out |= {f"tuned/{k}": getattr(self.tuned.scores, k) for k in SCORED}
        out |= {f"delta/{k}": v for k, v in self.deltas().items()}
        out |= {
            "base/format_rate": self.base.format_rate,
            "tuned/format_rate": self.tuned.format_rate,
        }
        return out


def _score(predictions: list[str], rows: list[ChatExample], seconds: float) -> ModelScores:
    answers = [extract_answer(p) for p in predictions]
    return ModelScores(
        scores=score_predictions(answers, [r.answer for r in rows]),
        format_rate=round(sum(map(has_valid_format, predictions)) / len(predictions), 4),
        generation_s=round(seconds, 2),
    )


def evaluate_models(
    base_dir: Path, adapter_dir: Path, rows: list[ChatExample], cfg: EvalConfig
) -> EvalReport:
    """Generate on ``rows`` with the base model, then with the adapter merged in, and score.

    Scores compare the text inside ``<answer>`` (or the whole output when the model did not
    produce the tags) with the reference answer.
    """
    from peft import PeftModel

    rows = rows[: cfg.max_examples] if cfg.max_examples else rows
    if not rows:
        raise ValueError("no held-out examples to evaluate")
    tokenizer = load_tokenizer(base_dir)
    prompts = [r.prompt for r in rows]
    model = load_model(base_dir)

    started = time.perf_counter()
    base_predictions = generate(model, tokenizer, prompts, cfg.batch_size, cfg.max_new_tokens)
    base = _score(base_predictions, rows, time.perf_counter() - started)

    tuned_model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    started = time.perf_counter()
    tuned_predictions = generate(
        tuned_model, tokenizer, prompts, cfg.batch_size, cfg.max_new_tokens
    )
    tuned = _score(tuned_predictions, rows, time.perf_counter() - started)
    return EvalReport(
        base=base,
        tuned=tuned,
        examples=[
            ExampleResult(
                id=r.id,
                question=r.question,
                reference=r.reference,
                base_prediction=b,
                tuned_prediction=t,
            )
            for r, b, t in zip(rows, base_predictions, tuned_predictions, strict=True)
        ],
    )


def metrics_document(report: EvalReport, data_hash: str, model_revision: str) -> dict:
    """The content of ``metrics.json``."""
    return {
        "examples": len(report.examples),
        "data_hash": data_hash,
        "model_revision": model_revision,
        "scored_on": "text inside <answer> vs reference answer",
        "sacrebleu_signature": report.tuned.scores.bleu_signature,
        "chrf_signature": report.tuned.scores.chrf_signature,
        "base": {k: getattr(report.base.scores, k) for k in SCORED}
        | {"format_rate": report.base.format_rate},
        "tuned": {k: getattr(report.tuned.scores, k) for k in SCORED}
        | {"format_rate": report.tuned.format_rate},
        "delta": report.deltas(),
    }


def write_metrics(document: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def publish_metrics(document: dict, html: str, output_dir: Path, run_name: str) -> Path:
    """Write ``metrics.json`` and ``eval_report.html`` into ``<output_dir>/<run_name>/`` and
    the latest copies into ``output_dir``; returns the run's ``metrics.json``."""
    for folder in (output_dir, output_dir / run_name):
        write_metrics(document, folder / "metrics.json")
        (folder / "eval_report.html").write_text(html, encoding="utf-8")
    return output_dir / run_name / "metrics.json"


def render_html(report: EvalReport, document: dict) -> str:
    """A self-contained HTML page: the score table and every example side by side."""
    esc = html.escape
    header = "".join(f"<th>{k}</th>" for k in SCORED)

    def row(name: str) -> str:
        cells = "".join(f"<td>{document[name][k]:.2f}</td>" for k in SCORED)
        return f"<tr><th>{name}</th>{cells}</tr>"

    examples = "".join(
        f"<tr><td>{esc(e.id)}</td><td>{esc(e.question)}</td><td><pre>{esc(e.reference)}</pre></td>"
        f"<td><pre>{esc(e.base_prediction)}</pre></td><td><pre>{esc(e.tuned_prediction)}</pre></td>"
        "</tr>"
        for e in report.examples
    )
    return (
        "<html><head><meta charset='utf-8'><style>"
        "body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
        "pre{white-space:pre-wrap;margin:0;max-width:40em}</style></head><body>"
        f"<h2>nizami held-out evaluation ({document['examples']} examples)</h2>"
        f"<p>data {esc(document['data_hash'])} · model {esc(document['model_revision'])} · "
        f"{esc(document['sacrebleu_signature'])}</p>"
        f"<table><tr><th></th>{header}</tr>{row('base')}{row('tuned')}{row('delta')}</table>"
        "<h3>Examples</h3><table><tr><th>id</th><th>question</th><th>reference</th>"
        f"<th>base</th><th>tuned</th></tr>{examples}</table></body></html>"
    )
