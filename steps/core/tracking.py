"""The steps' bridge to the stack's experiment tracker (W&B when the stack has one).

It lives in ``steps.core`` because it needs neither ZenML nor wandb: ZenML's wandb tracker opens
the run before the step starts, and this module only looks for it among the imported modules.
The train step passes :func:`report_to` to :func:`steps.core.train.launch.train_lora` (the
Trainer then logs to that run), the launcher replays its DDP workers' history into
:func:`wandb_run`, and the evaluate step puts its figures in the run with :func:`log_summary`.
"""

from __future__ import annotations

import sys


def wandb_run():
    """The W&B run that ZenML's wandb tracker opened for this step, or None."""
    wandb = sys.modules.get("wandb")  # imported by the tracker; never import it here
    return getattr(wandb, "run", None) if wandb else None


def report_to() -> str:
    """transformers' ``report_to`` for the current step."""
    return "wandb" if wandb_run() is not None else "none"


def log_summary(values: dict[str, float]) -> None:
    """Put final numbers in the tracker run's summary, if there is a run."""
    run = wandb_run()
    if run is not None:
        run.log(values)
        run.summary.update(values)
