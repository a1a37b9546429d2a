"""The training launcher: :func:`train_lora` (what the train step calls) and the processes it
starts, one per GPU (DDP through torchrun), never ``nn.DataParallel``.

:func:`choose_launch` decides from the number of visible GPUs; :func:`launch_training` runs
the decision: one process trains in this one (:func:`steps.core.train.process.run_training`),
more are started with ``python -m torch.distributed.run --standalone --nproc-per-node N -m
steps.core.train.launch <spec> <outcome>``, each of which runs :func:`_worker` (the same
``run_training``); rank 0 saves the adapter and writes the outcome file, which this process
turns back into a :class:`~steps.core.train.process.TrainResult` or the worker's error. Workers
do not report to W&B themselves: their logged history is replayed into the tracker run of this
process. This module imports the per-process code, never the other way round.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from steps.core.config import LoraSettings, TrainConfig
from steps.core.data.dataset import ChatExample
from steps.core.tracking import wandb_run
from steps.core.train.checkpoints import TrainingInterrupted
from steps.core.train.hf_trainer import NonFiniteLossError
from steps.core.train.process import TrainResult, TrainSpec, run_training

if TYPE_CHECKING:
    from transformers import TrainerCallback

log = logging.getLogger(__name__)


class LaunchPlan(BaseModel):
    """How many training processes, and the collective backend between them."""

    processes: int
    backend: Literal["nccl", "gloo"] | None = None  # None: a single process, no collectives


class WorkerFailed(RuntimeError):
    """A DDP worker failed without telling why (see the worker log above)."""


def visible_gpus() -> int:
    """CUDA devices this process can see (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def choose_launch(n_gpus: int, processes: int | None = None) -> LaunchPlan:
    """One process per GPU; one process on a CPU or a single GPU.

    Args:
        n_gpus: visible CUDA devices.
        processes: override (``train.processes``); more than one on a CPU runs gloo DDP.

    Raises:
        ValueError: more processes than GPUs.
    """
    wanted = processes or max(1, n_gpus)
    if n_gpus and wanted > n_gpus:
        raise ValueError(f"train.processes = {wanted} but only {n_gpus} GPUs are visible")
    if wanted == 1:
        return LaunchPlan(processes=1)
    return LaunchPlan(processes=wanted, backend="nccl" if n_gpus else "gloo")


def launch_training(
    spec: TrainSpec, plan: LaunchPlan, callbacks: Sequence[TrainerCallback] = ()
) -> TrainResult:
    """Train as ``plan`` says and return rank 0's result (see the module docstring).

    Raises:
        TrainingInterrupted: the time budget ran out after a checkpoint.
        NonFiniteLossError: a worker's loss became NaN/inf.
        WorkerFailed: a worker died without an outcome (its traceback is in the log).
    """
    if plan.processes == 1:
        return run_training(spec, callbacks)
    if callbacks:
        raise ValueError("Trainer callbacks cannot cross into DDP worker processes")
    with tempfile.TemporaryDirectory(prefix="nizami-ddp-") as work:
        work_dir = Path(work)
        checkpoints = spec.checkpoint_dir or work_dir / "checkpoints"
        worker_spec = spec.model_copy(update={"checkpoint_dir": checkpoints, "report_to": "none"})
        spec_file, outcome_file = work_dir / "spec.json", work_dir / "outcome.json"
        spec_file.write_text(worker_spec.model_dump_json())
        returncode = _run_workers(plan, spec_file, outcome_file)
        outcome = json.loads(outcome_file.read_text()) if outcome_file.is_file() else None
    if outcome is None:
        raise WorkerFailed(f"DDP training over {plan.processes} processes exited {returncode}")
    if outcome["status"] == "interrupted":
        raise TrainingInterrupted(
            outcome["step"], outcome["max_steps"], Path(outcome["checkpoint"])
        )
    if outcome["status"] == "failed":
        error = NonFiniteLossError if outcome["type"] == "NonFiniteLossError" else WorkerFailed
        raise error(f"rank 0: {outcome['message']}")
    result = TrainResult.model_validate(outcome["result"])
    if spec.report_to == "wandb":
        _replay_to_wandb(result.log_history)
    return result


def train_lora(
    base_dir: Path,
    rows: list[ChatExample],
    lora: LoraSettings,
    cfg: TrainConfig,
    out_dir: Path,
    report_to: str = "none",
    *,
    checkpoint_dir: Path | None = None,
    resume_from: Sequence[Path] = (),
    callbacks: Sequence[TrainerCallback] = (),
) -> TrainResult:
    """Fine-tune a LoRA adapter on ``rows`` and save it (with the tokenizer) to ``out_dir``.

    Runs one process per visible GPU (DDP through torchrun, ``cfg.processes`` to override), or
    one process on a CPU; the global batch and the optimizer steps are the same either way.

    Args:
        base_dir: local directory of the base model (see ``resolve_base_model``).
        rows: rendered training examples.
        lora: adapter shape.
        cfg: optimisation settings.
        out_dir: where the adapter directory is written.
        report_to: transformers ``report_to`` value ("wandb" when a tracker run is active).
        checkpoint_dir: checkpoints go to ``checkpoint_dir/<run fingerprint>/`` and survive a
            failed run there (removed after success); None keeps them only during this call.
        resume_from: more folders searched recursively for a checkpoint of this same run
            (data, base model and recipe), e.g. ``/kaggle/input``; the newest one wins.
        callbacks: extra Trainer callbacks (single process only).

    Returns:
        The adapter directory, the metrics (loss, runtime, tokens/s, GPU minutes) and, when it
        resumed, the step and checkpoint it resumed from.

    Raises:
        TrainingInterrupted: ``cfg.time_budget_s`` ran out; call again to resume.
    """
    spec = TrainSpec(
        base_dir=base_dir, rows=rows, lora=lora, cfg=cfg, out_dir=out_dir,
        checkpoint_dir=checkpoint_dir, resume_from=list(resume_from), report_to=report_to,
    )
    return launch_training(spec, choose_launch(visible_gpus(), cfg.processes), callbacks)


def _import_root() -> str:
    """The folder the ``steps`` package is imported from, so that the workers import the same
    code: a checkout, site-packages, or a Kaggle kernel's code bundle (not the project root,
    which a kernel does not have)."""
    import steps

    return str(Path(steps.__file__).resolve().parent.parent)


def _run_workers(plan: LaunchPlan, spec_file: Path, outcome_file: Path) -> int:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={plan.processes}",
        "-m", "steps.core.train.launch", str(spec_file), str(outcome_file),
    ]
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [_import_root(), os.environ.get("PYTHONPATH")])),
    }
    log.info("DDP: %d processes (%s): %s", plan.processes, plan.backend, " ".join(command))
    # Lines are passed through sys.stdout so that the step's log capture sees them.
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        bufsize=1,
    ) as workers:
        assert workers.stdout is not None
        for line in workers.stdout:
            sys.stdout.write(line)
        return workers.wait()


