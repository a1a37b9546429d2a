"""Step: base vs tuned on the held-out set; metrics.json, HTML report, tracker summary.

The step function runs wherever the stack puts it: here, or in a Kaggle kernel (run config
``stacks/run-configs/kaggle-eval-on-kaggle.yaml``). In a kernel there is no step context and the
repository is read-only, so the files are not written there: ``python -m pipelines.run`` writes
them from the ``metrics`` and ``eval_report`` artifacts.
"""

import logging
from pathlib import Path
from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.types import HTMLString

from steps.core.config import EvalConfig, ModelConfig
from steps.core.data.dataset import DatasetSplit
from steps.core.evaluate.metrics_document import MetricsDocument
from steps.core.paths import resolve_path


def _run_name() -> str | None:
    try:
        return get_step_context().pipeline_run.name
    except RuntimeError:  # no step context: the function runs in a Kaggle kernel
        return None


@step
def evaluate(
    dataset: DatasetSplit,
    adapter: Path,
    base_model: ModelConfig,
    evaluation: EvalConfig,
    output_dir: Path,
) -> tuple[Annotated[MetricsDocument, "metrics"], Annotated[HTMLString, "eval_report"]]:
    """Score both models (answer accuracy, format, length, BLEU/chrF/ROUGE, 95 % intervals)."""
    from steps.core.evaluate import compare as ev
    from steps.core.evaluate.report import render_html, summary_lines
    from steps.core.modeling import device, parameter_count, resolve_base_model
    from steps.core.tracking import log_summary

    base_dir, run_name = resolve_base_model(base_model), _run_name()
    dtype = ev.generation_dtype(evaluation, base_model.dtype, device(),
                                parameters=parameter_count(base_dir))
    revision = f"{base_model.name}@{base_model.revision or 'local'}+adapter:{run_name or 'kernel'}"
    report = ev.evaluate_models(base_dir, adapter, dataset.held_out, evaluation, dtype,
                                dataset.data_hash, revision)
    document, html = report.document(), render_html(report)
    for line in summary_lines(document):
        logging.getLogger(__name__).info("evaluate: %s", line)
    metadata = {"metrics": document.without_texts().to_json(), "eval_dtype": dtype}
    if run_name is not None:
        files = ev.publish_metrics(document, html, resolve_path(output_dir), run_name)
        metadata["metrics_json"] = str(files)
    log_metadata(metadata=metadata)
    log_summary(report.summary())
    return document, HTMLString(html)
