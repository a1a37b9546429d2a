"""One decode step of the served model, profiled, and the compute-bound limit of decoding.

Loads the model (``--shape qwen3-1.7b``: the random-weight model bench/serve_throughput.py
serves, built once; or ``--model-dir``) in transformers, once per dtype (``--dtypes``; ``best``:
bento/cpu_profile.py's choice for this CPU), fills a KV cache of ``--context`` tokens per
sequence (default: the median held-out reference length, in the model's tokens) with random
keys and values, and times one decode step at batch 1, 8 and 32: the median of ``--steps``
steps, then one more under torch.profiler for where the time goes (linear layers, lm_head
included; attention; the rest) and the top operators by self time.

Then what this machine's matrix products achieve at the batch of the limit (``--limit-batch``,
32): ``torch.matmul`` of the model's own decode shapes (q, k, v, o, gate, up, down, lm_head,
weighted as one token's work) in this dtype, and the same through vLLM-CPU's oneDNN linear (what
the bento runs; from ``.venv-serve`` where it exists). From the faster of the two:

    limit tok/s = GEMM FLOP/s / (2 x non-embedding parameters + 2 x hidden x vocabulary)

the FLOPs of one token's matrix products (attention over the context and the elementwise
operations not counted: a ceiling). Issue 24 asks the bento at c=32 to reach 80 % of it on an
AVX2-only CPU (bench/serve_throughput.py measures the bento). At the real answer length each
answer also brings its prompt to prefill (2 x non-embedding FLOPs per prompt token), so the
ceiling on *output* tokens/s there is printed too: GEMM FLOP/s / (FLOPs per token + median
prompt / median answer x 2 x non-embedding parameters).

  python bench/decode_profile.py --shape qwen3-1.7b --dtypes float32,bfloat16
  python bench/decode_profile.py --shape tiny --batches 1,8 --steps 2      # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVE_PYTHON = ROOT / ".venv-serve" / "bin" / "python"
# Operators whose inclusive time is a category (the rest is "other").
CATEGORIES = {"linear": ("aten::linear",), "attention": ("aten::scaled_dot_product_attention",)}


def decode_gemm_shapes(config) -> list[tuple[int, int, int]]:
    """(out features, in features, times per token) of the model's matrix products."""
    h, layers, inter = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    hd = getattr(config, "head_dim", None) or h // heads
    return [(heads * hd, h, layers), (kv * hd, h, 2 * layers), (h, heads * hd, layers),
            (inter, h, 2 * layers), (h, inter, layers), (config.vocab_size, h, 1)]  # fmt: skip


def flops_per_token(non_embedding: int, hidden: int, vocab: int) -> int:
    """2 x non-embedding parameters + 2 x hidden x vocabulary (the lm_head's product)."""
    return 2 * non_embedding + 2 * hidden * vocab


def gemm_flops(shapes, batch: int, dtype: str, backend: str, seconds: float = 0.4) -> float:
    """FLOP/s of one token's matrix products at ``batch`` rows, as ``backend`` runs them."""
    import torch

    kind = getattr(torch, dtype)
    total_time = total_flops = 0.0
    for n, k, count in shapes:
        weight, x = torch.randn(n, k, dtype=kind), torch.randn(batch, k, dtype=kind)
        if backend == "onednn":
            import vllm._custom_ops as ops

            handle = ops.create_onednn_mm(weight.t(), 32)  # as vLLM's CPU linear layers do

            def run(handle=handle, x=x):
                return ops.onednn_mm(handle, x, None)
        else:

            def run(weight=weight, x=x):
                return torch.matmul(x, weight.t())

        run()
        best = float("inf")
        for _ in range(3):
            calls, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds / 3 or calls < 2:
                run()
                calls += 1
            best = min(best, elapsed / calls)
        total_time += count * best
        total_flops += count * 2 * batch * n * k
    return total_flops / total_time


def onednn_flops(shapes, batch: int, dtype: str, threads: int) -> tuple[float | None, str]:
    """:func:`gemm_flops` through vLLM's oneDNN linear, in the serving venv; or why not."""
    if not SERVE_PYTHON.exists():
        return None, "no .venv-serve"
    command = [str(SERVE_PYTHON), __file__, "--gemm-only", json.dumps(shapes), "--batch",
               str(batch), "--dtype", dtype, "--threads", str(threads)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["exited " + str(done.returncode)])[-1]
        return None, tail[:160]
    answer = json.loads(lines[-1])
    return answer.get("flops"), answer.get("error", "")


