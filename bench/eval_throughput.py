"""Evaluation throughput, and how long the production config's evaluate step takes.

Both modes use the held-out prompts of ``data/nizami.jsonl`` rendered with the model's tokenizer.

``--mode ratio`` (default): the baseline generates one prompt at a time, as the seed's script
did; the candidate is the evaluate step's own path (``steps.core.evaluate.generation.generate_ids``:
prompts sorted by token length, batched, greedy) in the dtype the step picks on this device
(``steps.core.evaluate.compare.generation_dtype``); ``--dtypes`` adds the candidate in other dtypes.
Greedy decoding makes every arm do the same work; the script says how many completions match.

``--mode timing``: the production evaluate (``pipelines/configs/nizami-1.7b.yaml``: base and
tuned model, 50 prompts in batches of 25, up to 512 new tokens) at a model's shape, from a few
decode steps. For each dtype and thread count one ``generate`` call on the longest batch (25
prompts) timestamps every new token: the first is the prefill, the median gap between the next
``--steps`` is a decode step (every sequence kept running). Then it extrapolates:
per model, each batch's prefill (scaled by its prompt tokens) plus (budget - 1) decode steps;
two models. Budget "all 512": every batch runs the whole budget (random weights never stop;
Qwen3's thinking mode often does not stop within 512 either). Budget "tuned stops": the tuned
model's batches end at the longest reference answer in the batch, the base model's run 512.
With two thread counts it fits Amdahl's law to each time and estimates 4 threads (CI runners).

  python bench/eval_throughput.py --model demo --examples 25 --max-new-tokens 48 \
      --dtypes bfloat16 --threads 1                # CPU time is robust to other load
  python bench/eval_throughput.py --model qwen3-1.7b --mode timing --dtypes float32,bfloat16 \\
      --threads 1,2 --steps 6                      # CPU: ~10 minutes on 2 cores
  python bench/eval_throughput.py --model qwen3-1.7b --mode timing \\
      --dtypes float16,bfloat16 --steps 64 --full-check --json $OUT/eval_timing.json  # GPU
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from steps.core.config import DataConfig, EvalConfig, load_config  # noqa: E402
from steps.core.data.dataset import render  # noqa: E402
from steps.core.data.examples import assistant_text, read_examples, split_examples  # noqa: E402
from steps.core.evaluate.generation import generate_ids  # noqa: E402
from steps.core.modeling import (  # noqa: E402
    build_tiny_tokenizer,
    device,
    load_model,
    load_tokenizer,
    resolve_base_model,
    torch_dtype,
)

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = load_config(ROOT / "pipelines" / "configs" / "nizami-1.7b.yaml")


def model_and_tokenizer(name: str, dtype: str):
    """The model in ``dtype`` and its tokenizer; shapes get random weights and the tiny
    tokenizer (trained here on the data: ~3.8 tokens per Azerbaijani word, like Qwen's ~4)."""
    if name in ("demo", "tiny"):
        cfg = load_config(ROOT / "pipelines" / "configs" / f"{name}.yaml").base_model
        base = resolve_base_model(cfg)
        return load_model(base, dtype), load_tokenizer(base), cfg.name
    sys.path.insert(0, str(ROOT / "bench"))
    from train_throughput import build_model

    model = build_model(name, torch_dtype(dtype), "sdpa")
    return model, build_tiny_tokenizer(), f"{name} (random weights)"


def sync() -> None:
    if device() == "cuda":
        torch.cuda.synchronize()


def held_out(tokenizer, n: int):
    data = DataConfig()
    examples = read_examples(ROOT / data.path)
    _, rows = split_examples(examples, held_out=n, seed=data.seed, stratify=data.stratify)
    return [render(e, tokenizer).prompt for e in rows], rows


def machine() -> str:
    name = torch.cuda.get_device_name() if device() == "cuda" else platform.processor() or "cpu"
    return f"{name}; torch {torch.__version__}; {os.cpu_count()} CPUs"


# --- ratio ----------------------------------------------------------------------------------


def ratio_mode(args) -> dict:
    # The metrics' packages (sacrebleu, evaluate, ...) need not be installed where only
    # generation is timed (a bare GPU image): import the evaluation module in this mode only.
    from steps.core.evaluate.compare import generation_dtype

    default = generation_dtype(EvalConfig(), "float16", device())
    dtypes = [default, *[d for d in args.dtypes if d != default]]
    results, arms, reference = {}, [], None
    for dtype in dtypes:
        model, tokenizer, label = model_and_tokenizer(args.model, dtype)
        prompts, _ = held_out(tokenizer, args.examples)
        generate_ids(model, tokenizer, prompts[:2], 2, 4)  # warm-up
        plan = [("baseline (one prompt at a time)", 1)] if dtype == default else []
        plan.append((f"candidate (evaluate step: sorted, batch {args.batch_size})",
                     args.batch_size))
        for arm, batch in plan:
            sync()
            start, cpu_start = time.perf_counter(), time.process_time()
            ids = generate_ids(model, tokenizer, prompts, batch, args.max_new_tokens)
            sync()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            tokens = sum(map(len, ids))
            reference = reference or ids
            same = sum(a == b for a, b in zip(reference, ids, strict=True))
            arms.append({"arm": f"{arm}, {dtype}", "seconds": seconds, "cpu_seconds": cpu,
                         "output_tokens": tokens, "tokens_per_s": tokens / seconds,
                         "same_as_baseline": same})
            print(f"{arms[-1]['arm']:<62} {seconds:8.1f} s {tokens / seconds:8.1f} tok/s "
                  f"(CPU time {cpu:.1f} s; {tokens} tokens; {same}/{len(prompts)} completions "
                  f"as the baseline's; load {os.getloadavg()[0]:.1f})")
        del model
        gc.collect()
    base = arms[0]
    for arm in arms[1:]:
        print(f"ratio     {arm['arm']} / baseline = {base['seconds'] / arm['seconds']:.2f}x "
              f"throughput (CPU time: {base['cpu_seconds'] / arm['cpu_seconds']:.2f}x)")
    results.update(model=label, arms=arms,
                   ratios={a["arm"]: base["seconds"] / a["seconds"] for a in arms})
    return results


# --- timing ---------------------------------------------------------------------------------


def fixed_generate(model, batch, new_tokens: int) -> float:
    """Seconds for ``model.generate`` to add exactly ``new_tokens`` to every sequence."""
    sync()
    start = time.perf_counter()
    with torch.inference_mode():
        model.generate(**batch, do_sample=False, max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens)
    sync()
    return time.perf_counter() - start


def batches_like_the_step(tokenizer, prompts: list[str], batch_size: int) -> list[list[int]]:
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class StepClock:
    """A stopping criterion that never stops: it timestamps every generated token."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cpu: list[float] = []  # this process's CPU time (all threads)

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        sync()
        self.times.append(time.perf_counter())
        self.cpu.append(time.process_time())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def measure(model, tokenizer, prompts, groups, steps: int) -> dict:
    """Prefill and per-step decode time of the longest batch, from one ``generate`` call."""
    from transformers import StoppingCriteriaList

    tokenizer.padding_side = "left"

    def encode(idx):
        return tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                         add_special_tokens=False).to(model.device)

    fixed_generate(model, dict(encode(groups[0][:2])), 2)  # warm-up
    batch, clock = encode(groups[-1]), StepClock()
    sync()
    start, cpu_start = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        model.generate(**batch, do_sample=False, max_new_tokens=1 + steps,
                       min_new_tokens=1 + steps, stopping_criteria=StoppingCriteriaList([clock]))

    def median_gap(marks: list[float]) -> float:
        return sorted(b - a for a, b in zip(marks, marks[1:], strict=False))[len(marks) // 2 - 1]

    padded = [encode(g)["input_ids"].numel() for g in groups]
    # CPU time: on one thread, what the work costs on an idle core, whatever else runs here.
    return {"prefill_s": clock.times[0] - start, "step_s": median_gap(clock.times),
            "prefill_cpu_s": clock.cpu[0] - cpu_start, "step_cpu_s": median_gap(clock.cpu),
            "prefill_tokens": padded, "longest_prefill_tokens": padded[-1]}


def extrapolate(m: dict, budgets: list[int]) -> float:
    """One model pass: each batch's prefill (scaled by its tokens) + (budget - 1) steps."""
    per_token = m["prefill_s"] / m["longest_prefill_tokens"]
    return sum(per_token * t + (b - 1) * m["step_s"] for t, b in zip(m["prefill_tokens"], budgets,
                                                                      strict=True))


def amdahl(t1: float, t2: float, n: int) -> float:
    """Time on ``n`` threads from times on 1 and 2, by Amdahl's law (parallel share from t2/t1)."""
    p = min(1.0, max(0.0, 2 * (1 - t2 / t1)))
    return t1 * ((1 - p) + p / n)


def timing_mode(args) -> dict:
    cfg = PRODUCTION.evaluation
    budget = cfg.max_new_tokens
    out = {"config": "pipelines/configs/nizami-1.7b.yaml", "examples": args.examples,
           "batch_size": cfg.batch_size, "max_new_tokens": budget, "runs": []}
    for dtype in args.dtypes:
        model, tokenizer, label = model_and_tokenizer(args.model, dtype)
        prompts, rows = held_out(tokenizer, args.examples)
        groups = batches_like_the_step(tokenizer, prompts, cfg.batch_size)
        answers = [len(tokenizer(assistant_text(r))["input_ids"]) + 2 for r in rows]
        stops = [min(budget, max(answers[i] for i in g)) for g in groups]
        for threads in args.threads if device() == "cpu" else [0]:
            if threads:
                torch.set_num_threads(threads)
            m = measure(model, tokenizer, prompts, groups, args.steps)
            full = 2 * extrapolate(m, [budget] * len(groups))
            stopping = extrapolate(m, [budget] * len(groups)) + extrapolate(m, stops)
            run = m | {"dtype": dtype, "threads": threads, "model": label,
                       "evaluate_all_512_s": full, "evaluate_tuned_stops_s": stopping,
                       "tuned_stop_steps": stops}
            if args.full_check:
                run["full_check"] = full_check(model, tokenizer, prompts, groups[-1], budget, m)
            out["runs"].append(run)
            print(f"{dtype:>9} threads {threads or '-':>2}: prefill {m['prefill_s']:7.2f} s "
                  f"({m['longest_prefill_tokens']} tokens), decode step {m['step_s']:6.3f} s "
                  f"at batch {len(groups[-1])} -> evaluate {full / 60:6.1f} min (all {budget}), "
                  f"{stopping / 60:6.1f} min (tuned stops at {stops}); CPU time: prefill "
                  f"{m['prefill_cpu_s']:.2f} s, step {m['step_cpu_s']:.3f} s; load "
                  f"{os.getloadavg()[0]:.1f}")
            if threads == 1:  # the contention-free figure: CPU time of the one thread
                idle = m | {"prefill_s": m["prefill_cpu_s"], "step_s": m["step_cpu_s"]}
                run["evaluate_all_512_cpu_time_s"] = 2 * extrapolate(idle, [budget] * len(groups))
                print(f"{'':>9} from CPU time (one idle core): evaluate "
                      f"{run['evaluate_all_512_cpu_time_s'] / 60:.1f} min (all {budget})")
        del model
        gc.collect()
        if device() == "cuda":
            torch.cuda.empty_cache()
    estimate_four_threads(out)
    return out


def full_check(model, tokenizer, prompts, group, budget: int, m: dict) -> dict:
    """Generate one batch to the whole budget; compare with the extrapolation for it."""
    batch = tokenizer([prompts[i] for i in group], return_tensors="pt", padding=True,
                      add_special_tokens=False).to(model.device)
    seconds = fixed_generate(model, dict(batch), budget)
    predicted = m["prefill_s"] + (budget - 1) * m["step_s"]
    print(f"full check: one batch of {len(group)} to {budget} tokens took {seconds:.1f} s; "
          f"extrapolated {predicted:.1f} s ({seconds / predicted:.2f}x)")
    return {"measured_s": seconds, "extrapolated_s": predicted}


def estimate_four_threads(out: dict) -> None:
    by = {(r["dtype"], r["threads"]): r for r in out["runs"]}
    for dtype in {r["dtype"] for r in out["runs"]}:
        one, two = by.get((dtype, 1)), by.get((dtype, 2))
        if not (one and two):
            continue
        est = {k: amdahl(one[k], two[k], 4) for k in ("prefill_s", "step_s")}
        m = two | est
        full = 2 * extrapolate(m, [out["max_new_tokens"]] * len(two["prefill_tokens"]))
        stopping = (extrapolate(m, [out["max_new_tokens"]] * len(two["prefill_tokens"]))
                    + extrapolate(m, two["tuned_stop_steps"]))
        speedup = {k: one[k] / two[k] for k in ("prefill_s", "step_s")}
        out.setdefault("four_threads", {})[dtype] = est | {
            "speedup_1_to_2": speedup, "evaluate_all_512_s": full,
            "evaluate_tuned_stops_s": stopping}
        print(f"{dtype:>9} 4 threads (Amdahl from 1->2 speedups prefill "
              f"{speedup['prefill_s']:.2f}x, decode {speedup['step_s']:.2f}x): evaluate "
              f"{full / 60:.1f} min (all 512), {stopping / 60:.1f} min (tuned stops)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["demo", "tiny", "smollm2-135m", "qwen3-1.7b"],
                        default="demo")
    parser.add_argument("--mode", choices=["ratio", "timing"], default="ratio")
    parser.add_argument(
        "--examples", type=int, default=50, help="held-out prompts (production evaluates 308)"
    )
    parser.add_argument("--batch-size", type=int, default=25, help="ratio mode's candidate")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="ratio mode")
    parser.add_argument("--dtypes", type=lambda s: s.split(","), default=[])
    parser.add_argument("--threads", type=lambda s: [int(t) for t in s.split(",")],
                        default=[torch.get_num_threads()],
                        help="CPU threads (timing mode: each; ratio mode: the first)")
    parser.add_argument("--steps", type=int, default=8, help="timing mode: decode steps timed")
    parser.add_argument("--full-check", action="store_true",
                        help="timing mode: also run one batch to the full budget")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if args.mode == "timing" and not args.dtypes:
        args.dtypes = ["float32"] if device() == "cpu" else ["bfloat16"]

    import transformers

    transformers.logging.set_verbosity_error()
    print(f"machine   {machine()}")
    print(f"work      {args.examples} held-out prompts, greedy, mode {args.mode}")
    if args.mode == "ratio" and device() == "cpu":
        torch.set_num_threads(args.threads[0])
        print(f"threads   {torch.get_num_threads()}")
    results = ratio_mode(args) if args.mode == "ratio" else timing_mode(args)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), **results}, indent=2))


if __name__ == "__main__":
    main()
