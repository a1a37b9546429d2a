"""Merging the adapter: a plain model directory that behaves exactly like base + adapter."""

from __future__ import annotations

import json

import pytest

from steps.core.modeling import load_model, load_tokenizer
from steps.core.package.merging import merge_adapter

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def merged_dir(tiny_base_dir, tiny_adapter, tmp_path_factory, one_torch_thread):
    out_dir = tmp_path_factory.mktemp("merged") / "model"
    return merge_adapter(tiny_base_dir, tiny_adapter.adapter_dir, out_dir, dtype="float32")


@pytest.fixture(scope="module")
def sample(tiny_base_dir, tiny_split):
    tokenizer = load_tokenizer(tiny_base_dir)
    rows = tiny_split.held_out[:2]
    return tokenizer([r.prompt + r.completion for r in rows], return_tensors="pt", padding=True)


def _logits(model, sample):
    import torch

    model.eval()
    with torch.no_grad():
        return model(**sample.to(model.device)).logits


def test_merged_model_loads_without_peft(merged_dir) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(merged_dir)

    assert type(model).__name__ == "Qwen3ForCausalLM"
    assert not [name for name, _ in model.named_parameters() if "lora" in name]
    assert not (merged_dir / "adapter_config.json").exists()
    assert not (merged_dir / "adapter_model.safetensors").exists()


def test_merged_logits_match_base_plus_adapter(
    merged_dir, tiny_base_dir, tiny_adapter, sample
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = _logits(AutoModelForCausalLM.from_pretrained(merged_dir), sample)
    with_adapter = _logits(
        PeftModel.from_pretrained(load_model(tiny_base_dir), tiny_adapter.adapter_dir), sample
    )
    base = _logits(load_model(tiny_base_dir), sample)

    torch.testing.assert_close(merged, with_adapter, atol=1e-4, rtol=1e-4)
    # The adapter must matter, or the comparison above proves nothing.
    assert (merged - base).abs().max() > 1e-3


def test_tokenizer_is_saved_alongside(merged_dir, tiny_base_dir) -> None:
    saved, base = load_tokenizer(merged_dir), load_tokenizer(tiny_base_dir)

    assert saved.get_vocab() == base.get_vocab()
    assert saved.chat_template == base.chat_template
    assert saved.eos_token == "<|im_end|>"


def test_merged_weights_are_saved_in_the_requested_dtype(
    tiny_base_dir, tiny_adapter, tmp_path
) -> None:
    from safetensors import safe_open

    out_dir = merge_adapter(tiny_base_dir, tiny_adapter.adapter_dir, tmp_path, dtype="bfloat16")

    with safe_open(str(out_dir / "model.safetensors"), "pt") as weights:
        dtypes = {str(weights.get_tensor(name).dtype) for name in weights.keys()}
    assert dtypes == {"torch.bfloat16"}
    assert json.loads((out_dir / "config.json").read_text())["dtype"] == "bfloat16"
