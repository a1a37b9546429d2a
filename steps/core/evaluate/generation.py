"""Batched greedy generation, shared by evaluation and its benchmark."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


def generate_ids(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    batch_size: int,
    max_new_tokens: int,
) -> list[list[int]]:
    """Greedy completions for ``prompts`` as token ids, batched with left padding.

    Prompts are sorted by their length in tokens and batched in that order, so a batch wastes
    little padding; each completion is cut after its first stop token, and results come back in
    the order of ``prompts``.
    """
    import torch

    tokenizer.padding_side = "left"
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    outputs: list[list[int]] = [[] for _ in prompts]
    stop = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
    stop -= {None, tokenizer.unk_token_id}
    model.eval()
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = tokenizer(
            [prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(model.device)
        with torch.inference_mode():
            generated = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=sorted(stop),
                pad_token_id=tokenizer.pad_token_id,
            )
        for i, row in zip(idx, generated[:, batch["input_ids"].shape[1] :].tolist(), strict=True):
            cut = next((n + 1 for n, token in enumerate(row) if token in stop), len(row))
            outputs[i] = row[:cut]
        log.info("generated %d/%d", min(start + batch_size, len(order)), len(order))
    return outputs


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    batch_size: int,
    max_new_tokens: int,
) -> list[str]:
    """Greedy completions for ``prompts`` as text (special tokens removed)."""
    return decode(tokenizer, generate_ids(model, tokenizer, prompts, batch_size, max_new_tokens))


def decode(tokenizer: PreTrainedTokenizerBase, ids: list[list[int]]) -> list[str]:
    """Generated token ids as text: special tokens removed, surrounding whitespace stripped."""
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids]
