"""The evaluation, shown: the HTML report (figures with 95 % intervals, paired tests, families,
every example) and the Markdown table of the model card."""

from __future__ import annotations

import html

from steps.core.config import DataConfig
from steps.core.evaluate.compare import FIGURES, EvalReport
from steps.core.evaluate.metrics_document import MetricsDocument

LABELS = {
    "accuracy": "answer accuracy",
    "strict_accuracy": "strict accuracy",
    "format_rate": "format rate",
    "mean_output_tokens": "mean output tokens",
    "bleu": "BLEU",
    "chrf": "chrF",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
}
PERCENT = ("accuracy", "strict_accuracy", "format_rate")


def fmt(figure: str, value: float | None, signed: bool = False) -> str:
    """A figure as the report shows it: fractions in percent (a signed difference of fractions
    in percentage points), the rest with two decimals."""
    if value is None:
        return "–"
    sign = "+" if signed else ""
    if figure in PERCENT:
        return f"{100 * value:{sign}.1f} {'pp' if signed else '%'}"
    return f"{value:{sign}.2f}"


def fmt_interval(
    figure: str, interval: list[float] | tuple[float, float] | None, signed: bool = False
) -> str:
    """``[low, high]`` in the figure's format, or an empty string."""
    if not interval:
        return ""
    return f"[{fmt(figure, interval[0], signed)}, {fmt(figure, interval[1], signed)}]"


