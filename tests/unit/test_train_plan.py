"""Throughput levers: the batch split, memory-driven choices, packing, CPU fall-backs."""

from __future__ import annotations

import logging

import pytest

from steps.core.config import LORA_TARGETS, LoraSettings
from steps.core.modeling import load_model
from steps.core.train.plan import (
    GIB,
    activation_bytes_per_token,
    apply_liger,
    plan_training,
)
from steps.core.train.process import apply_lora

pytestmark = pytest.mark.usefixtures("one_torch_thread")
T4_BYTES = 15 * GIB  # what torch reports for a Kaggle T4 (15,360 MiB)
H200_BYTES = 140 * GIB


@pytest.fixture(scope="module")
def tiny_lora_model(tiny_base_dir, tiny_config):
    return apply_lora(load_model(tiny_base_dir), tiny_config.lora)


@pytest.fixture(scope="module")
def qwen3_1_7b():
    """Qwen3-1.7B's shapes with LoRA r16 on the meta device: sizes without weights."""
    import peft
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
        num_attention_heads=16, num_key_value_heads=8, head_dim=128, tie_word_embeddings=True,
    )
    with torch.device("meta"):
        model = Qwen3ForCausalLM._from_config(config, dtype=torch.float16)
    lora = LoraSettings()
    return peft.get_peft_model(model, peft.LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, target_modules=LORA_TARGETS, task_type="CAUSAL_LM"
    ))


@pytest.mark.parametrize(
    ("batch_size", "grad_accum", "world", "micro", "accum"),
    [(4, 4, 1, 4, 4), (4, 4, 2, 4, 2), (4, 1, 2, 2, 1), (8, 3, 2, 6, 2), (16, 1, 4, 4, 1)],
)
def test_the_global_batch_is_kept_for_any_number_of_processes(
    tiny_lora_model, tiny_config, batch_size, grad_accum, world, micro, accum
) -> None:
    cfg = tiny_config.train.model_copy(update={"batch_size": batch_size, "grad_accum": grad_accum})

    plan = plan_training(cfg, tiny_lora_model, world, device_memory=None)

    assert (plan.micro_batch, plan.grad_accum) == (micro, accum)
    assert plan.global_batch == batch_size * grad_accum


def test_a_global_batch_that_does_not_split_is_refused(tiny_lora_model, tiny_config) -> None:
    cfg = tiny_config.train.model_copy(update={"batch_size": 5, "grad_accum": 1})
    with pytest.raises(ValueError, match=r"= 5 examples per optimizer step .* over 2 processes"):
        plan_training(cfg, tiny_lora_model, 2, device_memory=None)


def test_on_a_cpu_auto_checkpointing_is_off_and_cuda_levers_fall_back(
    tiny_lora_model, tiny_config, caplog
) -> None:
    cfg = tiny_config.train.model_copy(update={
        "gradient_checkpointing": "auto", "auto_micro_batch": True, "torch_compile": True,
        "attn_implementation": "flex_attention",
    })
    with caplog.at_level(logging.INFO, logger="steps.core.train.plan"):
        plan = plan_training(cfg, tiny_lora_model, 1, device_memory=None)
        assert apply_liger(tiny_lora_model, wanted=True) is False

    assert not plan.gradient_checkpointing and not plan.torch_compile
    assert plan.attn_implementation == "sdpa"  # flex_attention has no CPU backward
    assert plan.micro_batch == cfg.batch_size
    assert "torch_compile: off on a CPU" in caplog.text
    assert "liger_kernel: off on a CPU" in caplog.text
    assert "flex_attention trains on CUDA only" in caplog.text


def test_recipe_on_a_t4_checkpoints_at_micro_batch_4(qwen3_1_7b, tiny_config) -> None:
    recipe = tiny_config.train.model_copy(update={
        "batch_size": 4, "grad_accum": 4, "max_length": 1024, "gradient_checkpointing": "auto",
    })

    plan = plan_training(recipe, qwen3_1_7b, 2, device_memory=T4_BYTES)

    # 4 × 1024 tokens need ~22 GB of activations without checkpointing; ~12 GiB with it
    assert (plan.micro_batch, plan.grad_accum, plan.gradient_checkpointing) == (4, 2, True)
    assert plan.estimated_gib < 15 * 0.92


