"""Evaluation throughput: batched greedy generation against one prompt at a time.

Both arms run ``steps.core.generation.generate_ids`` (the evaluate step's function) on the same
held-out prompts with the same model; the baseline uses batch size 1, as the seed's script did.
Greedy decoding makes both arms produce the same completions, so they do the same work.

  python bench/eval_throughput.py --model demo          # SmolLM2-135M from the demo config
  python bench/eval_throughput.py --model qwen3-1.7b    # random weights at Qwen3-1.7B shape (GPU)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from steps.core.config import DataConfig, load_config  # noqa: E402
from steps.core.data import read_examples, split_examples  # noqa: E402
from steps.core.dataset import render  # noqa: E402
from steps.core.generation import generate_ids  # noqa: E402
from steps.core.modeling import (  # noqa: E402
    build_tiny_tokenizer,
    device,
    load_model,
    load_tokenizer,
    resolve_base_model,
)

ROOT = Path(__file__).resolve().parents[1]


def model_and_tokenizer(name: str):
    if name in ("demo", "tiny"):
        cfg = load_config(ROOT / "pipelines" / "configs" / f"{name}.yaml").base_model
        base = resolve_base_model(cfg)
        dtype = "bfloat16" if device() == "cuda" else "float32"
        return load_model(base, dtype), load_tokenizer(base), cfg.name
    sys.path.insert(0, str(ROOT / "bench"))
    from train_throughput import build_model

    dtype = torch.bfloat16 if device() == "cuda" else torch.float32
    model, _ = build_model(name, dtype)
    return model, build_tiny_tokenizer(), f"{name} (random weights)"


def timed(model, tokenizer, prompts, batch_size, max_new_tokens):
    if device() == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    completions = generate_ids(model, tokenizer, prompts, batch_size, max_new_tokens)
    if device() == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return completions, seconds, sum(map(len, completions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", choices=["demo", "tiny", "smollm2-135m", "qwen3-1.7b"], default="demo"
    )
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    import transformers

    transformers.logging.set_verbosity_error()
    model, tokenizer, label = model_and_tokenizer(args.model)
    data = DataConfig()
    examples = read_examples(ROOT / data.path)
    _, held_out = split_examples(examples, held_out=args.examples, seed=data.seed)
    prompts = [render(e, tokenizer).prompt for e in held_out]
    machine = torch.cuda.get_device_name() if device() == "cuda" else platform.processor() or "cpu"
    print(f"machine   {machine}; torch {torch.__version__}; {torch.get_num_threads()} CPU threads")
    print(f"model     {label}, {next(model.parameters()).dtype}")
    print(
        f"work      {len(prompts)} held-out prompts, greedy, max_new_tokens {args.max_new_tokens}"
    )

    generate_ids(model, tokenizer, prompts[:2], 2, 4)  # warm-up
    rows = []
    for name, batch in (
        ("baseline (one prompt at a time)", 1),
        (f"candidate (batched, {args.batch_size} per batch)", args.batch_size),
    ):
        texts, seconds, tokens = timed(model, tokenizer, prompts, batch, args.max_new_tokens)
        rows.append(
            {
                "arm": name,
                "seconds": seconds,
                "output_tokens": tokens,
                "tokens_per_s": tokens / seconds,
                "texts": texts,
            }
        )
        print(
            f"{name:<40} {seconds:8.1f} s  {tokens / seconds:9.1f} output tok/s ({tokens} tokens)"
        )
    same = sum(a == b for a, b in zip(rows[0]["texts"], rows[1]["texts"], strict=True))
    ratio = rows[0]["seconds"] / rows[1]["seconds"]
    print(
        f"ratio     candidate / baseline = {ratio:.2f}x throughput "
        f"({same}/{len(prompts)} completions identical)"
    )
    if args.json:
        for r in rows:
            r.pop("texts")
        Path(args.json).write_text(
            json.dumps({"machine": machine, "model": label, "ratio": ratio, "arms": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