def _figure_rows(document: MetricsDocument) -> str:
    rows = []
    for k in FIGURES:
        cells = []
        for side, figures in (("base", document.base), ("tuned", document.tuned)):
            interval = getattr(document.intervals, side).get(k)
            cells.append(f"{fmt(k, figures.get(k))} <small>{fmt_interval(k, interval)}</small>")
        test = document.tuned_vs_base[k]
        spread = fmt_interval(k, test.interval, signed=True)
        delta = f"{fmt(k, test.delta, signed=True)} <small>{spread}</small>"
        cells += [delta, f"{test.p_value:.3f}{' *' if test.p_value < 0.05 else ''}"]
        rows.append(f"<tr><th>{LABELS[k]}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "".join(rows)


def _family_rows(document: MetricsDocument) -> str:
    rows = []
    for name, f in document.families.items():
        cells = [
            str(f.n),
            f"{fmt('accuracy', f.base_accuracy)} "
            f"<small>{fmt_interval('accuracy', f.base_interval)}</small>",
            f"{fmt('accuracy', f.tuned_accuracy)} "
            f"<small>{fmt_interval('accuracy', f.tuned_interval)}</small>",
            f"{fmt('accuracy', f.delta, signed=True)} "
            f"<small>{fmt_interval('accuracy', f.delta_interval, signed=True)}</small>",
            "–" if f.p_value is None else f"{f.p_value:.3f}",
            "–" if f.holm_p_value is None else f"{f.holm_p_value:.3f}",
            html.escape(f.finding or ""),
        ]
        rows.append(
            f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        )
    return "".join(rows)


def _mark(correct: bool | None) -> str:
    return "" if correct is None else ("✓ " if correct else "✗ ")


def _graded(prediction: str, correct: bool | None, read: str | None, why: str) -> str:
    esc = html.escape
    return (
        f"{_mark(correct)}<pre>{esc(prediction)}</pre>"
        f"<small>read: <strong>{esc(read or '–')}</strong> · {esc(why)}</small>"
    )


def summary_lines(document: MetricsDocument) -> list[str]:
    """The evaluation in a few lines (logged by the evaluate step): size, accuracy, strict
    accuracy and format rate with their 95 % intervals, the paired tests."""
    n, lines, production = document.examples, [], DataConfig().held_out
    fewer = (
        f" (fewer than the production default {production}: this config trades evidence for "
        "time; docs/evaluation.md says what the gate can see at each size)"
        if n is not None and n < production
        else ""
    )
    lines.append(f"held-out examples: {n}{fewer}")
    for k in ("accuracy", "strict_accuracy", "format_rate"):
        base, tuned = document.base.get(k), document.tuned.get(k)
        if base is None or tuned is None:
            continue
        test = document.tuned_vs_base.get(k)
        p = "" if test is None else f"  (paired p {test.p_value:.3f}, {test.method})"
        lines.append(
            f"{LABELS[k]}: base {fmt(k, base)} {fmt_interval(k, document.intervals.base.get(k))}"
            f" -> tuned {fmt(k, tuned)} {fmt_interval(k, document.intervals.tuned.get(k))}{p}"
        )
    return lines


def render_html(report: EvalReport) -> str:
    """A self-contained HTML page: the figures, the families and every example side by side."""
    esc, document = html.escape, report
    examples = "".join(
        f"<tr><td>{esc(e.id)}</td><td>{esc(e.family or '')}</td><td>{esc(e.question)}</td>"
        f"<td><strong>{esc(e.target)}</strong><pre>{esc(e.reference)}</pre></td>"
        f"<td>{_graded(e.base_prediction, e.base_correct, e.base_read, e.base_why)}</td>"
        f"<td>{_graded(e.tuned_prediction, e.tuned_correct, e.tuned_read, e.tuned_why)}</td></tr>"
        for e in report.outputs
    )
    intervals = document.intervals
    headline = (
        f"answer accuracy: base {fmt('accuracy', document.base.accuracy)} "
        f"{fmt_interval('accuracy', intervals.base.get('accuracy'))} → tuned "
        f"{fmt('accuracy', document.tuned.accuracy)} "
        f"{fmt_interval('accuracy', intervals.tuned.get('accuracy'))} "
        f"(paired p = {document.tuned_vs_base['accuracy'].p_value:.3f})"
    )
    return (
        "<html><head><meta charset='utf-8'><style>"
        "body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1em}"
        "td,th{border:1px solid #ccc;padding:4px;vertical-align:top}small{color:#555}"
        "pre{white-space:pre-wrap;margin:0;max-width:40em}</style></head><body>"
        f"<h2>nizami held-out evaluation ({document.examples} examples)</h2>"
        f"<p>data {esc(str(document.data_hash))} · model {esc(str(document.model_revision))} · "
        f"{esc(str(document.sacrebleu_signature))}</p>"
        f"<p><strong>{esc(headline)}</strong></p>"
        "<table><tr><th></th><th>base [95 % CI]</th><th>tuned [95 % CI]</th>"
        "<th>Δ tuned − base [95 % CI]</th><th>paired p</th></tr>"
        f"{_figure_rows(document)}</table>"
        f"<p><small>accuracy: {esc(str(document.answer_accuracy))}. "
        f"{esc(str(document.uncertainty))} * p &lt; 0.05.</small></p>"
        "<h3>Answer accuracy per task family</h3>"
        "<p><small>Ordered by evidence (most examples, then most examples on which the two "
        "models differ). A family is called a regression or an improvement only when the exact "
        "McNemar test, Holm-adjusted for the number of families, gives p &lt; 0.05; with a few "
        "examples per family most differences are noise.</small></p>"
        "<table><tr><th>family</th><th>n</th><th>base [95 % CI]</th><th>tuned [95 % CI]</th>"
        "<th>Δ [95 % CI]</th><th>McNemar p</th><th>Holm p</th><th>finding</th></tr>"
        f"{_family_rows(document)}</table>"
        "<h3>Examples</h3><p><small>target: what the answer is (from the data); under each "
        "output, what the grader read as its answer and why it is right or wrong.</small></p>"
        "<table><tr><th>id</th><th>family</th><th>question</th>"
        f"<th>target / reference</th><th>base</th><th>tuned</th></tr>{examples}</table>"
        "</body></html>"
    )


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def markdown_table(document: MetricsDocument) -> str:
    """The figures (base, tuned, delta, 95 % intervals, paired p) and the accuracy per task
    family as Markdown tables, for the model card."""
    rows = ["| metric | base | tuned | delta | 95 % CI base; tuned | paired p |",
            "|---|---:|---:|---:|---|---:|"]
    for name in FIGURES:
        if document.tuned.get(name) is None:
            continue
        cells = [_cell(f.get(name)) for f in (document.base, document.tuned, document.delta)]
        spans = [document.intervals.base.get(name), document.intervals.tuned.get(name)]
        test = document.tuned_vs_base.get(name)
        rows.append(f"| {name} | " + " | ".join(cells)
                    + " | " + "; ".join(f"[{s[0]:.4g}, {s[1]:.4g}]" for s in spans if s)
                    + f" | {'' if test is None else f'{test.p_value:.3g}'} |")
    if document.families:
        rows += ["", "| task family | n | base accuracy | tuned accuracy | Holm p | finding |",
                 "|---|---:|---:|---:|---:|---|"]  # fmt: skip
        rows += [
            f"| {k} | {f.n} | {f.base_accuracy:.0%} {fmt_interval('accuracy', f.base_interval)} "
            f"| {f.tuned_accuracy:.0%} {fmt_interval('accuracy', f.tuned_interval)} | "
            f"{'' if f.holm_p_value is None else f'{f.holm_p_value:.3g}'} | {f.finding or ''} |"
            for k, f in document.families.items()
        ]
    return "\n".join(rows)
