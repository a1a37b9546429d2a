"""What each training process runs: LoRA supervised fine-tuning with transformers' Trainer and peft.

:func:`run_training` trains in the process that calls it: alone, or as one DDP rank that
:mod:`steps.core.train.launch` started (the launcher, :func:`~steps.core.train.launch.train_lora`,
is what the train step calls). Only rank 0 saves the adapter. Checkpoints
(:mod:`steps.core.train.checkpoints`) let a killed or time-limited run resume where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from steps.core.config import LoraSettings, TrainConfig
from steps.core.data.dataset import ChatExample
from steps.core.modeling import device, load_model, load_tokenizer
from steps.core.train.checkpoints import (
    TrainingInterrupted,
    checkpoint_callbacks,
    find_checkpoint,
    run_fingerprint,
)
from steps.core.train.hf_trainer import IGNORE_INDEX, build_trainer
from steps.core.train.plan import (
    apply_liger,
    attention_here,
    device_memory_bytes,
    plan_training,
)

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

log = logging.getLogger(__name__)


class TrainResult(BaseModel):
    """The adapter, the metrics to record and how this attempt went."""

    adapter_dir: Path
    metrics: dict[str, float]
    resumed_from_step: int | None = None
    resumed_from: str | None = None
    max_steps: int = 0
    plan: dict = {}
    log_history: list[dict] = []


class TrainSpec(BaseModel):
    """Everything one training process needs (JSON, so DDP workers can read it)."""

    base_dir: Path
    rows: list[ChatExample]
    lora: LoraSettings
    cfg: TrainConfig
    out_dir: Path
    checkpoint_dir: Path | None = None
    resume_from: list[Path] = []
    report_to: str = "none"


def tokenize(
    rows: list[ChatExample], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> Dataset:
    """Token ids with labels on the assistant turn only (prompt tokens are -100).

    Prompt and completion are tokenized separately, so the boundary is exact even where a
    byte-level BPE would merge across it; sequences are truncated on the right.
    """
    from datasets import Dataset

    records = []
    truncated = 0
    for row in rows:
        prompt = tokenizer(row.prompt, add_special_tokens=False)["input_ids"]
        completion = tokenizer(row.completion, add_special_tokens=False)["input_ids"]
        ids = (prompt + completion)[:max_length]
        labels = ([IGNORE_INDEX] * len(prompt) + completion)[:max_length]
        truncated += len(prompt) + len(completion) > max_length
        if all(label == IGNORE_INDEX for label in labels):
            continue  # prompt alone fills max_length: nothing to learn from this row
        records.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    if truncated:
        log.warning("%d of %d examples truncated to %d tokens", truncated, len(rows), max_length)
    if not records:
        raise ValueError(f"no trainable example left after truncation to {max_length} tokens")
    return Dataset.from_list(records)


def apply_lora(model: PreTrainedModel, lora: LoraSettings) -> PreTrainedModel:
    """Wrap ``model`` with a fresh LoRA adapter (adapter weights stay fp32 under fp16 bases)."""
    import peft

    model = peft.get_peft_model(
        model,
        peft.LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            task_type="CAUSAL_LM",
        ),
    )
    trainable, total = model.get_nb_trainable_parameters()
    log.info(
        "LoRA: %s trainable of %s parameters (%.2f%%)", trainable, total, 100 * trainable / total
    )
    return model


def weights_dtype(precision: str) -> str:
    """dtype to load the frozen base in: half precision only on a GPU."""
    if device() != "cuda":
        return "float32"
    return {"fp16": "float16", "bf16": "bfloat16"}.get(precision, "float32")


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextlib.contextmanager
def _checkpoint_folder(root: Path | None, fingerprint: str, main: bool) -> Iterator[Path]:
    """``root/<fingerprint>`` (kept if training fails), or a folder that lives for this call."""
    if root is None:
        with tempfile.TemporaryDirectory(prefix="nizami-checkpoints-") as scratch:
            yield Path(scratch)
        return
    folder = root / fingerprint
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    if main:  # the adapter is saved: the checkpoints have served their purpose
        shutil.rmtree(folder, ignore_errors=True)


def run_training(spec: TrainSpec, callbacks: Sequence[TrainerCallback] = ()) -> TrainResult:
    """Train in this process: alone, or as one DDP rank of those torchrun started.

    Resumes from the newest checkpoint of the same run found under ``spec.checkpoint_dir`` or
    ``spec.resume_from``. Only rank 0 writes the adapter; every rank returns the result.

    Raises:
        TrainingInterrupted: the time budget ran out; a checkpoint was saved first.
        NonFiniteLossError: the loss became NaN/inf.
    """
    from transformers import set_seed

    cfg = spec.cfg
    set_seed(cfg.seed)  # the LoRA initialisation below draws from it
    tokenizer = load_tokenizer(spec.base_dir)
    dataset = tokenize(spec.rows, tokenizer, cfg.max_length)
    fingerprint = run_fingerprint(spec.base_dir, dataset["input_ids"], spec.lora, cfg)
    base = load_model(spec.base_dir, weights_dtype(cfg.precision))
    attention = attention_here(cfg.attn_implementation)
    if attention != base.config._attn_implementation:
        base.set_attn_implementation(attention)
    liger = apply_liger(base, cfg.liger_kernel)
    model = apply_lora(base, spec.lora)
    plan = plan_training(cfg, model, _world_size(), device_memory_bytes(), liger)
    budget = checkpoint_callbacks(fingerprint, cfg.time_budget_s)
    main = int(os.environ.get("RANK", "0")) == 0
    with _checkpoint_folder(spec.checkpoint_dir, fingerprint, main) as folder:
        found = find_checkpoint([folder, *spec.resume_from], fingerprint)
        trainer = build_trainer(
            model, tokenizer, dataset, cfg, str(folder), spec.report_to, plan=plan,
            callbacks=[*budget, *callbacks],
        )
        if found:
            log.info("resumed from step %d of %d (%s)", found.step, found.max_steps, found.path)
        output = trainer.train(resume_from_checkpoint=str(found.path) if found else None)
        stopped_at = next((cb.stopped_at for cb in budget if hasattr(cb, "stopped_at")), None)
        if stopped_at is not None:
            raise TrainingInterrupted(
                stopped_at, trainer.state.max_steps, folder / f"checkpoint-{stopped_at}"
            )
        if main:
            spec.out_dir.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(spec.out_dir)
            tokenizer.save_pretrained(spec.out_dir)
        trainer.accelerator.wait_for_everyone()  # all ranks are done with the checkpoints
    start_step = found.step if found else 0
    return TrainResult(
        adapter_dir=spec.out_dir,
        metrics=_metrics(trainer, output, dataset, model, start_step, plan.world_size),
        resumed_from_step=found.step if found else None,
        resumed_from=str(found.path) if found else None,
        max_steps=trainer.state.max_steps,
        plan=plan.model_dump(),
        log_history=trainer.state.log_history,
    )


def _metrics(trainer, output, dataset, model, start_step: int, world_size: int) -> dict:
    trainable, total = model.get_nb_trainable_parameters()
    real_tokens = sum(len(ids) for ids in dataset["input_ids"])
    epochs_done = output.metrics.get("epoch", trainer.args.num_train_epochs)
    runtime = output.metrics["train_runtime"]
    max_steps = trainer.state.max_steps
    steps_run = output.global_step - start_step
    tokens_run = real_tokens * trainer.args.num_train_epochs * steps_run / max_steps
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    gpus = world_size if device() == "cuda" else 0
    return {
        "train_loss": output.training_loss,
        "first_logged_loss": losses[0] if losses else output.training_loss,
        "last_logged_loss": losses[-1] if losses else output.training_loss,
        "train_runtime_s": runtime,
        "train_steps": float(output.global_step),
        "steps_this_attempt": float(steps_run),
        "epochs": float(epochs_done),
        "train_examples": float(len(dataset)),
        "tokens_per_s": tokens_run / runtime if runtime else 0.0,
        "trainable_params": float(trainable),
        "total_params": float(total),
        "world_size": float(world_size),
        "gpu_minutes": gpus * runtime / 60,
    }