def test_fused_cross_entropy_frees_room_for_a_larger_micro_batch(qwen3_1_7b, tiny_config) -> None:
    recipe = tiny_config.train.model_copy(update={
        "batch_size": 4, "grad_accum": 4, "max_length": 1024, "gradient_checkpointing": "auto",
        "auto_micro_batch": True,
    })

    without = plan_training(recipe, qwen3_1_7b, 2, device_memory=T4_BYTES)
    fused = plan_training(recipe, qwen3_1_7b, 2, device_memory=T4_BYTES, liger_active=True)

    assert (without.micro_batch, without.gradient_checkpointing) == (4, True)
    assert (fused.micro_batch, fused.grad_accum, fused.gradient_checkpointing) == (8, 1, True)


def test_a_big_gpu_takes_the_whole_share_without_checkpointing(qwen3_1_7b, tiny_config) -> None:
    recipe = tiny_config.train.model_copy(update={
        "batch_size": 4, "grad_accum": 4, "max_length": 1024, "gradient_checkpointing": "auto",
        "auto_micro_batch": True,
    })

    plan = plan_training(recipe, qwen3_1_7b, 1, device_memory=H200_BYTES)

    assert (plan.micro_batch, plan.grad_accum, plan.gradient_checkpointing) == (16, 1, False)


def _saved_bytes(config, tokens: int) -> int:
    """Bytes the autograd graph keeps for one LoRA forward (weights excluded), measured."""
    import peft
    import torch
    from transformers import Qwen3ForCausalLM

    model = Qwen3ForCausalLM._from_config(config, dtype=torch.bfloat16)
    model = peft.get_peft_model(model, peft.LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules=LORA_TARGETS,
        task_type="CAUSAL_LM",
    ))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def keep(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    ids = torch.randint(0, config.vocab_size, (1, tokens))
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(input_ids=ids, labels=ids, use_cache=False)
    return sum(saved.values())


def test_the_activation_estimate_matches_a_measurement() -> None:
    from transformers import Qwen3Config

    def config(layers: int) -> Qwen3Config:
        return Qwen3Config(
            vocab_size=256, hidden_size=512, intermediate_size=1536, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, head_dim=128,
        )

    per_layer = [
        (_saved_bytes(config(2), t) - _saved_bytes(config(1), t)) for t in (64, 128)
    ]
    measured = (per_layer[1] - per_layer[0]) / 64  # per token, one layer
    estimate = activation_bytes_per_token(config(1), 2, checkpointing=False)

    assert estimate == pytest.approx(measured, rel=0.1)


def _batches(tokenizer, rows, max_length):
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    from steps.core.train.hf_trainer import IGNORE_INDEX
    from steps.core.train.process import tokenize

    features = list(tokenize(rows, tokenizer, max_length))
    padded = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)
    packed = DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE_INDEX)
    return padded(features), packed(features)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_batches_give_the_padded_loss(
    tiny_base_dir, tiny_split, attention
) -> None:
    import torch

    from steps.core.modeling import load_tokenizer

    tokenizer = load_tokenizer(tiny_base_dir)
    padded, packed = _batches(tokenizer, tiny_split.train[:4], 96)
    model = load_model(tiny_base_dir)
    model.set_attn_implementation(attention)
    assert packed["input_ids"].shape[0] == 1
    assert packed["input_ids"].shape[1] == int(padded["attention_mask"].sum())  # no padding

    with torch.no_grad():
        padded_loss = model(**padded, use_cache=False).loss
        packed_loss = model(**packed, use_cache=False).loss
        # the same tokens without position ids would attend across examples
        crossed = model(input_ids=packed["input_ids"], labels=packed["labels"]).loss

    torch.testing.assert_close(packed_loss, padded_loss, atol=1e-5, rtol=1e-5)
    assert abs(crossed - padded_loss) > 1e-4


def test_packed_training_takes_the_same_steps_as_padded_training(
    tiny_base_dir, tiny_split, tiny_config, tmp_path
) -> None:
    from steps.core.train.launch import train_lora

    recipe = tiny_config.train.model_copy(
        update={"batch_size": 8, "max_length": 128, "logging_steps": 1, "max_steps": 3}
    )
    rows = tiny_split.train[:24]

    padded = train_lora(tiny_base_dir, rows, tiny_config.lora, recipe, tmp_path / "padded")
    packed = train_lora(tiny_base_dir, rows, tiny_config.lora,
                        recipe.model_copy(update={"packing": True}), tmp_path / "packed")

    def losses(result):
        return [e["loss"] for e in result.log_history if "loss" in e]

    assert packed.plan["packing"] and not padded.plan["packing"]
    # same examples per step, same tokens supervised: equal up to float summation order (which
    # Adam's normalisation amplifies a little from step to step)
    assert losses(packed)[0] == pytest.approx(losses(padded)[0], abs=1e-5)
    assert losses(packed) == pytest.approx(losses(padded), abs=1e-3)
