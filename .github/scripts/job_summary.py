"""Markdown for the train-eval-deploy job summary, from the files the pipeline run leaves.

    python .github/scripts/job_summary.py --metrics outputs/metrics.json \
        --registration outputs/registration.json --steps outputs/steps.json \
        --store "the team's ZenML server" --image ghcr.io/o/nizami-1.7b:3 --pushed true \
        >> "$GITHUB_STEP_SUMMARY"

Standard library only (it runs even when installing the project failed). A missing or unreadable
file becomes a line saying so, never an error: the summary is written after failed runs too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# (key in metrics.json, label); the accuracies and format_rate are fractions, shown in percent.
SCORES = [
    ("accuracy", "answer accuracy"),
    ("strict_accuracy", "strict accuracy"),
    ("bleu", "BLEU"),
    ("chrf", "chrF"),
    ("rouge1", "ROUGE-1"),
    ("rouge2", "ROUGE-2"),
    ("rougeL", "ROUGE-L"),
    ("format_rate", "format_rate"),
]


def _load(path: Path) -> tuple[dict | None, str | None]:
    """The JSON object in ``path``, or None and why not."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"`{path}` was not written (the run stopped before it)"
    except (OSError, ValueError) as e:
        return None, f"`{path}` could not be read: {e}"
    if not isinstance(data, dict):
        return None, f"`{path}` does not hold a JSON object"
    return data, None


def _number(value: object, percent: bool) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "–"
    return f"{100 * value:.1f}%" if percent else f"{value:.2f}"


def _delta(value: object, percent: bool) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "–"
    return f"{100 * value:+.1f} pp" if percent else f"{value:+.2f}"


def metrics_table(metrics: dict) -> list[str]:
    base, tuned = metrics.get("base", {}), metrics.get("tuned", {})
    deltas = metrics.get("delta", {})
    lines = ["| metric | base | tuned | Δ (tuned − base) |", "|---|---:|---:|---:|"]
    for key, label in SCORES:
        percent = key in ("format_rate", "accuracy", "strict_accuracy")
        b, t = base.get(key), tuned.get(key)
        d = deltas.get(key)
        if d is None and all(isinstance(x, int | float) for x in (b, t)):
            d = t - b
        cells = (_number(b, percent), _number(t, percent), _delta(d, percent))
        lines.append(f"| {label} | {' | '.join(cells)} |")
    facts = []
    if "examples" in metrics:
        facts.append(f"{metrics['examples']} held-out examples")
    if metrics.get("sacrebleu_signature"):
        facts.append(f"sacreBLEU `{metrics['sacrebleu_signature']}`")
    if metrics.get("data_hash"):
        facts.append(f"data `{metrics['data_hash']}`")
    if facts:
        lines += ["", "; ".join(facts)]
    return lines


def registration_lines(registration: dict) -> list[str]:
    gate = registration.get("gate") or {}
    model = registration.get("model", "?")
    version = registration.get("version", "?")
    if gate.get("promote") is True:
        decision = "**promoted** to `production`"
    elif gate.get("promote") is False:
        decision = "**not promoted** (held)"
    else:
        decision = "no decision recorded"
    reason = gate.get("reason") or "no reason recorded"
    return [
        f"- **Model version:** `{model}` v{version}",
        f"- **Quality gate:** {decision}: {reason}",
    ]


def steps_lines(steps_doc: dict, store: str | None = None) -> list[str]:
    """Each step's status, and which were cache hits (``steps.json`` from ``pipelines.run``)."""
    steps = steps_doc.get("steps") or {}
    cached = [name for name, status in steps.items() if status == "cached"]
    lines = ["| step | status |", "|---|---|"]
    lines += [f"| {name} | {'**cached**' if status == 'cached' else status} |"
              for name, status in steps.items()]
    note = "; train was a cache hit: nothing ran on Kaggle" if "train" in cached else ""
    lines += ["", f"- **Cached steps:** {', '.join(cached) or 'none'}{note}"]
    if store:
        lines.append(f"- **ZenML store:** {store}")
    return lines


def image_line(image: str | None, pushed: bool) -> str:
    if not image:
        return "- **Image:** not built"
    where = "pushed to GHCR" if pushed else "built; not pushed: only pushes to main publish"
    return f"- **Image:** `{image}` ({where})"


def render(
    metrics_path: Path,
    registration_path: Path,
    image: str | None = None,
    pushed: bool = False,
    config: str | None = None,
    run_config: str | None = None,
    steps_path: Path | None = None,
    store: str | None = None,
) -> str:
    lines = ["## nizami: train → evaluate → register → package", ""]
    if config or run_config:
        lines += [f"Config `{config or '?'}` on run config `{run_config or '?'}`", ""]
    if steps_path is not None:
        steps_doc, problem = _load(steps_path)
        lines += steps_lines(steps_doc, store) if steps_doc is not None else [f"Steps: {problem}."]
        lines.append("")
    metrics, problem = _load(metrics_path)
    lines += metrics_table(metrics) if metrics is not None else [f"Metrics: {problem}."]
    lines.append("")
    registration, problem = _load(registration_path)
    if registration is not None:
        lines += registration_lines(registration)
    else:
        lines.append(f"- **Model version / quality gate:** {problem}.")
    lines.append(image_line(image, pushed))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", type=Path, default=Path("outputs/metrics.json"))
    parser.add_argument("--registration", type=Path, default=Path("outputs/registration.json"))
    parser.add_argument("--image", default="", help="image reference, empty if none was built")
    parser.add_argument("--pushed", default="false", help="'true' if the image was pushed")
    parser.add_argument("--config", default="", help="domain config the run used")
    parser.add_argument("--run-config", default="", help="ZenML run config the run used")
    parser.add_argument("--steps", type=Path, default=None,
                        help="steps.json of the run (each step's status: cached or not)")
    parser.add_argument("--store", default="", help="which ZenML store the run used")
    args = parser.parse_args(argv)
    sys.stdout.write(
        render(
            args.metrics,
            args.registration,
            image=args.image or None,
            pushed=args.pushed.strip().lower() == "true",
            config=args.config or None,
            run_config=args.run_config or None,
            steps_path=args.steps,
            store=args.store or None,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