def random_cache(config, batch: int, context: int, dtype):
    import torch
    from transformers import DynamicCache

    hd = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    cache = DynamicCache(config=config)
    shape = (batch, config.num_key_value_heads, context, hd)
    for layer in range(config.num_hidden_layers):
        cache.update(torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype), layer)
    return cache


def profile_decode(model, batch: int, context: int, steps: int, top: int) -> dict:
    """Median wall time of one decode step at ``batch`` and where one step's time goes."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    dtype = next(model.parameters()).dtype
    cache = random_cache(model.config, batch, context, dtype)
    ids = torch.randint(10, 1000, (batch, 1))
    position = torch.tensor([context])

    def step() -> float:
        started = time.perf_counter()
        model(input_ids=ids, past_key_values=cache, use_cache=True, cache_position=position)
        elapsed = time.perf_counter() - started
        cache.crop(-1)  # back to ``context`` tokens
        return elapsed

    with torch.inference_mode():
        step()  # warm-up
        times = [step() for _ in range(steps)]
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    shares = {name: sum(e.cpu_time_total for e in events if e.key in keys) / total
              for name, keys in CATEGORIES.items()}  # fmt: skip
    shares["other"] = max(0.0, 1 - sum(shares.values()))
    ops = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    step_s = statistics.median(times)
    return {
        "batch": batch, "step_ms": round(1000 * step_s, 1), "tok_s": round(batch / step_s, 2),
        "shares": {k: round(v, 3) for k, v in shares.items()},
        "top_ops": [(e.key, round(e.self_cpu_time_total / 1000, 2), round(e.self_cpu_time_total
                     / total, 3), e.count) for e in ops],
    }  # fmt: skip


def held_out_lengths(model_dir: Path) -> tuple[int, int]:
    """Median prompt (chat-rendered) and reference answer lengths of the held-out questions."""
    from transformers import AutoTokenizer

    sys.path.insert(0, str(ROOT / "bench"))
    from serve_throughput import held_out

    pairs = held_out(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = []
    for question, _ in pairs:  # as bench/seed_server.py renders them
        messages = [{"role": "user", "content": question}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompts.append(len(tokenizer(text, add_special_tokens=False).input_ids))
    return int(statistics.median(prompts)), int(statistics.median(n for _, n in pairs))


def run_dtype(model_dir: Path, dtype: str, cli, context: int, prompt: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    config = model.config
    embedding = model.get_input_embeddings().weight.numel()
    parameters = sum(p.numel() for p in model.parameters())
    non_embedding = parameters - embedding  # tied: lm_head is the embedding
    per_token = flops_per_token(non_embedding, config.hidden_size, config.vocab_size)
    print(f"\n== {dtype} == {parameters / 1e9:.3f} B parameters ({non_embedding / 1e9:.3f} B "
          f"non-embedding, vocabulary {config.vocab_size}), {per_token / 1e9:.2f} GFLOP of "
          f"matrix products per token; context {context} tokens", flush=True)  # fmt: skip
    steps = [profile_decode(model, b, context, cli.steps, cli.top) for b in cli.batch_sizes]
    print("batch | decode step ms | tok/s | linear (incl. lm_head) | attention | other")
    for r in steps:
        s = r["shares"]
        print(f"{r['batch']} | {r['step_ms']} | {r['tok_s']} | {s['linear']:.0%} | "
              f"{s['attention']:.0%} | {s['other']:.0%}")  # fmt: skip
    print(f"top operators at batch {steps[-1]['batch']} (self ms, share of the step, calls):")
    for name, ms, share, calls in steps[-1]["top_ops"]:
        print(f"  {name:48s} {ms:9.2f} {share:6.1%} {calls:6d}")
    del model
    shapes = decode_gemm_shapes(config)
    torch_flops = gemm_flops(shapes, cli.limit_batch, dtype, "torch")
    onednn, why = onednn_flops(shapes, cli.limit_batch, dtype, cli.threads)
    best = max(torch_flops, onednn or 0.0)
    limit = best / per_token
    print(f"GEMM      batch {cli.limit_batch}, {dtype}, one token's matrix products: torch.matmul "
          f"{torch_flops / 1e9:.1f} GFLOP/s; vLLM oneDNN linear "
          + (f"{onednn / 1e9:.1f} GFLOP/s" if onednn else f"n/a ({why})"))  # fmt: skip
    print(f"limit     compute-bound decoding at c={cli.limit_batch}: {limit:.1f} tok/s "
          f"({best / 1e9:.1f} GFLOP/s / {per_token / 1e9:.2f} GFLOP per token); 80 %: "
          f"{0.8 * limit:.1f} tok/s")  # fmt: skip
    # at the answer length every answer of ``context`` tokens brings a prompt of ``prompt``
    # tokens to prefill (2 x non-embedding FLOPs each; lm_head only for the last)
    with_prompts = best / (per_token + prompt / context * 2 * non_embedding)
    print(f"          with each answer's prompt prefilled too (median {prompt} prompt tokens per "
          f"{context} output tokens): {with_prompts:.1f} tok/s of output; 80 %: "
          f"{0.8 * with_prompts:.1f} tok/s (serve_throughput.py --lengths references)")  # fmt: skip
    first, last = steps[0], steps[-1]
    print(f"baseline  transformers decode at batch {first['batch']}: {first['tok_s']} tok/s")
    print(f"candidate transformers decode at batch {last['batch']}: {last['tok_s']} tok/s "
          f"({last['tok_s'] / first['tok_s']:.2f}x the baseline; {last['tok_s'] / limit:.0%} of "
          "the limit)")  # fmt: skip
    return {"dtype": dtype, "parameters": parameters, "non_embedding": non_embedding,
            "flops_per_token": per_token, "context": context, "steps": steps,
            "gemm_flops": {"torch": torch_flops, "onednn": onednn, "onednn_note": why},
            "limit_tok_s": limit, "limit_with_prompts_tok_s": with_prompts,
            "prompt_tokens": prompt}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", help="a model of this shape (bench/train_throughput.py)")
    parser.add_argument("--model-dir", help="a model directory instead")
    parser.add_argument("--dtypes", default="best", help="comma-separated; best: this CPU's")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--context", type=int, help="KV tokens per sequence (default: see above)")
    parser.add_argument("--steps", type=int, default=5, help="timed decode steps per batch")
    parser.add_argument("--top", type=int, default=10, help="operators listed")
    parser.add_argument("--limit-batch", type=int, default=32)
    parser.add_argument("--threads", type=int, help="torch threads (default: every usable core)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--gemm-only", metavar="SHAPES", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    cli = parser.parse_args()
    import torch

    sys.path.insert(0, str(ROOT))
    from bento import cpu_profile

    cpu = cpu_profile.read_cpu()
    cli.threads = cli.threads or len(cpu.cores)
    torch.set_num_threads(cli.threads)
    if cli.gemm_only:  # in the serving venv, for onednn_flops
        try:
            flops = gemm_flops(json.loads(cli.gemm_only), cli.batch, cli.dtype, "onednn")
            print(json.dumps({"flops": flops}))
        except Exception as e:  # noqa: BLE001  (reported, e.g. no bf16 kernel on AVX2)
            print(json.dumps({"flops": None, "error": f"{type(e).__name__}: {e}"[:200]}))
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from serve_throughput import model_dir

    cli.batch_sizes = [int(b) for b in cli.batches.split(",")]
    model = model_dir(cli)
    prompt, reference = held_out_lengths(model)
    context = cli.context or reference
    best, why = cpu_profile.choose_dtype(cpu.flags)
    dtypes = [best if d == "best" else d for d in cli.dtypes.split(",")]
    print(f"machine   {cpu.describe()}; load {os.getloadavg()[0]:.1f}; torch {torch.__version__} "
          f"({torch.backends.cpu.get_cpu_capability()}), {cli.threads} thread(s); "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    print(f"dtype     best here: {best} ({why}); measured: {', '.join(dtypes)}")
    print(f"model     {model}")
    results = [run_dtype(model, dtype, cli, context, prompt) for dtype in dtypes]
    if len(results) > 1:
        base = results[0]
        for r in results[1:]:
            last, first = r["steps"][-1], base["steps"][-1]
            print(f"ratio     {r['dtype']} / {base['dtype']}: decode at batch {last['batch']} "
                  f"{last['tok_s'] / first['tok_s']:.2f}x, limit "
                  f"{r['limit_tok_s'] / base['limit_tok_s']:.2f}x")  # fmt: skip
    if cli.json:
        cli.json.write_text(json.dumps({"machine": cpu.describe(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
