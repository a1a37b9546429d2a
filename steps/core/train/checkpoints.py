"""Checkpoints that outlive the process: save on a cadence or a time budget, find, resume.

The Trainer writes ``checkpoint-<step>/`` folders (adapter, optimizer, scheduler, GradScaler,
RNG states per rank, ``trainer_state.json``) and keeps the newest ``checkpoints_kept``.
:class:`CheckpointMarker` then drops :data:`MARKER` into the folder: a checkpoint counts only
once its marker exists, so a process killed in the middle of a save leaves nothing that a
resume would trust. :func:`find_checkpoint` searches folders *recursively* for markers of the
same run (Kaggle mounts a previous kernel version's output at
``/kaggle/input/notebooks/<owner>/<slug>/``; nothing here assumes that layout).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from steps.core.config import LoraSettings, TrainConfig

if TYPE_CHECKING:
    from transformers import TrainerCallback

log = logging.getLogger(__name__)
MARKER = "nizami-checkpoint.json"
# Settings that change what is optimised; throughput levers, the process count and the
# checkpoint settings do not, so a run may resume on another machine with other levers.
_OPTIMISATION_FIELDS = {
    "epochs", "max_steps", "learning_rate", "lr_scheduler", "warmup_ratio", "weight_decay",
    "max_length", "precision", "group_by_length", "seed",
}


class CheckpointInfo(BaseModel):
    """A complete checkpoint of a run: its folder and the optimizer step it holds."""

    path: Path
    step: int
    max_steps: int
    fingerprint: str


class TrainingInterrupted(RuntimeError):
    """Training stopped early on purpose (time budget) after saving a checkpoint."""

    def __init__(self, step: int, max_steps: int, checkpoint: Path) -> None:
        super().__init__(
            f"time budget reached: stopped at step {step} of {max_steps} with a checkpoint in "
            f"{checkpoint}; run the step again (same data and recipe) to resume from it"
        )
        self.step, self.max_steps, self.checkpoint = step, max_steps, checkpoint


def run_fingerprint(
    base_model_dir: Path, token_ids: Iterable[list[int]], lora: LoraSettings, cfg: TrainConfig
) -> str:
    """What makes two runs the same optimisation: base model, tokenized data and recipe."""
    digest = hashlib.sha256()
    config = base_model_dir / "config.json"
    digest.update(config.read_bytes() if config.is_file() else str(base_model_dir).encode())
    for ids in token_ids:
        digest.update(json.dumps(ids).encode())
    recipe = cfg.model_dump(mode="json", include=_OPTIMISATION_FIELDS)
    recipe["global_batch"] = cfg.batch_size * cfg.grad_accum
    digest.update(json.dumps([recipe, lora.model_dump(mode="json")], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def find_checkpoint(roots: Iterable[Path], fingerprint: str) -> CheckpointInfo | None:
    """The newest complete checkpoint of the run ``fingerprint`` under any of ``roots``.

    Every folder is searched recursively for :data:`MARKER`; checkpoints of other runs are
    skipped with a log line, as are folders that lost ``trainer_state.json``.
    """
    found: list[CheckpointInfo] = []
    for root in roots:
        if not root.is_dir():
            continue
        seen: set[str] = set()
        for folder, subfolders, files in os.walk(root, followlinks=True):
            real = os.path.realpath(folder)
            if real in seen:  # a symlink loop, or a folder reached twice
                subfolders.clear()
                continue
            seen.add(real)
            if MARKER not in files:
                continue
            path = Path(folder)
            try:
                info = CheckpointInfo.model_validate_json((path / MARKER).read_text())
            except (OSError, ValueError) as e:
                log.warning("ignoring unreadable checkpoint marker %s: %s", path / MARKER, e)
                continue
            if info.fingerprint != fingerprint:
                log.info("ignoring checkpoint %s: another run (%s)", path, info.fingerprint)
            elif not (path / "trainer_state.json").is_file():
                log.warning("ignoring incomplete checkpoint %s", path)
            else:
                found.append(info.model_copy(update={"path": path}))
    return max(found, key=lambda c: c.step, default=None)


def checkpoint_callbacks(
    fingerprint: str, time_budget_s: float | None, clock: Callable[[], float] = time.monotonic
) -> list[TrainerCallback]:
    """The callbacks that mark complete checkpoints and enforce the time budget."""
    callbacks = [_marker_callback(fingerprint)]
    if time_budget_s is not None:
        callbacks.append(time_budget_callback(time_budget_s, clock))
    return callbacks


def _marker_callback(fingerprint: str) -> TrainerCallback:
    from transformers import TrainerCallback

    class CheckpointMarker(TrainerCallback):
        """Marks ``checkpoint-<step>`` complete once the Trainer has written all of it."""

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                info = CheckpointInfo(
                    path=folder, step=state.global_step, max_steps=state.max_steps,
                    fingerprint=fingerprint,
                )
                (folder / MARKER).write_text(info.model_dump_json(indent=2))
                log.info("checkpoint at step %d of %d: %s", info.step, info.max_steps, folder)

    return CheckpointMarker()


def time_budget_callback(budget_s: float, clock: Callable[[], float] = time.monotonic):
    """A callback that saves and stops before the next optimizer step would cross ``budget_s``.

    It stops when the time used plus the slowest step so far exceeds the budget; in DDP the
    processes agree (the decision is all-reduced), so all of them save and stop together.
    ``stopped_at`` holds the step it stopped at, or None.
    """
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def __init__(self) -> None:
            self.start = self.step_start = 0.0
            self.slowest = 0.0
            self.stopped_at: int | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.start = clock()

        def on_step_begin(self, args, state, control, **kwargs):
            self.step_start = clock()

        def on_step_end(self, args, state, control, **kwargs):
            now = clock()
            self.slowest = max(self.slowest, now - self.step_start)
            over = now - self.start + self.slowest > budget_s
            if _any_process(over, args.device) and state.global_step < state.max_steps:
                log.warning(
                    "time budget %.0f s: %.0f s used, slowest step %.1f s; checkpointing at "
                    "step %d of %d and stopping", budget_s, now - self.start, self.slowest,
                    state.global_step, state.max_steps,
                )
                control.should_save = True
                control.should_training_stop = True
                self.stopped_at = state.global_step

    return TimeBudget()


def _any_process(flag: bool, device) -> bool:
    """True if ``flag`` is true on any DDP process (just ``flag`` without DDP)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())

