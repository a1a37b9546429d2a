"""Training throughput: our train step's Trainer setup against a naive baseline.

Both arms train the same LoRA on the same randomly initialised model (built from a config, no
download) over the same examples for one epoch, so they process the same real tokens:

  baseline   every batch padded to max_length, batches in random order (no length grouping)
  candidate  steps/core/training.build_trainer as the train step uses it: dynamic padding to a
             multiple of 8 and length-grouped batches

Printed: tokens/s (real, non-pad tokens), peak memory, MFU (model FLOPs on real tokens over the
GPU's dense peak) and the candidate/baseline ratio. Example (GPU, production recipe):

  python bench/train_throughput.py --shape qwen3-1.7b --config pipelines/configs/nizami-1.7b.yaml
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from steps.core.config import LoraSettings, TinyModelConfig, load_config  # noqa: E402
from steps.core.modeling import build_tiny_tokenizer, device  # noqa: E402
from steps.core.training import IGNORE_INDEX, apply_lora, build_trainer  # noqa: E402

# Architectures as published in each model's config.json; weights are random.
SHAPES = {
    "tiny": None,  # TinyModelConfig defaults (the tests' model)
    "smollm2-135m": dict(
        arch="llama",
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
        tie_word_embeddings=True,
    ),
    "qwen3-1.7b": dict(
        arch="qwen3",
        hidden_size=2048,
        intermediate_size=6144,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        vocab_size=151936,
        tie_word_embeddings=True,
        rope_theta=1_000_000.0,
    ),
}
# Dense fp16/bf16 tensor-core peaks (vendor datasheets), for MFU.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "T4": 65e12}


def build_model(shape: str, dtype: torch.dtype, attn: str = "sdpa"):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

    spec = dict(SHAPES[shape] or {})
    if shape == "tiny":
        t = TinyModelConfig()
        spec = dict(
            arch="qwen3",
            hidden_size=t.hidden_size,
            intermediate_size=t.intermediate_size,
            num_hidden_layers=t.num_hidden_layers,
            num_attention_heads=t.num_attention_heads,
            num_key_value_heads=t.num_key_value_heads,
            head_dim=t.head_dim,
            vocab_size=t.vocab_size,
            tie_word_embeddings=True,
        )
    arch = spec.pop("arch")
    config_cls, model_cls = (
        (Qwen3Config, Qwen3ForCausalLM) if arch == "qwen3" else (LlamaConfig, LlamaForCausalLM)
    )
    config = config_cls(max_position_embeddings=8192, **spec)
    torch.manual_seed(0)
    with torch.device(device()):
        model = model_cls._from_config(config, dtype=dtype, attn_implementation=attn)
    return model, config


def synthetic_examples(n: int, lengths: str, max_length: int, vocab: int, seed: int) -> list:
    """Token sequences whose lengths follow ``lengths``; the first 30 % of each is prompt.

    ``data``: the sample dataset's lengths (rendered with the tiny byte-level tokenizer);
    ``cot``: log-normal, median 450 tokens, clipped to [64, max_length], a stand-in for
    Azerbaijani chain-of-thought answers (Qwen's BPE spends ~4 tokens per Azerbaijani word).
    """
    rng = random.Random(seed)
    if lengths == "data":
        from steps.core.data import assistant_text, read_examples

        tokenizer = build_tiny_tokenizer()
        rows = read_examples(Path(__file__).resolve().parents[1] / "data" / "nizami.jsonl")
        pool = [len(tokenizer(r.question + assistant_text(r))["input_ids"]) + 12 for r in rows]
        sizes = [min(max_length, rng.choice(pool)) for _ in range(n)]
    else:
        sizes = [
            int(min(max_length, max(64, rng.lognormvariate(math.log(450), 0.6)))) for _ in range(n)
        ]
    examples = []
    for size in sizes:
        ids = [rng.randrange(10, vocab) for _ in range(size)]
        prompt = int(0.3 * size)
        examples.append(
            {
                "input_ids": ids,
                "attention_mask": [1] * size,
                "labels": [IGNORE_INDEX] * prompt + ids[prompt:],
            }
        )
    return examples


def flops_per_token(config, mean_len: float, gradient_checkpointing: bool) -> float:
    """Forward 2N + backward (activation grads only; base frozen) 2N, + 2N recompute with GC."""
    h, L = config.hidden_size, config.num_hidden_layers
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    hd = getattr(config, "head_dim", None) or h // heads
    per_layer = h * heads * hd * 2 + h * kv * hd * 2 + 3 * h * config.intermediate_size
    n_matmul = L * per_layer + h * config.vocab_size  # + lm_head
    attention = L * 2 * 2 * mean_len * heads * hd  # QK^T and AV, causal half, fwd
    passes = 3 if gradient_checkpointing else 2  # in units of one forward
    return passes * (2 * n_matmul + attention)


class StepTimer:
    """Wall time of every optimizer step (synchronised), to separate warm-up from steady state."""

    def __init__(self):
        self.times: list[float] = []

    def callback(self):
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                timer.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                timer.times.append(time.perf_counter() - timer.start)

        return _Callback()


def run_arm(name, model, tokenizer, examples, cfg, lora, pad_to_max):
    arm_cfg = cfg.model_copy(update={"group_by_length": not pad_to_max and cfg.group_by_length})
    peft_model = apply_lora(model, lora)
    with tempfile.TemporaryDirectory() as scratch:
        warm = build_trainer(
            peft_model,
            tokenizer,
            examples[: cfg.batch_size * cfg.grad_accum * 2],
            arm_cfg.model_copy(update={"max_steps": 2}),
            scratch,
            pad_to_max_length=pad_to_max,
        )
        warm.train()
        trainer = build_trainer(
            peft_model, tokenizer, examples, arm_cfg, scratch, pad_to_max_length=pad_to_max
        )
        timer = StepTimer()
        trainer.add_callback(timer.callback())
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        output = trainer.train()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    real = sum(len(e["input_ids"]) for e in examples)
    base = peft_model.unload()  # the same base weights serve the next arm
    return base, {
        "arm": name,
        "seconds": seconds,
        "tokens_per_s": real / seconds,
        "steps": output.global_step,
        "loss": output.training_loss,
        "peak_mem_gib": peak,
        "step_s_first": timer.times[0],
        "step_s_median": sorted(timer.times)[len(timer.times) // 2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=SHAPES, default="tiny")
    parser.add_argument(
        "--config",
        default="pipelines/configs/demo.yaml",
        help="domain config whose train/lora sections are the recipe",
    )
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--lengths", choices=["data", "cot"], default="data")
    parser.add_argument("--batch-size", type=int, help="override the config's batch size")
    parser.add_argument("--pad-multiple", type=int, help="override pad_to_multiple_of")
    parser.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument(
        "--no-cudnn-sdpa", action="store_true", help="keep PyTorch's SDPA off its cuDNN backend"
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.no_cudnn_sdpa:
        torch.backends.cuda.enable_cudnn_sdp(False)

    import transformers

    transformers.logging.set_verbosity_error()
    full = load_config(args.config)
    cfg = full.train.model_copy(
        update={"epochs": 1.0, "max_steps": None, "warmup_ratio": 0.0, "logging_steps": 10_000}
    )
    if args.batch_size:
        cfg = cfg.model_copy(update={"batch_size": args.batch_size})
    if args.pad_multiple:
        cfg = cfg.model_copy(update={"pad_to_multiple_of": args.pad_multiple})
    if args.pad_multiple:
        cfg = cfg.model_copy(update={"pad_to_multiple_of": args.pad_multiple})
    on_gpu = device() == "cuda"
    if cfg.precision == "bf16" and on_gpu and torch.cuda.get_device_capability() < (8, 0):
        cfg = cfg.model_copy(update={"precision": "fp16"})
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.precision, torch.float32)
    if not on_gpu:
        dtype, cfg = torch.float32, cfg.model_copy(update={"precision": "fp32"})
    lora: LoraSettings = full.lora

    model, config = build_model(args.shape, dtype, args.attn)
    tokenizer = build_tiny_tokenizer()
    examples = synthetic_examples(
        args.examples, args.lengths, cfg.max_length, config.vocab_size, seed=0
    )
    mean_len = sum(len(e["input_ids"]) for e in examples) / len(examples)
    gpu = torch.cuda.get_device_name() if on_gpu else platform.processor() or "cpu"
    print(f"machine   {gpu}; torch {torch.__version__}; {torch.get_num_threads()} CPU threads")
    print(
        f"model     {args.shape}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M "
        f"params, {dtype}, LoRA r={lora.r} on {len(lora.target_modules)} projections"
    )
    print(
        f"recipe    {args.config}: batch {cfg.batch_size} x accum {cfg.grad_accum}, "
        f"max_length {cfg.max_length}, precision {cfg.precision}, "
        f"gradient checkpointing {cfg.gradient_checkpointing}, pad multiple "
        f"{cfg.pad_to_multiple_of}, attention {args.attn}"
        f"{' (no cuDNN SDPA)' if args.no_cudnn_sdpa else ''}"
    )
    print(
        f"data      {len(examples)} examples, lengths '{args.lengths}': mean {mean_len:.0f}, "
        f"max {max(len(e['input_ids']) for e in examples)} tokens"
    )

    results = []
    for name, pad in (
        ("baseline (pad to max_length, no grouping)", True),
        ("candidate (our train step)", False),
    ):
        model, result = run_arm(name, model, tokenizer, examples, cfg, lora, pad)
        results.append(result)
    peak = next((v for k, v in PEAK_FLOPS.items() if k in gpu), None) if on_gpu else None
    fpt = flops_per_token(config, mean_len, cfg.gradient_checkpointing)
    for r in results:
        r["mfu"] = r["tokens_per_s"] * fpt / peak if peak else None
        mfu = f"{100 * r['mfu']:.1f} %" if r["mfu"] else "n/a"
        print(
            f"{r['arm']:<44} {r['tokens_per_s']:>10.0f} tok/s  {r['seconds']:7.1f} s  "
            f"peak {r['peak_mem_gib']:.1f} GiB  MFU {mfu}  optimizer step first/median "
            f"{r['step_s_first']:.2f}/{r['step_s_median']:.2f} s  loss {r['loss']:.3f}"
        )
    ratio = results[1]["tokens_per_s"] / results[0]["tokens_per_s"]
    print(f"ratio     candidate / baseline = {ratio:.2f}x tokens/s")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": gpu,
                    "shape": args.shape,
                    "config": args.config,
                    "lengths": args.lengths,
                    "examples": len(examples),
                    "mean_len": mean_len,
                    "ratio": ratio,
                    "arms": results,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
