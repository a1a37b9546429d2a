"""LoRA supervised fine-tuning with transformers' Trainer and peft."""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from steps.core.config import LoraSettings, TrainConfig
from steps.core.dataset import ChatExample
from steps.core.modeling import device, load_model, load_tokenizer

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer

log = logging.getLogger(__name__)
IGNORE_INDEX = -100


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; continuing would only waste GPU time."""


class TrainResult(BaseModel):
    adapter_dir: Path
    metrics: dict[str, float]


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


def _mixed_precision(precision: str) -> dict[str, bool]:
    import torch

    if precision == "fp32" or not torch.cuda.is_available():
        return {}
    if precision == "bf16" and torch.cuda.get_device_capability() < (8, 0):
        # T4 (sm_75) reports bf16 "supported" through emulation; it is slow and not what we want.
        raise ValueError("precision 'bf16' needs an Ampere or newer GPU; use 'fp16' on T4")
    return {precision: True}


def _has_argument(name: str) -> bool:
    import dataclasses

    from transformers import TrainingArguments

    return name in {f.name for f in dataclasses.fields(TrainingArguments)}


def _sampling(group_by_length: bool) -> dict[str, object]:
    """Length-grouped batches; transformers 5.2x renamed ``group_by_length`` to a strategy."""
    if _has_argument("train_sampling_strategy"):
        return {"train_sampling_strategy": "group_by_length" if group_by_length else "random"}
    return {"group_by_length": group_by_length}


def _checkpointing(enabled: bool) -> dict[str, object]:
    """Activation (gradient) checkpointing under whichever name this transformers uses."""
    prefix = "activation" if _has_argument("activation_checkpointing") else "gradient"
    return {
        f"{prefix}_checkpointing": enabled,
        f"{prefix}_checkpointing_kwargs": {"use_reentrant": False},
    }


def _trainer_class():
    from transformers import Trainer

    class FiniteLossTrainer(Trainer):
        """Stops at the first non-finite loss (Trainer's logs hide NaN by default)."""

        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            if not math.isfinite(loss.item()):
                raise NonFiniteLossError(
                    f"loss became {loss.item()} at step {self.state.global_step + 1}; "
                    "Qwen models can overflow in fp16: lower the learning rate, or train in "
                    "bf16/fp32 where the GPU supports it"
                )
            return loss

    return FiniteLossTrainer


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


def build_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dataset: Dataset,
    cfg: TrainConfig,
    scratch_dir: str,
    report_to: str = "none",
    pad_to_max_length: bool = False,
) -> Trainer:
    """The Trainer our train step uses: dynamic padding and length-grouped batches.

    Batches are padded to the longest sequence rounded up to ``cfg.pad_to_multiple_of``.

    ``pad_to_max_length`` pads every batch to ``cfg.max_length`` instead (the naive baseline
    that ``bench/train_throughput.py`` compares against, together with ``group_by_length=False``).
    """
    import torch
    from transformers import DataCollatorForSeq2Seq, TrainingArguments

    if torch.cuda.is_available() and not pad_to_max_length:
        # With dynamic padding every new sequence length makes cuDNN's attention build a new
        # plan; on an H200 that made our step 0.71x the fixed-shape baseline instead of faster
        # (docs/benchmarks.md). PyTorch's flash/efficient SDPA kernels have no such cost.
        torch.backends.cuda.enable_cudnn_sdp(False)
    if cfg.gradient_checkpointing:
        model.enable_input_require_grads()
    args = TrainingArguments(
        output_dir=scratch_dir,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of all steps
        weight_decay=cfg.weight_decay,
        **_sampling(cfg.group_by_length and not pad_to_max_length),
        **_checkpointing(cfg.gradient_checkpointing),
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        report_to=report_to,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=device() == "cpu",
        dataloader_num_workers=0,
        **_mixed_precision(cfg.precision),
    )
    collator = DataCollatorForSeq2Seq(
        tokenizer,
        padding="max_length" if pad_to_max_length else True,
        max_length=cfg.max_length if pad_to_max_length else None,
        label_pad_token_id=IGNORE_INDEX,
        pad_to_multiple_of=None if pad_to_max_length else cfg.pad_to_multiple_of,
    )
    return _trainer_class()(model=model, args=args, train_dataset=dataset, data_collator=collator)


def weights_dtype(precision: str) -> str:
    """dtype to load the frozen base in: half precision only on a GPU."""
    if device() != "cuda":
        return "float32"
    return {"fp16": "float16", "bf16": "bfloat16"}.get(precision, "float32")


def train_lora(
    base_dir: Path,
    rows: list[ChatExample],
    lora: LoraSettings,
    cfg: TrainConfig,
    out_dir: Path,
    report_to: str = "none",
) -> TrainResult:
    """Fine-tune a LoRA adapter on ``rows`` and save it (with the tokenizer) to ``out_dir``.

    Args:
        base_dir: local directory of the base model (see ``resolve_base_model``).
        rows: rendered training examples.
        lora: adapter shape.
        cfg: optimisation settings.
        out_dir: where the adapter directory is written.
        report_to: transformers ``report_to`` value ("wandb" when a tracker run is active).

    Returns:
        The adapter directory and training metrics (loss, runtime, tokens/s).
    """
    tokenizer = load_tokenizer(base_dir)
    dataset = tokenize(rows, tokenizer, cfg.max_length)
    model = apply_lora(load_model(base_dir, weights_dtype(cfg.precision)), lora)
    with tempfile.TemporaryDirectory(prefix="nizami-trainer-") as scratch:
        trainer = build_trainer(model, tokenizer, dataset, cfg, scratch, report_to)
        output = trainer.train()

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    trainable, total = model.get_nb_trainable_parameters()
    real_tokens = sum(len(ids) for ids in dataset["input_ids"])
    epochs_done = output.metrics.get("epoch", cfg.epochs)
    runtime = output.metrics["train_runtime"]
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    metrics = {
        "train_loss": output.training_loss,
        "first_logged_loss": losses[0] if losses else output.training_loss,
        "last_logged_loss": losses[-1] if losses else output.training_loss,
        "train_runtime_s": runtime,
        "train_steps": float(output.global_step),
        "epochs": float(epochs_done),
        "train_examples": float(len(dataset)),
        "tokens_per_s": real_tokens * epochs_done / runtime if runtime else 0.0,
        "trainable_params": float(trainable),
        "total_params": float(total),
    }
    return TrainResult(adapter_dir=out_dir, metrics=metrics)
