"""LoRA training on the tiny model: what is learned, what stays frozen, what is saved."""

from __future__ import annotations

import json
import logging
import math

import pytest

from steps.core.config import LORA_TARGETS
from steps.core.data.dataset import render
from steps.core.data.examples import Example
from steps.core.modeling import load_model, load_tokenizer
from steps.core.train.hf_trainer import IGNORE_INDEX, NonFiniteLossError, build_trainer
from steps.core.train.process import apply_lora, tokenize, weights_dtype

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer(tiny_base_dir):
    return load_tokenizer(tiny_base_dir)


@pytest.fixture
def short_run(tiny_config):
    """A few optimizer steps with a learning rate high enough to move every adapter weight."""
    return tiny_config.train.model_copy(
        update={
            "max_steps": 3,
            "batch_size": 4,
            "learning_rate": 1e-2,
            "warmup_ratio": 0.0,
            "max_length": 128,
            "logging_steps": 1,
        }
    )


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _long_prompt_row(tokenizer):
    example = Example(id="long", question="Uzun sual " * 200, reasoning="r", answer="a")
    return render(example, tokenizer)


def test_lora_trains_the_adapter_and_leaves_the_base_alone(
    tiny_base_dir, tiny_split, tiny_config, tokenizer, short_run, tmp_path
) -> None:
    import torch

    dataset = tokenize(tiny_split.train[:12], tokenizer, short_run.max_length)
    model = apply_lora(load_model(tiny_base_dir), tiny_config.lora)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)

    trainer = build_trainer(model, tokenizer, dataset, short_run, str(tmp_path))
    trainer.train()

    after = dict(model.named_parameters())
    lora_b = [name for name in after if "lora_B" in name]
    assert len(lora_b) == tiny_config.base_model.tiny.num_hidden_layers * len(LORA_TARGETS)
    for name in lora_b:
        assert not torch.equal(after[name], before[name]), f"{name} did not change"
    for name, param in after.items():
        if "lora_" not in name:
            torch.testing.assert_close(param, before[name], msg=f"base weight {name} changed")
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == short_run.max_steps
    assert all(math.isfinite(loss) for loss in losses)


def test_non_finite_loss_stops_training(
    tiny_base_dir, tiny_split, tiny_config, tokenizer, short_run, tmp_path
) -> None:
    dataset = tokenize(tiny_split.train[:4], tokenizer, short_run.max_length)
    model = apply_lora(load_model(tiny_base_dir), tiny_config.lora)
    # NaN logits give a NaN loss on the first step, on any machine.
    model.get_output_embeddings().register_forward_hook(
        lambda module, inputs, output: output * float("nan")
    )
    trainer = build_trainer(model, tokenizer, dataset, short_run, str(tmp_path))

    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 1") as info:
        trainer.train()

    assert "fp16" in str(info.value)


def test_tokenize_supervises_the_completion_only(tiny_split, tokenizer) -> None:
    row = tiny_split.train[0]
    prompt, completion = _ids(tokenizer, row.prompt), _ids(tokenizer, row.completion)

    record = tokenize([row], tokenizer, max_length=1024)[0]

    assert record["input_ids"] == prompt + completion
    assert record["attention_mask"] == [1] * len(prompt + completion)
    assert record["labels"][: len(prompt)] == [IGNORE_INDEX] * len(prompt)
    supervised = record["labels"][len(prompt) :]
    assert supervised == completion
    assert IGNORE_INDEX not in supervised
    assert row.completion == row.reference + "<|im_end|>\n"
    assert row.completion.startswith("<think>")
    assert tokenizer.decode(supervised) == row.completion


def test_tokenize_truncates_on_the_right(tiny_split, tokenizer, caplog) -> None:
    row = tiny_split.train[0]
    prompt, completion = _ids(tokenizer, row.prompt), _ids(tokenizer, row.completion)
    max_length = len(prompt) + 5

    with caplog.at_level(logging.WARNING, logger="steps.core.train.process"):
        record = tokenize([row], tokenizer, max_length=max_length)[0]

    assert len(record["input_ids"]) == len(record["labels"]) == max_length
    assert record["input_ids"] == (prompt + completion)[:max_length]
    assert record["labels"][len(prompt) :] == completion[:5]
    assert "1 of 1 examples truncated" in caplog.text


def test_row_whose_prompt_fills_max_length_is_dropped(tiny_split, tokenizer) -> None:
    long_row, short_row = _long_prompt_row(tokenizer), tiny_split.train[0]
    max_length = 256
    assert len(_ids(tokenizer, long_row.prompt)) > max_length
    assert len(_ids(tokenizer, short_row.prompt)) < max_length

    dataset = tokenize([long_row, short_row], tokenizer, max_length)

    assert len(dataset) == 1
    assert dataset[0]["input_ids"][:10] == _ids(tokenizer, short_row.prompt)[:10]


def test_prompt_of_exactly_max_length_leaves_nothing_to_learn(tiny_split, tokenizer) -> None:
    row = tiny_split.train[0]

    with pytest.raises(ValueError, match="no trainable example"):
        tokenize([row], tokenizer, max_length=len(_ids(tokenizer, row.prompt)))


def test_all_rows_dropped_raises(tokenizer) -> None:
    with pytest.raises(ValueError, match="truncation to 256 tokens"):
        tokenize([_long_prompt_row(tokenizer)], tokenizer, max_length=256)


def test_train_lora_writes_a_complete_adapter_dir(tiny_adapter, tiny_config, tokenizer) -> None:
    from safetensors import safe_open

    adapter_dir = tiny_adapter.adapter_dir
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert adapter_config["r"] == 16
    assert adapter_config["lora_alpha"] == 32
    assert sorted(adapter_config["target_modules"]) == sorted(LORA_TARGETS)

    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as weights:
        names = list(weights.keys())
        numel = sum(weights.get_tensor(name).numel() for name in names)
    layers = tiny_config.base_model.tiny.num_hidden_layers
    for module in LORA_TARGETS:
        for part in ("lora_A", "lora_B"):
            assert sum(f"{module}.{part}" in n for n in names) == layers, (module, part)
    assert numel == tiny_adapter.metrics["trainable_params"]

    assert (adapter_dir / "tokenizer.json").is_file()
    assert (adapter_dir / "tokenizer_config.json").is_file()
    saved = load_tokenizer(adapter_dir)
    assert saved.get_vocab() == tokenizer.get_vocab()
    assert saved.chat_template == tokenizer.chat_template


def test_train_lora_metrics(tiny_adapter, tiny_config) -> None:
    metrics = tiny_adapter.metrics
    train = tiny_config.train
    examples = tiny_config.data.max_train_examples

    assert metrics["train_examples"] == examples
    assert metrics["train_steps"] == math.ceil(examples / train.batch_size) * train.epochs
    assert metrics["epochs"] == train.epochs
    assert all(math.isfinite(value) for value in metrics.values())
    assert metrics["tokens_per_s"] > 0
    assert 0 < metrics["trainable_params"] < metrics["total_params"]


def test_half_precision_only_on_a_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU fallback")
    assert weights_dtype("fp16") == weights_dtype("bf16") == "float32"
