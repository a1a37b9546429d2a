"""The transformers Trainer our train step runs, configured from a recipe and a plan.

Batches: length-grouped, dynamically padded (``pad_to_multiple_of``) or, with ``packing``,
padding-free (one row of concatenated examples with position ids). Checkpoints: every
``checkpoint_every_steps`` optimizer steps into ``output_dir``, the newest
``checkpoints_kept`` kept. One process or DDP: the Trainer follows the environment torchrun sets.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from steps.core.config import TrainConfig
from steps.core.modeling import device
from steps.core.train.plan import TrainPlan

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainerCallback

log = logging.getLogger(__name__)
IGNORE_INDEX = -100


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; continuing would only waste GPU time."""


def _mixed_precision(precision: str) -> dict[str, bool]:
    import torch

    if precision == "fp32" or not torch.cuda.is_available():
        return {}
    if precision == "bf16" and torch.cuda.get_device_capability() < (8, 0):
        # T4 (sm_75) reports bf16 "supported" through emulation; it is slow and not what we want.
        raise ValueError("precision 'bf16' needs an Ampere or newer GPU; use 'fp16' on T4")
    return {precision: True}


def _has_argument(name: str) -> bool:
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


def default_plan(cfg: TrainConfig) -> TrainPlan:
    """The recipe taken literally in one process: no memory-driven choices, no CUDA levers."""
    return TrainPlan(
        world_size=1,
        micro_batch=cfg.batch_size,
        grad_accum=cfg.grad_accum,
        gradient_checkpointing=cfg.gradient_checkpointing is True,
        packing=cfg.packing,
        liger_kernel=False,
        torch_compile=False,
        attn_implementation=cfg.attn_implementation,
    )


def _collator(tokenizer, cfg: TrainConfig, plan: TrainPlan, pad_to_max_length: bool):
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    if plan.packing and not pad_to_max_length:
        return DataCollatorWithFlattening(
            return_position_ids=True,
            separator_id=IGNORE_INDEX,
            return_flash_attn_kwargs=plan.attn_implementation == "flash_attention_2",
        )
    return DataCollatorForSeq2Seq(
        tokenizer,
        padding="max_length" if pad_to_max_length else True,
        max_length=cfg.max_length if pad_to_max_length else None,
        label_pad_token_id=IGNORE_INDEX,
        pad_to_multiple_of=None if pad_to_max_length else cfg.pad_to_multiple_of,
    )


def build_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dataset: Dataset,
    cfg: TrainConfig,
    output_dir: str,
    report_to: str = "none",
    pad_to_max_length: bool = False,
    plan: TrainPlan | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> Trainer:
    """The Trainer our train step uses (see the module docstring).

    Args:
        model: the LoRA-wrapped model.
        tokenizer: pads the batches.
        dataset: tokenized examples (:func:`steps.core.train.process.tokenize`).
        cfg: the recipe.
        output_dir: where checkpoints go.
        report_to: transformers ``report_to`` ("wandb" when a tracker run is active).
        pad_to_max_length: pad every batch to ``cfg.max_length`` in random order instead: the
            naive baseline that ``bench/train_throughput.py`` compares against.
        plan: micro-batch, accumulation and levers for this process (default: the recipe
            taken literally, :func:`default_plan`).
        callbacks: more Trainer callbacks.
    """
    import torch
    from transformers import TrainingArguments

    plan = plan or default_plan(cfg)
    if torch.cuda.is_available() and not pad_to_max_length:
        # With dynamic padding every new sequence length makes cuDNN's attention build a new
        # plan; on an H200 that made our step 0.71x the fixed-shape baseline instead of faster
        # (docs/benchmarks.md). PyTorch's flash/efficient SDPA kernels have no such cost.
        torch.backends.cuda.enable_cudnn_sdp(False)
    if plan.gradient_checkpointing:
        model.enable_input_require_grads()
    every = cfg.checkpoint_every_steps
    args = TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=plan.micro_batch,
        gradient_accumulation_steps=plan.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of all steps
        weight_decay=cfg.weight_decay,
        **_sampling(cfg.group_by_length and not pad_to_max_length),
        **_checkpointing(plan.gradient_checkpointing),
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if every else "no",
        save_steps=every or 500,
        save_total_limit=cfg.checkpoints_kept,
        report_to=report_to,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=device() == "cpu",
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        torch_compile=plan.torch_compile,
        **_mixed_precision(cfg.precision),
    )
    return _trainer_class()(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=_collator(tokenizer, cfg, plan, pad_to_max_length),
        callbacks=list(callbacks),
    )
