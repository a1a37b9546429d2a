"""Step: base vs tuned on the held-out set; metrics.json, HTML report, tracker summary."""

from pathlib import Path
from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.types import HTMLString

from steps.core.config import EvalConfig, ModelConfig, resolve_path
from steps.core.dataset import DatasetSplit


@step
def evaluate(
    dataset: DatasetSplit,
    adapter: Path,
    base_model: ModelConfig,
    evaluation: EvalConfig,
    output_dir: Path,
) -> tuple[Annotated[dict, "metrics"], Annotated[HTMLString, "eval_report"]]:
    """Score both models; writes metrics.json and eval_report.html under ``output_dir``."""
    from steps.core import evaluation as ev
    from steps.core.modeling import resolve_base_model
    from steps.tracking import log_summary

    run_name = get_step_context().pipeline_run.name
    report = ev.evaluate_models(
        resolve_base_model(base_model), adapter, dataset.held_out, evaluation
    )
    revision = f"{base_model.name}@{base_model.revision or 'local'}+adapter:{run_name}"
    document = ev.metrics_document(report, dataset.data_hash, revision)
    html = ev.render_html(report, document)
    metrics_file = ev.publish_metrics(document, html, resolve_path(output_dir), run_name)
    log_metadata(metadata={"metrics": document, "metrics_json": str(metrics_file)})
    log_summary(report.summary())
    return document, HTMLString(html)
