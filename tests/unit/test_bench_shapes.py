"""bench/eval_throughput.py builds its shape models with bench/train_throughput.py's builder."""

import sys

from helpers import ROOT


def test_eval_bench_builds_a_shape_model_with_random_weights():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import eval_throughput
    finally:
        sys.path.remove(str(ROOT / "bench"))
    model, tokenizer, label = eval_throughput.model_and_tokenizer("smollm2-135m", "float32")
    assert label == "smollm2-135m (random weights)"
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert model.config._attn_implementation == "sdpa"
    assert tokenizer("Salam, dünya!")["input_ids"]
