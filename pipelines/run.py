"""Command line: validate a config, run the pipeline, say where the results are.

    python -m pipelines.run --config pipelines/configs/demo.yaml \
        --run-config stacks/run-configs/local.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from steps.core.config import ConfigError, load_config
from steps.core.paths import resolve_path

if TYPE_CHECKING:
    from steps.core.evaluate.metrics_document import MetricsDocument


def headline(metrics: MetricsDocument) -> list[str]:
    """The evaluation in a few lines: answer accuracy and strict accuracy with 95 % intervals,
    format, BLEU/chrF."""
    from steps.core.evaluate.report import fmt, fmt_interval

    base, tuned = metrics.base, metrics.tuned

    def figure(key: str, side: str) -> str:
        value = fmt(key, getattr(metrics, side).get(key))
        return f"{value} {fmt_interval(key, getattr(metrics.intervals, side).get(key))}".strip()

    def p(key: str) -> str:
        test = metrics.tuned_vs_base.get(key)
        return "" if test is None else f"  (paired p {test.p_value:.3f})"

    lines = []
    if base.accuracy is not None:
        lines.append(
            f"accuracy       base {figure('accuracy', 'base')} -> tuned "
            f"{figure('accuracy', 'tuned')}{p('accuracy')}"
        )
        if base.strict_accuracy is not None:  # right and well-formed
            lines.append(
                f"strict acc.    base {figure('strict_accuracy', 'base')} -> tuned "
                f"{figure('strict_accuracy', 'tuned')}{p('strict_accuracy')}"
            )
        lines.append(
            f"format rate    base {figure('format_rate', 'base')} -> tuned "
            f"{figure('format_rate', 'tuned')}; mean output tokens "
            f"{base.mean_output_tokens:.0f} -> {tuned.mean_output_tokens:.0f}"
        )
    lines.append(
        f"held-out BLEU  base {base.bleu:.2f} -> tuned {tuned.bleu:.2f}{p('bleu')}"
        f"  (chrF {base.chrf:.1f} -> {tuned.chrf:.1f})"
    )
    return lines


def load_run_config(path: str | None, no_cache: bool = False) -> dict:
    """The ZenML run config at ``path`` (or an empty one); ``no_cache`` turns caching off in it
    everywhere (a run config's ``enable_cache: true`` would otherwise win over ``--no-cache``)."""
    raw = yaml.safe_load(resolve_path(Path(path)).read_text()) if path else {}
    raw = raw or {}
    if no_cache:
        raw["enable_cache"] = False
        for step in (raw.get("steps") or {}).values():
            if isinstance(step, dict):
                step["enable_cache"] = False
    return raw


def own_run(name_template: str):
    """The run this command started, found by the unique part of its name (or None)."""
    from zenml.client import Client

    token = name_template.rsplit("-", 1)[-1]
    runs = Client().list_pipeline_runs(name=f"contains:{token}", size=2).items
    return runs[0] if len(runs) == 1 else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.run", description=__doc__)
    parser.add_argument("--config", default="pipelines/configs/demo.yaml", help="domain config")
    parser.add_argument("--run-config", default=None, help="ZenML run config (where to run)")
    parser.add_argument("--no-cache", action="store_true", help="rerun every step")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)  # fail on a bad config before ZenML starts up
    except ConfigError as e:
        print(f"config error:\n{e}", file=sys.stderr)
        return 2

    from zenml.client import Client

    from pipelines.training import training_pipeline
    from steps.core.evaluate.compare import publish_metrics

    run_config = load_run_config(args.run_config, no_cache=args.no_cache)
    # A name of our own, so that a failed run is found by name, not as "the newest run in the
    # store" (on a shared server that can be someone else's).
    run_config.setdefault("run_name", f"nizami_training-{{date}}-{{time}}-{uuid.uuid4().hex[:6]}")
    with tempfile.TemporaryDirectory(prefix="nizami-run-") as scratch:
        run_config_file = Path(scratch) / "run.yaml"
        run_config_file.write_text(yaml.safe_dump(run_config))
        try:
            run = training_pipeline.with_options(config_path=str(run_config_file))(
                config_path=args.config
            )
        except RuntimeError:
            run = own_run(run_config["run_name"])
            if run is None:
                raise
    run = Client().get_pipeline_run(run.id)
    print(f"\nZenML run      {run.name}  status={run.status.value}")
    outputs = resolve_path(cfg.output_dir)
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / "steps.json").write_text(
        json.dumps(
            {  # for CI's job summary: what was cached
                "run": run.name,
                "status": run.status.value,
                "steps": {name: s.status.value for name, s in run.steps.items()},
            },
            indent=2,
        )
        + "\n"
    )
    if run.status.value != "completed":
        for name, step_run in run.steps.items():
            if step_run.exception_info is not None:
                print(f"step {name} failed: {step_run.exception_info.message}", file=sys.stderr)
        return 1
    steps = run.steps
    registration = steps["register"].outputs["registration"][0].load()
    metrics = steps["evaluate"].outputs["metrics"][0].load()
    # From the artifacts: also when evaluate ran in a Kaggle kernel (which writes no files here).
    report = str(steps["evaluate"].outputs["eval_report"][0].load())
    metrics_file = publish_metrics(metrics, report, outputs, run.name)
    print(f"metrics.json   {metrics_file}")
    print(f"eval report    {metrics_file.with_name('eval_report.html')}")
    for line in headline(metrics):
        print(line)
    gate, hub = registration.gate, registration.hub
    print(
        f"model version  {registration.model} v{registration.version}  "
        f"{'promoted to production' if gate.promote else 'not promoted'}: {gate.reason}"
    )
    if hub is not None:
        print(
            f"hub version    {hub.repo_id} {hub.version_tag}  "
            f"(revision {(hub.revision or '?')[:12]})"
        )
    bento_tag = steps["package"].outputs["bento_tag"][0].load()
    print(f"bento          {bento_tag}  (bentoml list)")
    print_images(steps["package"].run_metadata)
    record = registration.model_dump_json(indent=2, exclude_none=True)
    (outputs / "registration.json").write_text(record + "\n", encoding="utf-8")
    (outputs / "bento_tag.txt").write_text(bento_tag + "\n")
    print(f"latest copies  {outputs}/: metrics.json eval_report.html registration.json …")
    cached = [name for name, s in steps.items() if s.status.value == "cached"]
    print(f"cached steps   {', '.join(cached) or 'none'}")
    print(f"dashboard      {dashboard_line(run)}")
    return 0


def dashboard_line(run) -> str:
    """Where to see the run: its page on the ZenML server the run went to, or, with the local
    store, how to start the local dashboard."""
    from zenml.utils.dashboard_utils import get_run_url

    try:
        url = get_run_url(run)
    except Exception:  # noqa: BLE001 only a hint: never fail the summary for it
        url = None
    return url or "make dashboard  (then open the run above)"


def print_images(package_metadata: dict) -> None:
    """The package step's images and how to run them, or why none was built."""
    from bento.container import documented_command

    built = {v: tags for v, tags in package_metadata.get("images", {}).items() if tags}
    for variant, tags in built.items():
        size = package_metadata.get("image_sizes_bytes", {}).get(variant, 0) / 1e9
        print(f"image          {tags[0]} ({size:.2f} GB): {documented_command(tags[0], variant)}")
    if not built:
        reason = package_metadata.get("images_not_built", {}).get("cpu", "?")
        print(f"image          not built ({reason}): `make image` builds nizami-1.7b-cpu")


if __name__ == "__main__":
    sys.exit(main())