def _replay_to_wandb(history: list[dict]) -> None:
    run = wandb_run()
    if run is None:
        return
    for entry in history:
        values = {f"train/{k}": v for k, v in entry.items() if k != "step"}
        run.log(values | {"train/global_step": entry.get("step")})


def _worker(spec_file: Path, outcome_file: Path) -> int:
    """One DDP rank: train, and on rank 0 write the outcome for the launching process."""
    import torch

    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING, stream=sys.stdout,
        format=f"%(asctime)s rank{rank} %(levelname)s %(name)s: %(message)s",
    )
    if torch.cuda.is_available():  # "cuda" means this rank's GPU from here on
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    spec = TrainSpec.model_validate_json(spec_file.read_text())
    outcome: dict
    try:
        result = run_training(spec)
        outcome = {"status": "done", "result": result.model_dump(mode="json")}
    except TrainingInterrupted as e:
        outcome = {"status": "interrupted", "step": e.step, "max_steps": e.max_steps,
                   "checkpoint": str(e.checkpoint)}
    except Exception as e:
        log.exception("rank %d failed", rank)
        outcome = {"status": "failed", "type": type(e).__name__, "message": str(e)}
    if rank == 0:
        outcome_file.write_text(json.dumps(outcome))
    return 1 if outcome["status"] == "failed" else 0


if __name__ == "__main__":
    sys.exit(_worker(Path(sys.argv[1]), Path(sys.argv[2])))
