"""Training throughput: the train step's recipe, levers on and off, against a naive baseline.

Every arm trains the same LoRA on the same randomly initialised model (built from a config, no
download) over the same examples for one epoch, so all arms process the same real tokens. Each
arm runs in its own process (liger-kernel patches and compile caches stay in it) and a failing
arm is reported without losing the others. Arms (``--arm NAME`` or ``--arm 'NAME:{json}'``,
the JSON overriding TrainConfig fields, plus ``"pad_to_max_length": true`` for padding):

  baseline  every batch padded to max_length, random order, every lever off: a plain Trainer
  recipe    the config's train section as the train step runs it
  levers    the recipe with every lever on: packing, liger-kernel, torch.compile,
            gradient checkpointing 'auto' and the micro-batch chosen from the memory estimate

Printed: real (non-pad) tokens/s, the ratio to the first arm, peak memory and MFU = real
tokens/s × model FLOPs per token ÷ the GPU's dense fp16/bf16 peak. Model FLOPs per token count
the useful work only: forward 2N + backward 2N (activation gradients; the base is frozen) over
the N matmul parameters, plus causal attention over each example's own length; recomputation
under gradient checkpointing is not counted. Example (GPU, production recipe):

  python bench/train_throughput.py --shape qwen3-1.7b --config pipelines/configs/nizami-1.7b.yaml
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Architectures as published in each model's config.json; weights are random.
SHAPES = {
    "tiny": dict(arch="qwen3", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=1024,
                 tie_word_embeddings=True),
    "smollm2-135m": dict(arch="llama", hidden_size=576, intermediate_size=1536,
                         num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         vocab_size=49152, tie_word_embeddings=True),
    "qwen3-1.7b": dict(arch="qwen3", hidden_size=2048, intermediate_size=6144,
                       num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, vocab_size=151936, tie_word_embeddings=True,
                       rope_theta=1_000_000.0),
}
# Dense fp16/bf16 tensor-core peaks (vendor datasheets), for MFU.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "T4": 65e12}
OFF = {"packing": False, "liger_kernel": False, "torch_compile": False, "auto_micro_batch": False,
       "group_by_length": False}
PRESETS = {
    "baseline": OFF | {"pad_to_max_length": True},
    "recipe": {},
    "levers": {"packing": True, "liger_kernel": True, "torch_compile": True,
               "gradient_checkpointing": "auto", "auto_micro_batch": True},
}


def parse_arm(text: str) -> tuple[str, dict]:
    name, _, spec = text.partition(":")
    if spec:
        return name, json.loads(spec)
    if name not in PRESETS:
        raise SystemExit(f"--arm {name}: not one of {sorted(PRESETS)} and no JSON overrides")
    return name, PRESETS[name]


def shape_config(shape: str, **overrides):
    """The transformers config of ``shape`` (:data:`SHAPES`), with ``overrides`` on top."""
    from transformers import LlamaConfig, Qwen3Config

    spec = {"max_position_embeddings": 8192} | SHAPES[shape] | overrides
    arch = spec.pop("arch")
    return (Qwen3Config if arch == "qwen3" else LlamaConfig)(**spec)


def build_model(shape: str, dtype, attn: str):
    import torch
    from transformers import AutoModelForCausalLM

    from steps.core.modeling import device

    config = shape_config(shape)
    torch.manual_seed(0)
    with torch.device(device()):
        return AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attn)


def synthetic_examples(n: int, lengths: str, max_length: int, vocab: int, seed: int) -> list:
    """Token sequences whose lengths follow ``lengths``; the first 30 % of each is prompt.

    ``data``: the sample dataset's lengths (rendered with the tiny byte-level tokenizer);
    ``cot``: log-normal, median 450 tokens, clipped to [64, max_length], a stand-in for
    Azerbaijani chain-of-thought answers (Qwen's BPE spends ~4 tokens per Azerbaijani word).
    """
    from steps.core.train.hf_trainer import IGNORE_INDEX

    rng = random.Random(seed)
    if lengths == "data":
        from steps.core.data.examples import assistant_text, read_examples
        from steps.core.modeling import build_tiny_tokenizer

        tokenizer = build_tiny_tokenizer()
        rows = read_examples(ROOT / "data" / "nizami.jsonl")
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
        examples.append({"input_ids": ids, "attention_mask": [1] * size,
                         "labels": [IGNORE_INDEX] * prompt + ids[prompt:]})
    return examples


def model_flops_per_token(config, examples: list) -> float:
    """Useful FLOPs per real token (see the module docstring)."""
    h, layers = config.hidden_size, config.num_hidden_layers
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    hd = getattr(config, "head_dim", None) or h // heads
    matmul = layers * (h * heads * hd * 2 + h * kv * hd * 2 + 3 * h * config.intermediate_size)
    matmul += h * config.vocab_size  # lm_head
    lengths = [len(e["input_ids"]) for e in examples]
    per_token_context = sum(n * n for n in lengths) / sum(lengths)  # token-weighted length
    attention_fwd = layers * 2 * heads * hd * per_token_context  # causal: QK^T and AV
    return 4 * matmul + 3 * attention_fwd


def run_arm(args, overrides: dict) -> dict:
    """One arm, in this process: warm up, then time one epoch."""
    import torch
    import transformers
    from transformers import TrainerCallback

    from steps.core.config import load_config
    from steps.core.modeling import build_tiny_tokenizer, device
    from steps.core.train.hf_trainer import build_trainer
    from steps.core.train.plan import (
        apply_liger,
        attention_here,
        device_memory_bytes,
        plan_training,
    )
    from steps.core.train.process import apply_lora

    transformers.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = dict(overrides)
    pad = overrides.pop("pad_to_max_length", False)
    full = load_config(args.config)
    cfg = full.train.model_copy(update={
        "epochs": 1.0, "max_steps": None, "warmup_ratio": 0.0, "logging_steps": 10_000,
        "checkpoint_every_steps": None, **({"batch_size": args.batch_size} if args.batch_size
                                           else {}), **overrides,
    })
    cfg = type(cfg).model_validate(cfg.model_dump())
    on_gpu = device() == "cuda"
    if cfg.precision == "bf16" and on_gpu and torch.cuda.get_device_capability() < (8, 0):
        cfg = cfg.model_copy(update={"precision": "fp16"})
    if not on_gpu:
        cfg = cfg.model_copy(update={"precision": "fp32"})
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.precision, torch.float32)
    if cfg.gradient_checkpointing == "auto" and pad:  # the baseline has no memory model
        cfg = cfg.model_copy(update={"gradient_checkpointing": on_gpu})

    model = build_model(args.shape, dtype, attention_here(cfg.attn_implementation))
    liger = apply_liger(model, cfg.liger_kernel)
    peft_model = apply_lora(model, full.lora)
    plan = plan_training(cfg, peft_model, 1, device_memory_bytes(), liger)
    tokenizer = build_tiny_tokenizer()
    examples = synthetic_examples(args.examples, args.lengths, cfg.max_length,
                                  model.config.vocab_size, seed=0)
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            if on_gpu:
                torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_step_end(self, *a, **k):
            if on_gpu:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.start)

    with tempfile.TemporaryDirectory() as scratch:
        warm = examples[: plan.global_batch * 2]
        build_trainer(peft_model, tokenizer, warm, cfg.model_copy(update={"max_steps": 2}),
                      scratch, pad_to_max_length=pad, plan=plan).train()
        trainer = build_trainer(peft_model, tokenizer, examples, cfg, scratch,
                                pad_to_max_length=pad, plan=plan, callbacks=[StepTimer()])
        if on_gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        output = trainer.train()
        if on_gpu:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    real = sum(len(e["input_ids"]) for e in examples)
    return {
        "seconds": seconds, "tokens_per_s": real / seconds, "steps": output.global_step,
        "loss": output.training_loss,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if on_gpu else None,
        "step_s_first": times[0], "step_s_median": sorted(times)[len(times) // 2],
        "plan": plan.model_dump(), "padded": pad, "precision": cfg.precision,
        "flops_per_token": model_flops_per_token(model.config, examples),
        "mean_len": real / len(examples),
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def spawn_arm(args, name: str, overrides: dict, timeout: float) -> dict:
    """Run one arm in a fresh process; a failure or timeout becomes an error entry."""
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "arm.json"
        command = [sys.executable, __file__, "--worker", json.dumps(overrides), "--json", str(out),
                   "--shape", args.shape, "--config", args.config, "--examples",
                   str(args.examples), "--lengths", args.lengths]
        if args.batch_size:
            command += ["--batch-size", str(args.batch_size)]
        if args.threads:
            command += ["--threads", str(args.threads)]
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"arm": name, "error": f"timed out after {timeout:.0f} s"}
        log = done.stdout + done.stderr
        if args.log_dir:
            Path(args.log_dir, f"arm_{name}.log").write_text(log)
        if done.returncode or not out.is_file():
            tail = " | ".join(log.strip().splitlines()[-3:])
            return {"arm": name, "error": f"exit {done.returncode}: {tail}"}
        result = json.loads(out.read_text())
        return {"arm": name, "overrides": overrides,
                "wall_s": time.perf_counter() - started} | result


def describe_machine() -> tuple[str, bool]:
    import torch

    on_gpu = torch.cuda.is_available()
    if on_gpu:
        return torch.cuda.get_device_name(), True
    cpuinfo = Path("/proc/cpuinfo")
    models = [line.split(":", 1)[1].strip() for line in
              (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else [])
              if line.startswith("model name")]
    model = models[0] if models else platform.processor() or "cpu"
    return f"{model} ({os.cpu_count()} cores)", False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=SHAPES, default="tiny")
    parser.add_argument("--config", default="pipelines/configs/demo.yaml",
                        help="domain config whose train/lora sections are the recipe")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--lengths", choices=["data", "cot"], default="data")
    parser.add_argument("--batch-size", type=int, help="override the config's batch size")
    parser.add_argument("--arm", action="append", help="NAME or 'NAME:{json overrides}'")
    parser.add_argument("--arm-timeout", type=float, default=1800.0, help="seconds per arm")
    parser.add_argument("--total-timeout", type=float, default=7200.0,
                        help="seconds for all arms; arms that would start later are skipped")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds over all arms; the table reports each arm's fastest")
    parser.add_argument("--threads", type=int, help="torch CPU threads per arm")
    parser.add_argument("--log-dir", help="write each arm's full log here")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        Path(args.json).write_text(json.dumps(run_arm(args, json.loads(args.worker))))
        return

    import torch

    for folder in (args.log_dir, args.json and Path(args.json).parent):
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
    arms = [parse_arm(a) for a in (args.arm or ["baseline", "recipe", "levers"])]
    machine, on_gpu = describe_machine()
    threads = args.threads or torch.get_num_threads()
    print(f"machine   {machine}; torch {torch.__version__}; {threads} CPU threads per arm")
    print(f"recipe    {args.config} at {args.shape} shapes, {args.examples} examples, lengths "
          f"'{args.lengths}', random weights")
    peak = next((v for k, v in PEAK_FLOPS.items() if k in machine), None) if on_gpu else None
    deadline = time.monotonic() + args.total_timeout
    runs: list[list[dict]] = [[] for _ in arms]
    print(HEADER, flush=True)
    for round_ in range(args.repeat):  # round-robin, so that load drifts hit every arm alike
        for (name, overrides), tries in zip(arms, runs, strict=True):
            left = deadline - time.monotonic()
            if left < 30:
                result = {"arm": name, "error": "skipped: the total time limit is reached"}
            else:
                result = spawn_arm(args, name, overrides, min(args.arm_timeout, left))
            tries.append(result | {"round": round_ + 1})
            label = f"{name} #{round_ + 1}" if args.repeat > 1 else name
            print(row(result | {"arm": label}, _best(runs[0]), peak), flush=True)
            _write_json(args, machine, runs)
    best = [_best(t) for t in runs]
    print(f"best of {args.repeat} rounds per arm:" if args.repeat > 1 else "results:")
    print(HEADER)
    for result in best:
        print(row(result, best[0], peak))
    _write_json(args, machine, runs)
    if "error" not in best[0]:
        print(f"baseline  {best[0]['arm']}: {best[0]['params_m']:.1f} M params, mean "
              f"length {best[0]['mean_len']:.0f} tokens; ratio = tokens/s over the baseline's")


def _best(tries: list[dict]) -> dict | None:
    """The fastest successful try of an arm, else its last (failed) one."""
    done = [t for t in tries if "error" not in t]
    if not tries:
        return None
    return max(done, key=lambda t: t["tokens_per_s"]) if done else tries[-1]


def _write_json(args, machine: str, runs: list[list[dict]]) -> None:
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine, "shape": args.shape, "config": args.config,
            "lengths": args.lengths, "examples": args.examples, "repeat": args.repeat,
            "best": [_best(t) for t in runs], "runs": runs,
        }, indent=2))


HEADER = (f"{'arm':<14} {'tok/s':>9} {'ratio':>6} {'MFU':>6} {'peak GiB':>8} {'time s':>7} "
          f"{'step s 1st/med':>15} {'loss':>6}  plan")


def row(r: dict, base: dict | None, peak: float | None) -> str:
    """One line of the results table (adds ``ratio`` and ``mfu`` to ``r``)."""
    if base is not None and "error" in base:
        base = None
    if "error" in r:
        return f"{r['arm']:<14} FAILED: {r['error']}"
    r["ratio"] = r["tokens_per_s"] / base["tokens_per_s"] if base else None
    r["mfu"] = r["tokens_per_s"] * r["flops_per_token"] / peak if peak else None
    p = r["plan"]
    levers = [k for k in ("packing", "liger_kernel", "torch_compile", "gradient_checkpointing")
              if p[k]]
    ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
    mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] else "n/a"
    memory = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] else "-"
    return (f"{r['arm']:<14} {r['tokens_per_s']:>9.0f} {ratio:>6} {mfu:>6} {memory:>8} "
            f"{r['seconds']:>7.1f} {r['step_s_first']:>7.2f}/{r['step_s_median']:<7.2f} "
            f"{r['loss']:>6.3f}  micro {p['micro_batch']} x accum {p['grad_accum']}"
            f"{' padded' if r['padded'] else ''}, {r['precision']}, {', '.join(levers) or '-'}")

if __name__ == "__main__":
    main()
